-- Mergeable evaluation statistics of one day's outcomes, in long sparse form: rows counted per
-- model version, segment value, label state, label maturity, decision and score bin, keeping
-- only non-empty cells. Each outcome counts once under segment 'all' and once per segment column.
-- Raw rows are scanned once (into `cells`); the segment split works on those counts.
-- Input: `outcomes` with each row's score bin in `bin` (closedloop.metrics.score_bins: the bin
-- edges are not uniform, so they are looked up in numpy, not computed here). Parameters: $day,
-- $grid (the edges' name, stamped on every row), $segments ('all' followed by the registry's
-- segment columns; matched by name, never pasted into the SQL).
WITH cells AS (
    SELECT
        model_version,
        COLUMNS(lambda c: list_contains($segments, c)),
        CASE WHEN label IS NULL THEN 'unlabeled' WHEN label = 1 THEN 'positive' ELSE 'negative' END AS label_state,
        label_matured AS matured,
        decision,
        bin,
        count(*) AS n
    FROM (SELECT *, 'all' AS "all" FROM outcomes)
    GROUP BY ALL
)
SELECT
    CAST($day AS DATE) AS prediction_date,
    model_version,
    segment,
    segment_value,
    label_state,
    matured,
    decision,
    $grid AS score_grid,
    bin,
    CAST(sum(n) AS BIGINT) AS n
FROM cells
UNPIVOT INCLUDE NULLS (segment_value FOR segment IN (COLUMNS(lambda c: list_contains($segments, c))))
GROUP BY ALL
ORDER BY ALL
