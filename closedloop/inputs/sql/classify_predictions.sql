-- Sort the first copy of each landed prediction (or shadow) row into accepted or quarantined (with a
-- reason). Inputs: `copies` (number_copies.sql), `versions` (model_version, threshold) from the
-- registry, `earlier_ids` (prediction ids accepted on earlier days of the same table: the earliest
-- day keeps an id), `pairing_keys` (_source_file, _source_row, request_key: each landed row's request key).
-- Parameters: $day_start, $day_end, $pairing_key (the registry's request key column, or null when
-- the model has none).
-- A temporary table: it belongs to the caller's connection alone (closedloop.sql.connect).
CREATE TEMP TABLE classified AS
WITH checked AS (
    SELECT
        c.*,
        v.threshold AS _threshold,
        CASE
            WHEN c.prediction_id IS NULL OR trim(c.prediction_id) = '' THEN 'missing prediction_id'
            WHEN c.model_version IS NULL THEN 'missing model_version'
            WHEN v.threshold IS NULL THEN 'model_version not in the registry'
            WHEN c.ts IS NULL THEN 'missing ts'
            WHEN c.ts < $day_start OR c.ts >= $day_end THEN 'ts outside the partition day'
            WHEN c.score IS NULL OR isnan(c.score) THEN 'score missing or NaN'
            WHEN c.score < 0 OR c.score > 1 THEN 'score outside [0, 1]'
            WHEN c.decision IS NOT NULL AND c.decision NOT IN (0, 1) THEN 'decision not 0 or 1'
            WHEN CAST($pairing_key AS VARCHAR) IS NOT NULL AND (k.request_key IS NULL OR trim(k.request_key) = '')
                THEN 'missing ' || CAST($pairing_key AS VARCHAR)
            WHEN e.prediction_id IS NOT NULL THEN 'prediction_id already accepted on an earlier day'
        END AS _reason
    FROM copies AS c
    LEFT JOIN versions AS v USING (model_version)
    LEFT JOIN pairing_keys AS k USING (_source_file, _source_row)
    LEFT JOIN (
        -- Probe the (large) history with today's ids rather than deduplicating the history.
        SELECT DISTINCT prediction_id FROM earlier_ids SEMI JOIN copies USING (prediction_id)
    ) AS e USING (prediction_id)
    WHERE c._copy = 1
),
ranked AS (
    SELECT
        *,
        CASE WHEN _reason IS NULL
            THEN row_number() OVER (PARTITION BY prediction_id, _reason IS NULL ORDER BY _source_file, _source_row)
        END AS _claim
    FROM checked
)
SELECT
    * EXCLUDE (decision, _threshold, _reason, _claim, _copy),
    coalesce(decision, CAST(score >= _threshold AS TINYINT)) AS decision,
    CASE
        WHEN _reason IS NOT NULL THEN 'quarantined'
        WHEN _claim > 1 THEN 'quarantined'
        ELSE 'accepted'
    END AS _status,
    coalesce(_reason, CASE WHEN _claim > 1 THEN 'duplicate prediction_id with different values' END) AS _reason
FROM ranked
