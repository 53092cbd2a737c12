-- A business metric: the registry's DuckDB aggregate expression over one period's predictions.
-- Input: `predictions` (an accepted predictions partition). Parameters: $start, $end (the
-- period, start inclusive, end exclusive, UTC). {expression} is the registry's expression
-- (registry-owned, validated at load by closedloop.slo.validate_model_slos).
SELECT ({expression}) AS value
FROM predictions
WHERE ts >= $start AND ts < $end
