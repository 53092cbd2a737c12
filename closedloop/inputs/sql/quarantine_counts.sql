-- Quarantined rows by landing table, day and reason. Input: `quarantine` (the quarantine files,
-- read with their Hive partition columns `table` and `date`).
SELECT "table", CAST("date" AS DATE) AS day, reason, count(*) AS rows
FROM quarantine
GROUP BY ALL
ORDER BY day, "table", rows DESC, reason
