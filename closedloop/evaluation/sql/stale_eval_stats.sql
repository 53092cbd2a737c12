-- eval_stats partitions (input: `stats`, read with file names and union by name) counted on other
-- score bins than $grid; a partition written before the bins were named has no score_grid (null).
SELECT DISTINCT filename
FROM stats
WHERE score_grid IS DISTINCT FROM $grid
ORDER BY filename
