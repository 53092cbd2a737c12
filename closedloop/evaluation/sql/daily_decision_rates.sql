-- Rows and decisions per prediction day and model version, from daily eval_stats (input: `stats`).
SELECT
    prediction_date,
    model_version,
    CAST(sum(n) AS BIGINT) AS n,
    CAST(coalesce(sum(n) FILTER (WHERE decision = 1), 0) AS BIGINT) AS decided,
    coalesce(sum(n) FILTER (WHERE decision = 1), 0) / sum(n) AS decision_rate
FROM stats
WHERE segment = 'all'
GROUP BY ALL
ORDER BY ALL
