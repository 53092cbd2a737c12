-- Sort the first copy of each landed label row into accepted or quarantined (with a reason), and join
-- accepted labels to the predictions they refer to (null where the prediction is not known yet).
-- Inputs: `copies` (number_copies.sql), `known_predictions` (prediction_id, model_version,
-- ts). Parameters: $day_start, $day_end.
WITH checked AS (
    SELECT
        *,
        CASE
            WHEN prediction_id IS NULL OR trim(prediction_id) = '' THEN 'missing prediction_id'
            WHEN label IS NULL THEN 'missing label'
            WHEN label NOT IN (0, 1) THEN 'label not 0 or 1'
            WHEN label_ts IS NULL THEN 'missing label_ts'
            WHEN label_ts < $day_start OR label_ts >= $day_end THEN 'label_ts outside the arrival day'
        END AS _reason
    FROM copies
    WHERE _copy = 1
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
    r.* EXCLUDE (_reason, _claim, _copy),
    k.model_version,
    k.ts AS prediction_ts,
    CASE WHEN r._reason IS NOT NULL OR r._claim > 1 THEN 'quarantined' ELSE 'accepted' END AS _status,
    coalesce(r._reason, CASE WHEN r._claim > 1 THEN 'conflicting label for the same prediction_id (a later one was kept)' END) AS _reason
FROM ranked AS r
LEFT JOIN known_predictions AS k
    ON r._reason IS NULL AND r._claim = 1 AND k.prediction_id = r.prediction_id
