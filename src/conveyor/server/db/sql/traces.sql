-- name: reserve_trace_range
-- Offset-checked append, step 1: move the job's trace size from :offset to :offset + :length
-- only if nobody else did. The row lock serialises appends of one job across server processes.
UPDATE jobs
SET trace_size = trace_size + :length, trace_crc32 = :crc32, updated_at = now(),
    acked_at = coalesce(acked_at, now())  -- a PATCH also confirms the hand-out
WHERE id = :job_id AND trace_size = :offset
RETURNING trace_size

-- name: append_chunk
-- Offset-checked append, step 2 (same transaction): extend or create one 128 KiB chunk.
INSERT INTO trace_chunks (job_id, chunk_index, data)
VALUES (:job_id, :chunk_index, :data)
ON CONFLICT (job_id, chunk_index)
DO UPDATE SET data = trace_chunks.data || EXCLUDED.data

-- name: seal_chunk
-- A live chunk moved from Redis into PostgreSQL (idempotent: a repeat stores the same bytes), and
-- the job's durable size raised to the chunk's end, in one statement.
WITH sealed AS (
    INSERT INTO trace_chunks (job_id, chunk_index, data, crc32)
    VALUES (:job_id, :chunk_index, :data, :crc32)
    ON CONFLICT (job_id, chunk_index) DO UPDATE SET data = EXCLUDED.data, crc32 = EXCLUDED.crc32
    RETURNING job_id
)
UPDATE jobs SET trace_size = :chunk_end
WHERE id = (SELECT job_id FROM sealed) AND trace_size < :chunk_end
