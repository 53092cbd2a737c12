-- Sort the first copy of each landed label row into accepted or quarantined (with a reason), and join
-- labels to the predictions they refer to (null where the prediction is not in the lake yet).
-- Inputs: `copies` (number_copies.sql), `known_predictions` (prediction_id, model_version,
-- ts). Parameters: $day_start, $day_end.
-- A temporary table: it belongs to the caller's connection alone (closedloop.sql.connect).
CREATE TEMP TABLE classified AS
WITH checked AS (
    SELECT
        c.*,
        k.model_version,
        k.ts AS prediction_ts,
        CASE
            WHEN c.prediction_id IS NULL OR trim(c.prediction_id) = '' THEN 'missing prediction_id'
            WHEN c.label IS NULL THEN 'missing label'
            WHEN c.label NOT IN (0, 1) THEN 'label not 0 or 1'
            WHEN c.label_ts IS NULL THEN 'missing label_ts'
            WHEN c.label_ts < $day_start OR c.label_ts >= $day_end THEN 'label_ts outside the arrival day'
            WHEN c.label_ts < k.ts THEN 'label_ts before the prediction''s ts'
        END AS _reason
    FROM copies AS c
    LEFT JOIN known_predictions AS k USING (prediction_id)
    WHERE c._copy = 1
),
ranked AS (
    -- Two different labels for one prediction in one arrival day: the later label_ts wins.
    SELECT
        *,
        CASE WHEN _reason IS NULL
            THEN row_number() OVER (
                PARTITION BY prediction_id, _reason IS NULL
                ORDER BY label_ts DESC, _source_file, _source_row
            )
        END AS _claim
    FROM checked
)
SELECT
    * EXCLUDE (_reason, _claim, _copy),
    CASE WHEN _reason IS NOT NULL OR _claim > 1 THEN 'quarantined' ELSE 'accepted' END AS _status,
    coalesce(_reason, CASE WHEN _claim > 1 THEN 'conflicting label for the same prediction_id (a later one was kept)' END) AS _reason
FROM ranked
