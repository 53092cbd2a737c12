-- The predictions that the landed labels refer to, one row per id (the earliest if an id was
-- ever accepted twice). Probes the (large) history with the labels' ids. Inputs: `history`
-- (prediction_id, model_version, ts of earlier partitions), `landing` (the labels).
SELECT prediction_id, arg_min(model_version, ts) AS model_version, min(ts) AS ts
FROM history
SEMI JOIN landing USING (prediction_id)
GROUP BY prediction_id
