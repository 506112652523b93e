"""The schema's single source: SQLAlchemy Core tables. Migrations must produce exactly this."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

_now = sa.text("now()")
# partial-index predicates, repeated word for word by the queries that use them
BRIDGE = "(spec ->> 'trigger') IS NOT NULL"
ACTIVE_BRIDGE = f"{BRIDGE} AND status IN ('pending', 'running', 'manual')"
ACTIVE_DOWNSTREAM = "source_job_id IS NOT NULL AND status NOT IN ('success', 'failed', 'canceled', 'skipped')"


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now)


def _tags(name: str = "tags") -> sa.Column:
    return sa.Column(name, ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]"))


# People (issue 20): id 1 is ``root``, the administrator the initial root token belongs to.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("state", sa.Text, nullable=False, server_default="active"),  # active | blocked
    _created_at(),  # username and email unique in any case
    sa.Index("uq_users_username_lower", sa.text("lower(username)"), unique=True),
    sa.Index("uq_users_email_lower", sa.text("lower(email)"), unique=True),
)

# A user's own namespace (kind ``user``) or a group (kind ``group``); ``path``: the full path.
namespaces = sa.Table(
    "namespaces",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    _created_at(),
    sa.Index("uq_namespaces_path_lower", sa.text("lower(path)"), unique=True),
)

# Group membership, inherited by the group's projects (the higher level counts).
group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column("namespace_id", sa.BigInteger, sa.ForeignKey("namespaces.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
    sa.Column("access_level", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Date),
    _created_at(),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("namespace_id", sa.BigInteger, sa.ForeignKey("namespaces.id"), nullable=False, server_default="1", index=True),  # root's before 0012
    sa.Column("source", sa.Text, nullable=False),  # a git URL or a local path
    sa.Column("default_branch", sa.Text),
    # refs whose pipelines are protected (the default branch always is)
    _tags("protected_refs"),
    _created_at(),
    # the last pipeline iid given out (CI_PIPELINE_IID), bumped under the row lock
    sa.Column("last_pipeline_iid", sa.BigInteger, nullable=False, server_default="0"),
)

pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("sha", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("variables", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    _created_at(),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    # interruptible: the newer pipeline on the same ref that auto-canceled this one
    sa.Column("auto_canceled_by_id", sa.BigInteger, sa.ForeignKey("pipelines.id", ondelete="SET NULL")),
    # how it started (CI_PIPELINE_SOURCE), the push's before SHA (CI_COMMIT_BEFORE_SHA), the
    # trigger or schedule that started it, and which pipeline variables are of type file
    sa.Column("source", sa.Text, nullable=False, server_default="push"),
    sa.Column("before_sha", sa.Text),
    sa.Column("tag", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("trigger_id", sa.BigInteger, sa.ForeignKey("pipeline_triggers.id", ondelete="SET NULL")),
    sa.Column("schedule_id", sa.BigInteger, sa.ForeignKey("pipeline_schedules.id", ondelete="SET NULL")),
    _tags("file_variables"),
    # what the predefined variables need (server/queue/predefined.py)
    sa.Column("iid", sa.BigInteger),  # per project; NULL for pipelines made before 0011
    # {message, author_name, author_email, timestamp, tag_message}: CI_COMMIT_*
    sa.Column("commit", JSONB),
    sa.Column("user", JSONB),  # {id, login, name, email} of who created it: GITLAB_USER_*
    # downstream pipelines: the parent (child pipelines) and the bridge job that made it
    sa.Column("parent_pipeline_id", sa.BigInteger, sa.ForeignKey("pipelines.id", ondelete="SET NULL")),
    sa.Column("source_job_id", sa.BigInteger, sa.ForeignKey("jobs.id", ondelete="SET NULL", use_alter=True), index=True),
    sa.Index("ix_pipelines_project_id_ref_id", "project_id", "ref", "id"),
    # downstream pipelines still running: the bridges task follows them
    sa.Index("ix_pipelines_active_downstream", "source_job_id", postgresql_where=sa.text(ACTIVE_DOWNSTREAM)),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("pipeline_id", sa.BigInteger, sa.ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("stage_idx", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("spec", JSONB, nullable=False),  # conveyor.protocol.JobSpec
    sa.Column("token_hash", sa.Text, unique=True),
    sa.Column("runner_id", sa.BigInteger, sa.ForeignKey("runners.id", ondelete="SET NULL")),
    sa.Column("runner_manager_id", sa.BigInteger, sa.ForeignKey("runner_managers.id", ondelete="SET NULL")),
    _tags(),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    # two-phase accept: handed to a runner at offered_at, confirmed by its PUT at acked_at
    sa.Column("offered_at", sa.DateTime(timezone=True)),
    sa.Column("acked_at", sa.DateTime(timezone=True)),
    sa.Column("failure_reason", sa.Text),
    sa.Column("exit_code", sa.Integer),
    sa.Column("trace_size", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("trace_crc32", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("trace_checksum", sa.Text),  # what the runner reported, "crc32:xxxxxxxx"
    sa.Column("trace_archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("final_state", JSONB),  # the runner's final PUT while we wait for its log (202)
    sa.Column("final_requested_at", sa.DateTime(timezone=True)),
    _created_at(),
    sa.Column("queued_at", sa.DateTime(timezone=True)),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    # when: delayed -> scheduled until this time; then the scheduler enqueues it
    sa.Column("scheduled_at", sa.DateTime(timezone=True)),
    # replaced by a newer attempt of the same name (GitLab's retried jobs); ignored by progression
    sa.Column("retried", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("resource_group", sa.Text),  # JobSpec.resource_group, for the waiting-job lookup
    sa.Column("coverage", sa.Float),  # coverage: regex's value in the finished job's log
    # a bridge whose downstream pipeline could not be created: why (GitLab's downstream_errors)
    sa.Column("downstream_errors", ARRAY(sa.Text)),
    # {key: value} of the job's artifacts:reports:dotenv (archive/dotenv.py), for the jobs after it
    sa.Column("dotenv_variables", JSONB),
    sa.Column("erased_at", sa.DateTime(timezone=True)),  # log and artifacts erased (GitLab's erase)
    # one current job per name; retried attempts keep theirs
    sa.Index("ix_jobs_pipeline_id_name", "pipeline_id", "name", unique=True, postgresql_where=sa.text("NOT retried")),
    # a claimed job's dependencies (queries.artifacts.for_dependencies): the earlier stages' jobs
    # of its pipeline, read without walking the pipeline's later ones (10,000 in bench/dispatch)
    sa.Index("ix_jobs_pipeline_id_stage_idx", "pipeline_id", "stage_idx", postgresql_where=sa.text("NOT retried")),
    # the bridges task's work lists (queue/bridges.py): bridges to trigger or following a downstream
    sa.Index("ix_jobs_active_bridges", "status", postgresql_where=sa.text(ACTIVE_BRIDGE)),
    # fair scheduling counts running jobs per project; sweeps find jobs by status and age
    sa.Index("ix_jobs_project_id_status", "project_id", "status"),
    sa.Index("ix_jobs_status_updated_at", "status", "updated_at"),
    sa.Index("ix_jobs_status_queued_at", "status", "queued_at"),
    # the scheduler's work lists: due delayed jobs, and jobs waiting for a resource group
    sa.Index("ix_jobs_scheduled_at", "scheduled_at", postgresql_where=sa.text("status = 'scheduled'")),
    sa.Index(
        "ix_jobs_waiting_for_resource",
        "project_id",
        "resource_group",
        "id",
        postgresql_where=sa.text("status = 'waiting_for_resource'"),
    ),
    # the archiver's work list: finished jobs whose log is still live (a handful, however many jobs)
    sa.Index(
        "ix_jobs_unarchived",
        "id",
        postgresql_where=sa.text("finished_at IS NOT NULL AND NOT trace_archived"),
    ),
)

runners = sa.Table(
    "runners",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("runner_type", sa.Text, nullable=False, server_default="instance_type"),
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("locked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("run_untagged", sa.Boolean, nullable=False, server_default=sa.true()),
    _tags("tag_list"),
    sa.Column("access_level", sa.Text, nullable=False, server_default="not_protected"),
    sa.Column("maximum_timeout", sa.Integer),
    sa.Column("token_expires_at", sa.DateTime(timezone=True)),
    sa.Column("system_id", sa.Text),
    sa.Column("version", sa.Text),
    sa.Column("executor", sa.Text),
    sa.Column("features", JSONB),
    sa.Column("contacted_at", sa.DateTime(timezone=True)),
    _created_at(),
)

runner_managers = sa.Table(
    "runner_managers",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("runner_id", sa.BigInteger, sa.ForeignKey("runners.id", ondelete="CASCADE"), nullable=False),
    sa.Column("system_id", sa.Text, nullable=False),
    sa.Column("version", sa.Text),
    sa.Column("revision", sa.Text),
    sa.Column("platform", sa.Text),
    sa.Column("architecture", sa.Text),
    sa.Column("executor", sa.Text),
    sa.Column("features", JSONB),
    sa.Column("contacted_at", sa.DateTime(timezone=True)),
    _created_at(),
    sa.UniqueConstraint("runner_id", "system_id"),
)

# Project runners: the projects each serves (GitLab's ci_runner_projects); the first row (lowest
# id) is its owner project. Group runners: the group each belongs to (ci_runner_namespaces).
runner_projects = sa.Table(
    "runner_projects",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("runner_id", sa.BigInteger, sa.ForeignKey("runners.id", ondelete="CASCADE"), nullable=False),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True),
    _created_at(),
    sa.UniqueConstraint("runner_id", "project_id"),
)

runner_namespaces = sa.Table(
    "runner_namespaces",
    metadata,
    sa.Column("runner_id", sa.BigInteger, sa.ForeignKey("runners.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("namespace_id", sa.BigInteger, sa.ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False, index=True),
)

# Personal access tokens (glpat-), SHA-256 digests only; ``scopes`` is space-separated.
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("scopes", sa.Text, nullable=False, server_default="api"),
    _created_at(),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, server_default="1", index=True),
    sa.Column("description", sa.Text),
    sa.Column("expires_at", sa.Date),
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
)

project_members = sa.Table(
    "project_members",
    metadata,
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
    sa.Column("access_level", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Date),
    _created_at(),
)

pending_jobs = sa.Table(
    "pending_jobs",
    metadata,
    sa.Column("job_id", sa.BigInteger, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("project_id", sa.BigInteger, nullable=False),
    _tags(),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    _created_at(),
    sa.Index("ix_pending_jobs_project_id_job_id", "project_id", "job_id"),
    # claims walk (tags, protected, project) groups: cost follows the number of groups, not of jobs
    sa.Index("ix_pending_jobs_tags_protected_project_id_job_id", "tags", "protected", "project_id", "job_id"),
)

# resource_group: at most one job of a group holds it at a time, per project. The row is the lock
# that serialises handing the group over; it is free when holder_job_id is NULL or that job ended.
resource_groups = sa.Table(
    "resource_groups",
    metadata,
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("holder_job_id", sa.BigInteger, sa.ForeignKey("jobs.id", ondelete="SET NULL")),
    _created_at(),
)

trace_chunks = sa.Table(
    "trace_chunks",
    metadata,
    sa.Column("job_id", sa.BigInteger, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("chunk_index", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary),  # NULL: the bytes are in the object store (trace.durable)
    sa.Column("data_size", sa.Integer),  # the chunk's length, set when sealed
    sa.Column("crc32", sa.BigInteger),  # set once the chunk is full (sealed)
    # the bytes are in a segment file (storage.segments) of the job's: its name and the offset
    sa.Column("segment", sa.Text),
    sa.Column("segment_offset", sa.BigInteger),
)

# Archiving a finished job's log, when it did not succeed at the first try (jobs.trace_archived
# says when it has). A failed attempt waits until next_attempt_at; checksum_mismatch (the runner's
# checksum disagrees with the stored bytes) holds the job's chunks for an operator, never retried.
trace_archives = sa.Table(
    "trace_archives",
    metadata,
    sa.Column("job_id", sa.BigInteger, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("checksum_mismatch", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("job_id", sa.BigInteger, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("file_type", sa.Text, nullable=False),  # archive, junit, dotenv, ...
    sa.Column("file_format", sa.Text, nullable=False),  # zip, gzip, raw, ...
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("object_key", sa.Text, nullable=False),
    sa.Column("expire_at", sa.DateTime(timezone=True)),
    _created_at(),
    sa.UniqueConstraint("job_id", "file_type"),
)

# --- pipelines that start themselves, with secrets (sources, triggers, schedules, variables, hooks)

# CI/CD variables. ``value`` is Fernet ciphertext (server/variables/crypto.py), never plain text.
# Instance variables have no environment scope (GitLab's); project ones are unique per scope.
instance_variables = sa.Table(
    "instance_variables",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("variable_type", sa.Text, nullable=False, server_default="env_var"),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("masked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("raw", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("description", sa.Text),
    _created_at(),
)

project_variables = sa.Table(
    "project_variables",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("variable_type", sa.Text, nullable=False, server_default="env_var"),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("masked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("hidden", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("raw", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("environment_scope", sa.Text, nullable=False, server_default="*"),
    sa.Column("description", sa.Text),
    _created_at(),
    sa.UniqueConstraint("project_id", "key", "environment_scope"),
)

# Pipeline trigger tokens (glptt-), stored as SHA-256 digests; ``token_head`` is what lists show.
pipeline_triggers = sa.Table(
    "pipeline_triggers",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("token_head", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("owner", sa.Text),
    sa.Column("expires_at", sa.Date),
    sa.Column("last_used", sa.DateTime(timezone=True)),
    _created_at(),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

# Cron schedules. ``next_run_at`` is the due time; the firing pass takes due rows FOR UPDATE SKIP
# LOCKED and moves next_run_at past now() in the same transaction, so a tick fires once.
pipeline_schedules = sa.Table(
    "pipeline_schedules",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("cron", sa.Text, nullable=False),
    sa.Column("cron_timezone", sa.Text, nullable=False, server_default="UTC"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("owner", sa.Text),
    sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
    _created_at(),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Index("ix_pipeline_schedules_next_run_at", "next_run_at", postgresql_where=sa.text("active")),
)

pipeline_schedule_variables = sa.Table(
    "pipeline_schedule_variables",
    metadata,
    sa.Column("schedule_id", sa.BigInteger, sa.ForeignKey("pipeline_schedules.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # Fernet ciphertext
    sa.Column("variable_type", sa.Text, nullable=False, server_default="env_var"),
)

# How a project's pipelines start besides the API: a push-webhook secret (Fernet ciphertext) and
# polling (``poll_interval`` seconds; 0 = off). A poller claims the row FOR UPDATE SKIP LOCKED when
# ``next_poll_at`` is due, so one process polls a project at a time; ``heads`` is {ref: sha} seen.
project_sources = sa.Table(
    "project_sources",
    metadata,
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("webhook_secret", sa.Text),
    sa.Column("poll_interval", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_poll_at", sa.DateTime(timezone=True)),
    sa.Column("heads", JSONB),
    sa.Index("ix_project_sources_next_poll_at", "next_poll_at", postgresql_where=sa.text("poll_interval > 0")),
)

# Push events received (webhooks) or seen (polling): one row per delivery and one per ref+sha, so
# a redelivery or the same push from two paths makes one pipeline.
push_events = sa.Table(
    "push_events",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("forge", sa.Text, nullable=False),  # gitlab, github, gitea, poll
    sa.Column("delivery_id", sa.Text),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("before_sha", sa.Text, nullable=False),
    sa.Column("sha", sa.Text, nullable=False),
    sa.Column("pipeline_id", sa.BigInteger, sa.ForeignKey("pipelines.id", ondelete="SET NULL")),
    _created_at(),
    sa.UniqueConstraint("project_id", "delivery_id"),
    sa.UniqueConstraint("project_id", "ref", "sha"),
)

# Project hooks (webhooks out). ``token`` is Fernet ciphertext: it is sent as X-Gitlab-Token.
project_hooks = sa.Table(
    "project_hooks",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("token", sa.Text),
    sa.Column("push_events", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("tag_push_events", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("pipeline_events", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("job_events", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("enable_ssl_verification", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("uuid", sa.Text, nullable=False),
    # GitLab's auto-disabling: after 4 failed attempts in a row the hook rests until disabled_until
    # (1 minute, doubling per further failure, at most a day); a success resets both
    sa.Column("recent_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled_until", sa.DateTime(timezone=True)),
    _created_at(),
)

# The delivery log and queue of webhooks out: a row per event and hook, retried with backoff by
# any server process (FOR UPDATE SKIP LOCKED on due rows), never inside a job transition.
hook_deliveries = sa.Table(
    "hook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("hook_id", sa.BigInteger, sa.ForeignKey("project_hooks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event", sa.Text, nullable=False),  # Pipeline Hook, Job Hook
    sa.Column("event_uuid", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),  # NULL: done (delivered or gave up)
    sa.Column("response_status", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    _created_at(),
    sa.Index("ix_hook_deliveries_next_attempt_at", "next_attempt_at", postgresql_where=sa.text("next_attempt_at IS NOT NULL")),
    sa.Index("ix_hook_deliveries_hook_id_id", "hook_id", "id"),
)


# environment: keyword (server/queue/deployments.py): an environment per (project, name); one
# deployment per job that deploys to it (action start, or stop); its status is its job's.
environments = sa.Table(
    "environments",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("slug", sa.Text, nullable=False),
    sa.Column("tier", sa.Text, nullable=False),
    _created_at(),
    sa.Column("stopped_at", sa.DateTime(timezone=True)),  # stopped without a stop job (no on_stop)
    sa.UniqueConstraint("project_id", "name"),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("environment_id", sa.BigInteger, sa.ForeignKey("environments.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("job_id", sa.BigInteger, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, unique=True),
    sa.Column("action", sa.Text, nullable=False),  # start or stop
    sa.Column("url", sa.Text),
    _created_at(),
)
