-- Operational statistics of one day: one row per (UTC hour, model_version, route), every column
-- a count, a sum, a min or a max, so that any set of rows merges by summing.
-- Input: `predictions` (an accepted predictions partition).
-- Parameters: $min_ms (lower edge of the first latency bin), $log_ratio (ln of the bin ratio),
-- $bins (number of log-spaced bins). Histogram slot 0 counts latencies below $min_ms, slot i in
-- 1..$bins counts [$min_ms * r^(i-1), $min_ms * r^i), slot $bins + 1 counts the rest.
-- NaN and infinite latencies or costs are not measurements and count as missing.
WITH measured AS (
    SELECT
        timezone('UTC', date_trunc('hour', timezone('UTC', ts))) AS hour,
        model_version,
        coalesce(route, '(none)') AS route,
        error,
        is_fallback,
        CASE WHEN isfinite(latency_ms) THEN latency_ms END AS latency_ms,
        CASE WHEN isfinite(cost_usd) THEN cost_usd END AS cost_usd
    FROM predictions
),
binned AS (
    SELECT
        *,
        CASE
            WHEN latency_ms IS NULL THEN NULL
            WHEN latency_ms < $min_ms THEN 0
            ELSE least(CAST(floor(ln(latency_ms / $min_ms) / $log_ratio) AS BIGINT) + 1, $bins + 1)
        END AS latency_bin
    FROM measured
),
grouped AS (
    SELECT
        hour,
        model_version,
        route,
        count(*) AS requests,
        count(error) AS errors,
        count(*) FILTER (WHERE is_fallback) AS fallbacks,
        count(latency_ms) AS latency_count,
        coalesce(sum(latency_ms), 0.0) AS latency_sum_ms,
        min(latency_ms) AS latency_min_ms,
        max(latency_ms) AS latency_max_ms,
        histogram(latency_bin) AS bin_counts,
        count(cost_usd) AS cost_count,
        coalesce(sum(cost_usd), 0.0) AS cost_sum_usd
    FROM binned
    GROUP BY hour, model_version, route
)
SELECT
    * EXCLUDE (bin_counts),
    list_transform(range($bins + 2), lambda i: coalesce(bin_counts[i], 0)) AS latency_histogram
FROM grouped
ORDER BY hour, model_version, route
