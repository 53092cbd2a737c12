-- Label coverage and delay of one day's outcomes (input: `outcomes`).
SELECT
    count(*) AS n,
    count(label) AS n_labeled,
    count(*) FILTER (WHERE label = 1) AS n_positive,
    count(*) FILTER (WHERE label_matured) AS n_matured,
    quantile_cont(label_delay_hours, 0.5) AS label_delay_p50_hours,
    quantile_cont(label_delay_hours, 0.9) AS label_delay_p90_hours
FROM outcomes
