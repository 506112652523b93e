-- name: claim_job
-- Take the oldest pending job no other transaction holds, in one statement: the row lock is
-- skipped rather than waited for, so N runners claim N different jobs without conflicts.
WITH candidate AS (
    SELECT job_id FROM pending_jobs
    ORDER BY job_id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), dequeued AS (
    DELETE FROM pending_jobs p USING candidate c
    WHERE p.job_id = c.job_id
    RETURNING p.job_id
)
UPDATE jobs j
SET status = 'running', runner_id = :runner_id, token_hash = :token_hash,
    started_at = now(), updated_at = now()
FROM dequeued d
WHERE j.id = d.job_id AND j.status = 'pending'
RETURNING j.*
