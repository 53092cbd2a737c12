-- The days each version served requests (input: `source`, daily eval_stats; parameter $all: the
-- whole-population segment name).
SELECT model_version, prediction_date AS day
FROM source
WHERE segment = $all
GROUP BY ALL
HAVING sum(n) > 0
ORDER BY model_version, day
