-- Every value each categorical column of `predictions` took in the baseline and how often,
-- most frequent first (at most $max_known per column), plus one row (value NULL) for its nulls.
-- `_none` keeps the UNPIVOT valid when there is no such column. Parameters: $categorical (column names), $max_known.
WITH value_counts AS (
    SELECT name, value, count(*) AS n
    FROM (SELECT *, NULL::VARCHAR AS _none FROM predictions)
    UNPIVOT INCLUDE NULLS (value FOR name IN (COLUMNS(lambda c: c = '_none' OR list_contains($categorical, c))))
    WHERE name <> '_none'
    GROUP BY ALL
)
SELECT name, value, n
FROM value_counts
QUALIFY value IS NULL OR row_number() OVER (PARTITION BY name, value IS NULL ORDER BY n DESC, value) <= $max_known
ORDER BY name, value IS NULL, n DESC, value
