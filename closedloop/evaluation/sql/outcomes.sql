-- One prediction day joined to every label known so far. A prediction labeled more than once
-- keeps its latest label. A label is "matured" when it was already known at the day's maturity
-- horizon (arrived before $maturity_end) and that horizon has passed as of the run ($mature);
-- a label corrected after the horizon therefore counts as not known at maturity.
-- Inputs: `predictions` (the day's partition), `labels` (prediction_id, label, label_ts of the
-- arrival partitions from the prediction day to as_of). Parameters: $maturity_end, $mature.
WITH latest AS (
    SELECT prediction_id, arg_max(label, label_ts) AS label, max(label_ts) AS label_ts
    FROM labels
    GROUP BY prediction_id
)
SELECT
    p.*,
    l.label,
    l.label_ts,
    date_diff('microsecond', p.ts, l.label_ts) / 3600e6 AS label_delay_hours,
    coalesce($mature AND l.label_ts < $maturity_end, false) AS label_matured
FROM predictions AS p
LEFT JOIN latest AS l ON l.prediction_id = p.prediction_id
ORDER BY p.ts, p.prediction_id
