-- name: claim_job
-- Hand the next job this runner may run to it, in one statement.
-- 1. groups: every distinct (tags, protected, project) among pending jobs, by a loose index scan
--    of pending_jobs(tags, protected, project_id, job_id): the cost follows the number of groups,
--    never the number of pending jobs, however many jobs the runner may not take.
-- 2. matching, eligible: the groups this runner matches (the job's tags a subset of the runner's;
--    untagged jobs only with run_untagged; protected-only runners take protected jobs only;
--    project and group runners the jobs of the projects they serve), in fair order (GitLab's
--    instance-runner order): the project with fewer running jobs first, then the oldest.
-- 3. candidate: walking that order, the oldest job of a group no other transaction holds
--    (FOR UPDATE SKIP LOCKED); the LIMIT stops the walk at the first group that yields one, so
--    one row is locked, and N runners claim N different jobs without waiting on each other.
-- 4. the job leaves the queue, is handed out (offered_at; the runner's first PUT or PATCH
--    confirms it: two-phase accept) under a new token hash, and its pipeline is running.
WITH RECURSIVE groups(tags, protected, project_id, oldest) AS (
    -- each step is one index probe of pending_jobs(tags, protected, project_id, job_id); carrying
    -- job_id along gives every group its oldest job for free
    (SELECT tags, protected, project_id, job_id FROM pending_jobs
     ORDER BY tags, protected, project_id, job_id LIMIT 1)
    UNION ALL
    SELECT nxt.tags, nxt.protected, nxt.project_id, nxt.job_id
    FROM groups, LATERAL (
        SELECT p.tags, p.protected, p.project_id, p.job_id FROM pending_jobs p
        WHERE (p.tags, p.protected, p.project_id) > (groups.tags, groups.protected, groups.project_id)
        ORDER BY p.tags, p.protected, p.project_id, p.job_id
        LIMIT 1
    ) nxt
), matching AS MATERIALIZED (
    SELECT g.tags, g.protected, g.project_id, g.oldest
    FROM groups g
    WHERE g.tags <@ CAST(:runner_tags AS text[])
      AND (:run_untagged OR cardinality(g.tags) > 0)
      AND (g.protected OR NOT :protected_only)
      -- a project runner takes its projects' jobs only, a group runner its group's projects';
      -- an instance runner (NOT scoped) stops at the first operand: the lists are never read
      AND (NOT CAST(:scoped AS boolean) OR g.project_id IN (
            SELECT rp.project_id FROM runner_projects rp WHERE rp.runner_id = :runner_id
            UNION ALL
            SELECT pr.id FROM runner_namespaces rn JOIN projects pr ON pr.namespace_id = rn.namespace_id
            WHERE rn.runner_id = :runner_id))
), eligible AS MATERIALIZED (
    -- the running count orders projects, so it is read only when the runner could take jobs of
    -- two projects or more: counting a project's running jobs reads each of them (10,000 in
    -- bench/dispatch's drain, where every claimed job stays running), and one project's groups
    -- all have the same count
    SELECT m.tags, m.protected, m.project_id, m.oldest,
           CASE WHEN (SELECT count(DISTINCT project_id) FROM matching) > 1
                THEN (SELECT count(*) FROM jobs j
                      WHERE j.project_id = m.project_id AND j.status IN ('running', 'canceling'))
                ELSE 0 END AS running
    FROM matching m
    ORDER BY running, oldest
), candidate AS (
    SELECT c.job_id
    FROM eligible e
    CROSS JOIN LATERAL (
        -- the group is bounded by two row comparisons, not by equalities: with equalities the
        -- planner reduces the ORDER BY to job_id and may walk the primary key past every other
        -- group's jobs (100,000 of them in bench/dispatch); row bounds keep the whole sort key,
        -- which only the group index provides, so this is one index range scan of the group
        SELECT p.job_id FROM pending_jobs p
        WHERE (p.tags, p.protected, p.project_id, p.job_id) >= (e.tags, e.protected, e.project_id, e.oldest)
          AND (p.tags, p.protected, p.project_id) <= (e.tags, e.protected, e.project_id)
        ORDER BY p.tags, p.protected, p.project_id, p.job_id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) c
    LIMIT 1
), dequeued AS (
    DELETE FROM pending_jobs p USING candidate c
    WHERE p.job_id = c.job_id
    RETURNING p.job_id
), claimed AS (
    UPDATE jobs j
    SET status = 'running', runner_id = :runner_id, runner_manager_id = :runner_manager_id,
        token_hash = :token_hash, offered_at = now(), acked_at = NULL,
        started_at = now(), updated_at = now()
    FROM dequeued d
    WHERE j.id = d.job_id AND j.status = 'pending'
    RETURNING j.*
), started AS (
    UPDATE pipelines pl
    SET status = 'running', started_at = coalesce(pl.started_at, now())
    FROM claimed c
    WHERE pl.id = c.pipeline_id AND pl.status IN ('created', 'pending')
    RETURNING pl.id
)
-- everything the job payload needs, so the hand-out is this one round trip (and one transaction)
SELECT c.*, (SELECT count(*) FROM started) AS pipeline_started,
       pr.name AS project_name, pr.source AS project_source, pr.default_branch AS project_default_branch,
       pr.protected_refs AS project_protected_refs,
       pl.ref AS pipeline_ref, pl.sha AS pipeline_sha, pl.variables AS pipeline_variables,
       -- the predefined variables' facts (server/queue/predefined.py)
       pl.created_at AS pipeline_created_at, pl.iid AS pipeline_iid, pl.source AS pipeline_source,
       pl.before_sha AS pipeline_before_sha, pl.tag AS pipeline_tag, pl.commit AS pipeline_commit,
       pl."user" AS pipeline_user, pl.file_variables AS pipeline_file_variables,
       -- CI/CD variables (values still encrypted): the instance's (level 0), then the project's
       (SELECT coalesce(jsonb_agg(v ORDER BY v.level, v.id), '[]'::jsonb) FROM (
            SELECT 0 AS level, id, key, value, variable_type, protected, masked, raw, '*' AS environment_scope
            FROM instance_variables
            UNION ALL
            SELECT 1, id, key, value, variable_type, protected, masked, raw, environment_scope
            FROM project_variables WHERE project_id = c.project_id
        ) v) AS ci_variables,
       -- the jobs it takes artifacts and dotenv variables from (queries.artifacts.for_dependencies
       -- in SQL): of earlier stages, or of its needs; with dependencies:, those among them; each
       -- with its live archive (filename and size null without one) or its dotenv variables.
       -- Each branch's first condition reads only the claimed row, so the other is never run.
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'id', d.id, 'name', d.name, 'filename', a.filename, 'size', a.size,
                    'dotenv_variables', d.dotenv_variables) ORDER BY d.stage_idx, d.id), '[]'::jsonb)
        FROM (
            SELECT e.id, e.name, e.stage_idx, e.dotenv_variables FROM jobs e  -- ix_jobs_pipeline_id_stage_idx
            WHERE jsonb_typeof(c.spec->'needs') IS DISTINCT FROM 'array'
              AND e.pipeline_id = c.pipeline_id AND e.stage_idx < c.stage_idx AND NOT e.retried
            UNION ALL
            SELECT e.id, e.name, e.stage_idx, e.dotenv_variables FROM jobs e  -- ix_jobs_pipeline_id_name
            WHERE jsonb_typeof(c.spec->'needs') = 'array'
              AND e.pipeline_id = c.pipeline_id AND NOT e.retried
              AND e.name IN (SELECT jsonb_array_elements_text(c.spec->'needs'))
        ) d
        LEFT JOIN artifacts a ON a.job_id = d.id AND a.file_type = 'archive'
                             AND (a.expire_at IS NULL OR a.expire_at > now())
        WHERE (a.id IS NOT NULL OR d.dotenv_variables IS NOT NULL)
          AND (jsonb_typeof(c.spec->'dependencies') IS DISTINCT FROM 'array'
               OR d.name IN (SELECT jsonb_array_elements_text(c.spec->'dependencies')))
       ) AS dependencies
FROM claimed c
JOIN projects pr ON pr.id = c.project_id
JOIN pipelines pl ON pl.id = c.pipeline_id

-- name: enqueue_jobs
-- created -> pending, and into the queue with what matching needs (tags, protected).
WITH queued AS (
    UPDATE jobs SET status = 'pending', queued_at = now(), updated_at = now()
    WHERE id = ANY(CAST(:job_ids AS bigint[])) AND status = 'created'
    RETURNING id, project_id, tags, protected, spec->>'trigger' IS NOT NULL AS bridge
)
-- a bridge (trigger:) is for the server (queue/bridges.py), never for a runner
INSERT INTO pending_jobs (job_id, project_id, tags, protected)
SELECT id, project_id, tags, protected FROM queued WHERE NOT bridge
ON CONFLICT (job_id) DO NOTHING
RETURNING job_id, tags, protected

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
RETURNING job_id, tags, protected

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
