-- name: reserve_trace_range
-- Offset-checked append, step 1: move the job's trace size from :offset to :offset + :length
-- only if nobody else did. The row lock serialises appends of one job across server processes.
UPDATE jobs
SET trace_size = trace_size + :length, trace_crc32 = :crc32, updated_at = now(),
    acked_at = coalesce(acked_at, now())  -- a PATCH also confirms the hand-out
WHERE id = :job_id AND trace_size = :offset
RETURNING trace_size

-- name: append_chunks
-- Offset-checked append, step 2 (same transaction): extend or create the 128 KiB chunks the
-- append touches, all in one statement.
INSERT INTO trace_chunks (job_id, chunk_index, data)
SELECT :job_id, piece.chunk_index, piece.data
FROM unnest(CAST(:chunk_indexes AS integer[]), CAST(:pieces AS bytea[])) AS piece (chunk_index, data)
ON CONFLICT (job_id, chunk_index)
DO UPDATE SET data = trace_chunks.data || EXCLUDED.data

-- name: seal_chunks
-- Full (or final) chunks made durable with their lengths and CRC-32s, and the job's durable size
-- raised to the end of the last one, in one statement; for a log's final seal, the job's size and
-- CRC-32 set to the whole log's (:final_size, :final_crc32) instead. A NULL piece means the chunk's bytes were
-- written first to a segment file (segment, segment_offset) or, without one, to the object store.
-- An existing row is replaced only with :overwrite (a chunk a
-- PATCH carried whole is written before its append is known to win: first writer keeps the row,
-- and the winner overwrites it afterwards if it was not the first). Returns the indexes written.
WITH sealed AS (
    INSERT INTO trace_chunks (job_id, chunk_index, data, data_size, crc32, segment, segment_offset)
    SELECT :job_id, piece.chunk_index, piece.data, piece.data_size, piece.crc32, piece.segment, piece.segment_offset
    FROM unnest(CAST(:chunk_indexes AS integer[]), CAST(:pieces AS bytea[]), CAST(:sizes AS integer[]),
                CAST(:crc32s AS bigint[]), CAST(:segments AS text[]), CAST(:segment_offsets AS bigint[]))
         AS piece (chunk_index, data, data_size, crc32, segment, segment_offset)
    ON CONFLICT (job_id, chunk_index)
    DO UPDATE SET data = EXCLUDED.data, data_size = EXCLUDED.data_size, crc32 = EXCLUDED.crc32,
                  segment = EXCLUDED.segment, segment_offset = EXCLUDED.segment_offset
    WHERE CAST(:overwrite AS boolean)
    RETURNING chunk_index
), durable AS (
    UPDATE jobs SET trace_size = coalesce(CAST(:final_size AS bigint), CAST(:durable_end AS bigint)),
                    trace_crc32 = coalesce(CAST(:final_crc32 AS bigint), trace_crc32)
    WHERE id = :job_id
      AND (CAST(:final_size AS bigint) IS NOT NULL OR (trace_size < :durable_end AND EXISTS (SELECT FROM sealed)))
)
SELECT chunk_index FROM sealed
