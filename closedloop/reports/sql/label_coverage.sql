-- Per prediction day, how many predictions had their label by the end of the report's day, and
-- how long those labels took. Input: the `outcomes` partitions of the window ($files, one per
-- prediction day, the day in the hive path). Parameter: $known_before (the end of the report's day).
SELECT
    "date" AS prediction_date,
    count(*) AS n,
    count(*) FILTER (WHERE label_ts < $known_before) AS labeled,
    quantile_cont(label_delay_hours, 0.5) FILTER (WHERE label_ts < $known_before) AS delay_p50_hours,
    quantile_cont(label_delay_hours, 0.9) FILTER (WHERE label_ts < $known_before) AS delay_p90_hours
FROM read_parquet($files, hive_partitioning = true, hive_types = {'date': DATE})
GROUP BY "date"
ORDER BY "date"
