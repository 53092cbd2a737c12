-- A mergeable profile of the rows of `predictions`: one row per (model_version, column).
-- Every column is read once; the watched columns are picked by name with COLUMNS(lambda ...),
-- so no identifier is pasted into this text. The always-null `_none` column keeps each UNPIVOT
-- valid when a model has no column of that kind (names from the registry start with a letter).
-- Inputs: `predictions` (a view), `edges` (name, edges DOUBLE[]) for the numeric columns,
-- `known` (name, value, bucket: index among the top values, -1 for any other value the
-- baseline saw) and `tops` (name, n_top) for the categorical columns.
-- Parameters: $numeric, $categorical (column names), $day, $baseline (the baseline's hash),
-- $register_bits (HyperLogLog precision p: 2^p registers).
WITH numeric_values AS (
    -- Non-finite numbers (NaN, +-inf) count as missing, like nulls.
    SELECT model_version, name, CASE WHEN isfinite(value) THEN value END AS value
    FROM (SELECT *, NULL::DOUBLE AS _none FROM predictions)
    UNPIVOT INCLUDE NULLS (value FOR name IN (COLUMNS(lambda c: c = '_none' OR list_contains($numeric, c))))
    WHERE name <> '_none'
),
bin_counts AS (
    -- Bucket i holds edges[i] <= value < edges[i + 1] (1-based edges); 0 is underflow, len(edges) overflow.
    SELECT
        v.model_version,
        v.name,
        CASE WHEN v.value IS NOT NULL THEN len(list_filter(e.edges, lambda x: x <= v.value)) END AS bin,
        count(*) AS n,
        sum(v.value) AS s,
        sum(v.value * v.value) AS ss,
        min(v.value) AS lo,
        max(v.value) AS hi
    FROM numeric_values AS v
    JOIN edges AS e USING (name)
    GROUP BY ALL
),
numeric_moments AS (
    SELECT
        model_version,
        name,
        sum(n) AS rows,
        coalesce(sum(n) FILTER (bin IS NOT NULL), 0) AS count,
        coalesce(sum(n) FILTER (bin IS NULL), 0) AS nulls,
        coalesce(sum(s), 0) AS sum,
        coalesce(sum(ss), 0) AS sum_sq,
        min(lo) AS min,
        max(hi) AS max
    FROM bin_counts
    GROUP BY ALL
),
numeric_grid AS (
    SELECT m.model_version, m.name, unnest(range(len(e.edges) + 1)) AS bin
    FROM numeric_moments AS m
    JOIN edges AS e USING (name)
),
numeric_bins AS (
    SELECT g.model_version, g.name, list(coalesce(b.n, 0) ORDER BY g.bin) AS bins
    FROM numeric_grid AS g
    LEFT JOIN bin_counts AS b USING (model_version, name, bin)
    GROUP BY ALL
),
value_counts AS MATERIALIZED (
    SELECT model_version, name, value, count(*) AS n
    FROM (SELECT *, NULL::VARCHAR AS _none FROM predictions)
    UNPIVOT INCLUDE NULLS (value FOR name IN (COLUMNS(lambda c: c = '_none' OR list_contains($categorical, c))))
    WHERE name <> '_none'
    GROUP BY ALL
),
bucketed AS (
    SELECT v.model_version, v.name, v.value, v.n, k.bucket
    FROM value_counts AS v
    LEFT JOIN known AS k USING (name, value)
),
categorical_moments AS (
    SELECT
        model_version,
        name,
        sum(n) AS rows,
        coalesce(sum(n) FILTER (value IS NOT NULL), 0) AS count,
        coalesce(sum(n) FILTER (value IS NULL), 0) AS nulls,
        coalesce(sum(n) FILTER (bucket = -1), 0) AS other,
        coalesce(sum(n) FILTER (value IS NOT NULL AND bucket IS NULL), 0) AS unseen
    FROM bucketed
    GROUP BY ALL
),
top_grid AS (
    SELECT m.model_version, m.name, unnest(range(t.n_top)) AS bucket
    FROM categorical_moments AS m
    JOIN tops AS t USING (name)
),
top_counts AS (
    SELECT g.model_version, g.name, list(coalesce(b.n, 0) ORDER BY g.bucket) AS top_counts
    FROM top_grid AS g
    LEFT JOIN bucketed AS b USING (model_version, name, bucket)
    GROUP BY ALL
),
hashed AS (
    -- HyperLogLog: the first p bits of a value's 64-bit md5 prefix pick a register, the rest
    -- give its rank (leading zeros + 1). md5 keeps registers comparable across DuckDB versions.
    SELECT
        model_version,
        name,
        md5_number_upper(value) AS h,
        CAST(h >> (64 - $register_bits) AS BIGINT) AS register,
        h & ((1::UBIGINT << (64 - $register_bits)) - 1) AS w,
        CASE WHEN w > 0 THEN CAST(floor(log2(w)) AS INTEGER) END AS approx_log2,
        -- log2 of a double can round up just below a power of two; correct the floor exactly
        approx_log2 - CASE WHEN (1::UBIGINT << approx_log2) > w THEN 1 ELSE 0 END AS exact_log2
    FROM value_counts
    WHERE value IS NOT NULL
),
registers AS (
    SELECT
        model_version,
        name,
        register,
        max(CASE WHEN w = 0 THEN 65 - $register_bits ELSE 64 - $register_bits - exact_log2 END) AS rank
    FROM hashed
    GROUP BY ALL
),
register_grid AS (
    SELECT model_version, name, unnest(range(1 << $register_bits)) AS register
    FROM categorical_moments
),
sketches AS (
    SELECT g.model_version, g.name, list(coalesce(r.rank, 0)::UTINYINT ORDER BY g.register) AS hll
    FROM register_grid AS g
    LEFT JOIN registers AS r USING (model_version, name, register)
    GROUP BY ALL
)
SELECT
    $day::DATE AS day,
    model_version,
    name AS "column",
    'numeric' AS kind,
    m.rows,
    m.count,
    m.nulls,
    m.sum,
    m.sum_sq,
    m.min,
    m.max,
    b.bins,
    $baseline AS baseline_hash
FROM numeric_moments AS m
JOIN numeric_bins AS b USING (model_version, name)
UNION ALL BY NAME
SELECT
    $day::DATE AS day,
    model_version,
    name AS "column",
    'categorical' AS kind,
    m.rows,
    m.count,
    m.nulls,
    coalesce(t.top_counts, []) AS top_counts,
    m.other,
    m.unseen,
    s.hll,
    $baseline AS baseline_hash
FROM categorical_moments AS m
LEFT JOIN top_counts AS t USING (model_version, name)
JOIN sketches AS s USING (model_version, name)
ORDER BY model_version, kind DESC, "column"
