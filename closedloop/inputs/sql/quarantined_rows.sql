-- The quarantine rows of a landing partition: where each came from, why it was held, and the
-- row exactly as it landed (as JSON), so nothing the user gave us is lost.
-- Inputs: `classified` (_status, _reason per first copy), `landed_rows` (_source_file, _source_row and
-- the row as a struct under its landed column names). Parameter: $day.
WITH held AS (
    SELECT _source_file, _source_row, prediction_id, _reason
    FROM classified
    WHERE _status = 'quarantined'
),
originals AS (
    SELECT _source_file, _source_row, to_json(_row) AS original
    FROM landed_rows SEMI JOIN held USING (_source_file, _source_row)
)
SELECT
    CAST($day AS DATE) AS partition_date,
    held._source_file AS source_file,
    held._source_row AS source_row,
    held.prediction_id,
    held._reason AS reason,
    originals.original
FROM held
JOIN originals USING (_source_file, _source_row)
ORDER BY source_file, source_row
