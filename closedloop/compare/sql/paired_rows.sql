-- Shadow traffic paired with the served requests it scored: one row per request both versions saw.
-- Inputs: `served` (the baseline's outcomes: its score, decision, label, segments) and `shadow`
-- (the candidate's shadow rows), each with the registry's pairing key renamed `request_key`
-- (renamed in Arrow, never pasted into the SQL). A key logged twice (a client retry) counts once.
WITH served_once AS (
    SELECT * FROM served QUALIFY row_number() OVER (PARTITION BY request_key ORDER BY ts, prediction_id) = 1
),
shadow_once AS (
    SELECT request_key, score, decision
    FROM shadow
    QUALIFY row_number() OVER (PARTITION BY request_key ORDER BY ts, prediction_id) = 1
)
SELECT
    s.* EXCLUDE (score, decision),
    s.score AS baseline_score,
    s.decision AS baseline_decision,
    c.score AS candidate_score,
    c.decision AS candidate_decision
FROM served_once AS s
JOIN shadow_once AS c USING (request_key)
ORDER BY s.ts, s.prediction_id
