-- name: pending_projects
-- Fair scheduling (GitLab's instance-runner order): projects with pending jobs, fewest running
-- jobs first, then the oldest pending job. Distinct projects come from a loose index scan of
-- pending_jobs(project_id, job_id), so the cost grows with the number of projects, not of jobs.
WITH RECURSIVE projects(project_id) AS (
    (SELECT project_id FROM pending_jobs ORDER BY project_id LIMIT 1)
    UNION ALL
    SELECT (SELECT p.project_id FROM pending_jobs p
            WHERE p.project_id > projects.project_id ORDER BY p.project_id LIMIT 1)
    FROM projects WHERE projects.project_id IS NOT NULL
)
SELECT pr.project_id,
       (SELECT count(*) FROM jobs j
        WHERE j.project_id = pr.project_id AND j.status IN ('running', 'canceling')) AS running,
       (SELECT min(p.job_id) FROM pending_jobs p WHERE p.project_id = pr.project_id) AS oldest
FROM projects pr
WHERE pr.project_id IS NOT NULL
ORDER BY running, oldest
LIMIT :limit

-- name: claim_job
-- Take the oldest pending job of one project that this runner may run, in one statement: a row
-- another transaction holds is skipped, not waited for, so N runners claim N different jobs
-- without conflicts. The job is handed out (offered_at) and waits for the runner's
-- acknowledgement (acked_at, two-phase accept); its token hash changes with every hand-out.
WITH candidate AS (
    SELECT job_id FROM pending_jobs
    WHERE project_id = :project_id
      AND tags <@ CAST(:runner_tags AS text[])
      AND (:run_untagged OR cardinality(tags) > 0)
      AND (protected OR NOT :protected_only)
    ORDER BY job_id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), dequeued AS (
    DELETE FROM pending_jobs p USING candidate c
    WHERE p.job_id = c.job_id
    RETURNING p.job_id
)
UPDATE jobs j
SET status = 'running', runner_id = :runner_id, runner_manager_id = :runner_manager_id,
    token_hash = :token_hash, offered_at = now(), acked_at = NULL,
    started_at = now(), updated_at = now()
FROM dequeued d
WHERE j.id = d.job_id AND j.status = 'pending'
RETURNING j.*

-- name: enqueue_jobs
-- created -> pending, and into the queue with what matching needs (tags, protected).
WITH queued AS (
    UPDATE jobs SET status = 'pending', queued_at = now(), updated_at = now()
    WHERE id = ANY(CAST(:job_ids AS bigint[])) AND status = 'created'
    RETURNING id, project_id, tags, protected
)
INSERT INTO pending_jobs (job_id, project_id, tags, protected)
SELECT id, project_id, tags, protected FROM queued
ON CONFLICT (job_id) DO NOTHING
RETURNING job_id

-- name: requeue_unacknowledged
-- Two-phase accept: a job handed out but never confirmed (no PUT, no PATCH) within the window
-- goes back to pending with its old token revoked, so it can never run twice at once.
WITH stale AS (
    SELECT id FROM jobs
    WHERE status = 'running' AND acked_at IS NULL AND offered_at < now() - make_interval(secs => :timeout)
    FOR UPDATE SKIP LOCKED
), requeued AS (
    UPDATE jobs j
    SET status = 'pending', runner_id = NULL, runner_manager_id = NULL, token_hash = NULL,
        offered_at = NULL, started_at = NULL, queued_at = now(), updated_at = now()
    FROM stale WHERE j.id = stale.id
    RETURNING j.id, j.project_id, j.tags, j.protected
)
INSERT INTO pending_jobs (job_id, project_id, tags, protected)
SELECT id, project_id, tags, protected FROM requeued
ON CONFLICT (job_id) DO NOTHING
RETURNING job_id

-- name: stale_jobs
-- Jobs a sweep should end: pending too long, running without any update (the runner died),
-- canceling too long. Locked (SKIP LOCKED) so two server processes never end the same job.
SELECT id, pipeline_id, status FROM jobs
WHERE (status = 'pending' AND queued_at < now() - make_interval(secs => :pending_timeout))
   OR (status = 'running' AND acked_at IS NOT NULL AND updated_at < now() - make_interval(secs => :running_timeout))
   OR (status = 'canceling' AND updated_at < now() - make_interval(secs => :canceling_timeout))
ORDER BY id
LIMIT :limit
FOR UPDATE SKIP LOCKED
