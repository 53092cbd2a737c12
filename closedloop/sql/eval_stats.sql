-- Mergeable evaluation statistics of one day's outcomes, in long sparse form: rows counted per
-- model version, segment value, label state, label maturity, decision and score bin, keeping
-- only non-empty cells. Each outcome counts once under segment 'all' and once per segment column.
-- Raw rows are scanned once (into `cells`); the segment split works on those counts.
-- Input: `outcomes`. Parameters: $day, $bins, $segments ('all' followed by the registry's
-- segment columns; matched by name, never pasted into the SQL).
WITH binned AS (
    SELECT *, 'all' AS "all", CAST(floor(score * $bins) AS INTEGER) AS _floor
    FROM outcomes
),
cells AS (
    SELECT
        model_version,
        COLUMNS(lambda c: list_contains($segments, c)),
        CASE WHEN label IS NULL THEN 'unlabeled' WHEN label = 1 THEN 'positive' ELSE 'negative' END AS label_state,
        label_matured AS matured,
        decision,
        -- floor(score * bins) rounds up for scores just below an edge; the comparison puts every
        -- score in the bin [b/bins, (b+1)/bins) that `score >= threshold` agrees with.
        least(_floor - CAST(score < _floor / $bins AS INTEGER), $bins - 1) AS bin,
        count(*) AS n
    FROM binned
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
    CAST(bin AS SMALLINT) AS bin,
    CAST(sum(n) AS BIGINT) AS n
FROM cells
UNPIVOT INCLUDE NULLS (segment_value FOR segment IN (COLUMNS(lambda c: list_contains($segments, c))))
GROUP BY ALL
ORDER BY ALL
