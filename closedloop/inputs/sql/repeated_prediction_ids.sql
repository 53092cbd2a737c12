-- For each of the given days, how many of its prediction ids also appear in another day's
-- partition. Inputs: `all_predictions` (prediction_id, day of every accepted partition, or of
-- every day's id index).
-- Parameter: $days (the days to report).
WITH spread AS (
    SELECT prediction_id
    FROM all_predictions
    GROUP BY prediction_id
    HAVING count(DISTINCT day) > 1
)
SELECT p.day, count(*) AS repeated
FROM all_predictions AS p
SEMI JOIN spread USING (prediction_id)
WHERE list_contains($days, p.day)
GROUP BY p.day
