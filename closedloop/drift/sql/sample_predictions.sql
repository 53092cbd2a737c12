-- A deterministic sample of `predictions`: the $size rows whose prediction_id has the smallest
-- md5. It does not depend on row order, and the bottom $size of several days' samples is the
-- bottom $size of those days together. Parameters: $columns (watched columns), $size.
SELECT prediction_id, model_version, COLUMNS(lambda c: list_contains($columns, c))
FROM predictions
ORDER BY md5_number(prediction_id), prediction_id
LIMIT $size
