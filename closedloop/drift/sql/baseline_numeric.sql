-- What each numeric column of `predictions` looked like in the baseline: its moments and the
-- quantiles that become its bin edges. Non-finite numbers count as missing, as in profiles.
-- `_none` keeps the UNPIVOT valid when there is no such column. Parameters: $numeric (column names), $quantiles (probabilities).
WITH numeric_values AS (
    SELECT name, CASE WHEN isfinite(value) THEN value END AS value
    FROM (SELECT *, NULL::DOUBLE AS _none FROM predictions)
    UNPIVOT INCLUDE NULLS (value FOR name IN (COLUMNS(lambda c: c = '_none' OR list_contains($numeric, c))))
    WHERE name <> '_none'
)
SELECT
    name,
    count(*) AS rows,
    count(value) AS count,
    avg(value) AS mean,
    stddev_samp(value) AS std,
    max(value) AS max,
    quantile_disc(value, $quantiles) AS quantiles
FROM numeric_values
GROUP BY name
ORDER BY name
