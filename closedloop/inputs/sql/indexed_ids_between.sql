-- The ids that prediction id indexes (closedloop.inputs.id_index) hold between two bounds: only
-- the row groups whose statistics overlap [$lowest, $highest] are read, each index being sorted.
-- Parameters: $files (index files, each a day's distinct ids), $lowest, $highest.
SELECT prediction_id
FROM read_parquet($files)
WHERE prediction_id BETWEEN $lowest AND $highest
