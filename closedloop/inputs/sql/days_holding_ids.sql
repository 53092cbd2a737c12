-- The days whose prediction id index holds at least one of the probed ids; only the row groups
-- whose statistics overlap [$lowest, $highest] are read. Input: `probe` (prediction_id).
-- Parameters: $files (index files, read with their Hive `date`), $lowest, $highest (the probe's
-- lowest and highest id).
SELECT DISTINCT CAST("date" AS DATE) AS day
FROM read_parquet($files, hive_partitioning = true)
SEMI JOIN probe USING (prediction_id)
WHERE prediction_id BETWEEN $lowest AND $highest
