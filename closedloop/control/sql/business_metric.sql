-- A business metric: the registry's DuckDB aggregate expression over one period's predictions,
-- for all versions together (model_version NULL) and for each version.
-- Input: `predictions` (an accepted predictions partition). Parameters: $start, $end (the
-- period, start inclusive, end exclusive, UTC). {expression} is the registry's expression
-- (registry-owned, validated at load by closedloop.registry.load_registry).
SELECT model_version, ({expression}) AS value, count(*) AS n
FROM predictions
WHERE ts >= $start AND ts < $end
GROUP BY GROUPING SETS ((), (model_version))
