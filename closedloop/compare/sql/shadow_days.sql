-- The days each version scored requests in shadow (input: `source`, the shadow table).
SELECT model_version, CAST(timezone('UTC', ts) AS DATE) AS day
FROM source
GROUP BY ALL
ORDER BY model_version, day
