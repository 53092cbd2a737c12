-- Number the copies of each landed row: the first is _copy = 1; exact duplicates (client
-- retries that resent the whole row) follow in file and row order. Only rows whose
-- prediction_id occurs more than once can be copies, so only those are compared whole.
-- Input: `landing` (rows in closedloop's columns plus _source_file, _source_row).
-- A temporary table: it belongs to the caller's connection alone (closedloop.sql.connect).
CREATE TEMP TABLE copies AS
WITH counted AS (
    SELECT *, count(*) OVER (PARTITION BY prediction_id) AS _same_id
    FROM landing
),
repeated AS (
    SELECT
        * EXCLUDE (_same_id),
        to_json(struct_pack(*COLUMNS(* EXCLUDE (_source_file, _source_row, _same_id)))) AS _whole_row
    FROM counted
    WHERE _same_id > 1 OR prediction_id IS NULL
)
SELECT * EXCLUDE (_same_id), 1 AS _copy
FROM counted
WHERE _same_id = 1 AND prediction_id IS NOT NULL
UNION ALL BY NAME
SELECT
    * EXCLUDE (_whole_row),
    row_number() OVER (PARTITION BY _whole_row ORDER BY _source_file, _source_row) AS _copy
FROM repeated
