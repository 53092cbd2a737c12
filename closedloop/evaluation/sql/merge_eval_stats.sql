-- Sum daily evaluation statistics (input: `stats`) into one window: counts add across days.
SELECT model_version, segment, segment_value, label_state, matured, decision, score_grid, bin, CAST(sum(n) AS BIGINT) AS n
FROM stats
GROUP BY ALL
ORDER BY ALL
