"""The FastAPI application: wiring of services in the lifespan, routers, the error handler.

``create_app(settings)`` expects resolved service URLs (``embedded.start`` fills them in when the
user set none). Everything a request needs hangs off ``Services`` in the lifespan state.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import structlog
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import keepalive
from conveyor.server import api
from conveyor.server.accounts import AdminTokens, JobTokenCache, Members, Projects, Runners, Users
from conveyor.server.accounts.runner_admin import RunnerAdmin
from conveyor.server.accounts.runner_scopes import RunnerScopes
from conveyor.server.archive import ArtifactService, RetryPolicy, TraceArchiver
from conveyor.server.archive.removal import Removal
from conveyor.server.context import DatabaseContext
from conveyor.server import periodic
from conveyor.server.db import Commenter, ConnectionBounds, StatementObserver, comments, create_engine, single_statements, upgrade
from conveyor.server.db.replicas import Reads, Replica, write_session
from conveyor.server.db import queries
from conveyor.server.errors import SettingsError
from conveyor.server.archive.test_reports import TestReports
from conveyor.server.metrics import Metrics
from conveyor.server.automation import HookDeliverer, Hooks, Poller, PushReceiver, ScheduleFirer, Schedules, Triggers
from conveyor.server.queue import Dispatcher, JobUpdates, Pipelines
from conveyor.server.queue.listing import Listings
from conveyor.server.queue.pipelines import CreatedPipeline
from conveyor.server.queue.admission import Admission
from conveyor.server.queue.actions import JobActions
from conveyor.server.queue.bridges import Bridges
from conveyor.server.queue.deployments import Deployments
from conveyor.server.queue.cancel import Cancellation
from conveyor.server.queue.notify import QueueNotifier
from conveyor.server.queue.schedule import Scheduler
from conveyor.server.queue.sweeper import Sweeper, SweepTimeouts
from conveyor.server.queue.limits import TraceLimit
from conveyor.server.settings import ServerSettings
from conveyor.server.sources import GitSources, TemplateDirectory
from conveyor.server.sources.repository import Repository
from conveyor.server.storage import ObjectStore, S3Options, SegmentFiles, open_store
from conveyor.server.variables import JobVariables, SecretBox, Variables
from conveyor.server.trace import PostgresTraceStore, RedisTraceStore, TraceReader, TraceStore
from conveyor.server.viewer import LiveTail, LogIndex, TraceEvents, Watchers
from conveyor.server import web
from conveyor.server.web import Sessions, create_site, gitlab_urls

log = structlog.get_logger(__name__)
REDIS_POOL_WAIT = 30  # seconds a Redis command waits for a pooled connection before failing
REDIS_RETRIES = 3  # reconnects for one command whose connection broke


@dataclass
class Automation:
    """The room of pipelines that start themselves (server/automation/)."""

    triggers: Triggers
    pushes: PushReceiver
    poller: Poller
    schedules: Schedules
    schedule_firer: ScheduleFirer
    hooks: Hooks
    hook_deliverer: HookDeliverer


@dataclass
class Services:
    settings: ServerSettings
    engine: AsyncEngine
    observer: StatementObserver
    reads: Reads  # stale-tolerant reads: a caught-up replica, else the primary (db/replicas.py)
    redis: Redis
    objects: ObjectStore
    traces: TraceStore
    reader: TraceReader
    archiver: TraceArchiver
    artifacts: ArtifactService
    dispatcher: Dispatcher
    notifier: QueueNotifier
    sweeper: Sweeper
    cancellation: Cancellation
    job_actions: JobActions
    scheduler: Scheduler
    job_updates: JobUpdates
    job_tokens: JobTokenCache
    limits: TraceLimit
    pipelines: Pipelines
    projects: Projects
    runners: Runners
    admin_tokens: AdminTokens  # every user's personal access tokens
    users: Users
    members: Members
    metrics: Metrics
    trace_events: TraceEvents
    watchers: Watchers
    live_tail: LiveTail
    log_index: LogIndex
    web_sessions: Sessions
    secrets: SecretBox
    variables: Variables
    automation: Automation
    listings: Listings  # the REST API's pages of pipelines and jobs (queue/listing.py)
    removal: Removal  # pipeline delete, job erase, with their stored bytes (archive/removal.py)
    runner_admin: RunnerAdmin  # the runners management API (accounts/runner_admin.py)
    runner_scopes: RunnerScopes  # project and group runners: access, projects served
    repository: Repository  # branches, commits, tree, files (sources/repository.py)
    bridges: Bridges | None = None  # trigger: jobs' downstream pipelines (queue/bridges.py)
    pulse: periodic.Pulse | None = None  # which per-second passes have work, one statement a beat (periodic.py)
    deployments: Deployments | None = None  # environment: (queue/deployments.py)
    test_reports: TestReports | None = None  # artifacts:reports:junit (archive/test_reports.py)

    async def ready(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            await self.redis.ping()
        except Exception:  # readiness reports, it does not raise
            return False
        return True


def build_services(settings: ServerSettings) -> Services:
    if not settings.database_url or not settings.redis_url:
        raise ValueError("create_app needs resolved database and redis URLs (see embedded.start)")
    observer = StatementObserver(settings.savepoint_policy, long_transaction=settings.db_long_transaction_threshold)
    engine = _engine(settings, settings.database_url, observer)
    reads = Reads(
        engine,
        [Replica(url, _engine(settings, url, observer)) for url in settings.replica_urls],
        max_lag=settings.db_replica_max_lag,
        retry_interval=settings.db_replica_retry_interval,
        check_interval=settings.db_replica_check_interval,
    )
    redis = _redis(settings)
    objects = _object_store(settings)
    traces = _trace_store(settings, engine, redis, objects)
    metrics = Metrics(observer)
    metrics.observe_trace_store(traces)
    sources = GitSources(Path(settings.data_dir) / "mirrors", timeout=settings.git_timeout)
    secrets = SecretBox(settings.secrets_key)
    job_variables = JobVariables(engine, secrets)
    job_tokens = JobTokenCache(settings.database_url, observer, settings.keepalive, ping_interval=settings.db_listen_ping_interval)
    job_updates = JobUpdates(
        engine,
        accept_timeout=settings.final_update_accept_timeout,
        touch_interval=min(60.0, settings.running_no_update_timeout / 4),
        tokens=job_tokens,
    )
    notifier = QueueNotifier(redis)
    archiver = TraceArchiver(
        engine, traces, objects, redis, interval=settings.archive_sweep_interval,
        retry=RetryPolicy(settings.archive_retry_base_delay, settings.archive_retry_max_delay),
        registry=metrics.registry,
    )
    reader = TraceReader(engine, traces, objects, reads=reads)
    trace_events = TraceEvents(redis, subscriber=_redis(settings, retries=0))
    job_tokens.on_revoked(trace_events.status_changed)  # tails end when the job does, by any path
    watchers = Watchers(
        redis, interval=settings.trace_update_interval, watched_interval=settings.trace_update_interval_watched
    )
    dispatcher = Dispatcher(
        engine,
        notifier,
        sources,
        server_url=settings.base_url,
        default_timeout=settings.job_timeout,
        long_poll_timeout=settings.long_poll_timeout,
        job_variables=job_variables,
        tokens=job_tokens,
    )
    admission = Admission(settings.pipeline_creation_concurrency)
    metrics.observe_admission(admission)
    pipelines = Pipelines(
        engine, sources, job_variables.for_rules, reads=reads,
        templates=TemplateDirectory(settings.ci_templates_dir), server_url=settings.base_url,
        admission=admission,
    )
    tokens = AdminTokens(engine, cache_ttl=settings.admin_token_cache_ttl)
    members = Members(engine)
    pulse = _pulse(settings, engine)
    return Services(
        settings=settings,
        engine=engine,
        observer=observer,
        reads=reads,
        redis=redis,
        objects=objects,
        traces=traces,
        reader=reader,
        archiver=archiver,
        artifacts=ArtifactService(
            engine,
            objects,
            size_limit=settings.artifact_size_limit,
            default_expire_in=settings.artifact_default_expire_in,
            sweep_interval=settings.sweep_interval,
        ),
        dispatcher=dispatcher,
        notifier=notifier,
        sweeper=Sweeper(
            engine,
            notifier,
            SweepTimeouts(
                ack=settings.ack_timeout,
                pending=settings.stuck_pending_timeout,
                running_no_update=settings.running_no_update_timeout,
                canceling=settings.canceling_timeout,
            ),
            interval=settings.sweep_interval,
            on_ended=archiver.wake,
        ),
        cancellation=Cancellation(engine),
        job_actions=JobActions(engine),
        scheduler=Scheduler(engine, notifier, interval=settings.schedule_interval, pulse=pulse),
        job_updates=job_updates,
        job_tokens=job_tokens,
        limits=TraceLimit(traces, redis, settings.trace_size_limit, settings.trace_tail_size),
        pipelines=pipelines,
        projects=Projects(engine, sources),
        runners=Runners(engine),
        admin_tokens=tokens,
        users=Users(engine, tokens),
        members=members,
        metrics=metrics,
        trace_events=trace_events,
        watchers=watchers,
        live_tail=LiveTail(
            engine,
            reader,
            trace_events,
            watchers,
            metrics.live_viewers,
            heartbeat=settings.sse_heartbeat,
            retry=settings.sse_retry,
        ),
        secrets=secrets,
        variables=Variables(engine, secrets),
        automation=_automation(settings, engine, sources, pipelines, dispatcher, secrets, pulse),
        listings=Listings(engine, reads),
        removal=Removal(engine, objects, traces),
        runner_admin=RunnerAdmin(engine),
        runner_scopes=RunnerScopes(engine, members),
        repository=Repository(sources),
        bridges=Bridges(engine, pipelines, objects, notifier, server_url=settings.base_url, interval=settings.schedule_interval,
                        pulse=pulse),
        pulse=pulse,
        deployments=Deployments(engine, JobActions(engine), notifier),
        test_reports=TestReports(engine, objects),
        log_index=LogIndex(reader),
        web_sessions=Sessions(redis),
    )


def _automation(
    settings: ServerSettings, engine: AsyncEngine, sources: GitSources, pipelines: Pipelines,
    dispatcher: Dispatcher, secrets: SecretBox, pulse: periodic.Pulse,
) -> Automation:
    async def started(created: CreatedPipeline) -> None:
        if created.enqueued:
            await dispatcher.tick(created.enqueued)

    pushes = PushReceiver(engine, pipelines, secrets, started, answer_within=settings.webhook_answer_within)
    schedules = Schedules(engine, pipelines, secrets)
    return Automation(
        triggers=Triggers(engine, pipelines),
        pushes=pushes,
        poller=Poller(engine, sources, pushes, interval=settings.poll_pass_interval),
        schedules=schedules,
        schedule_firer=ScheduleFirer(engine, schedules, started, interval=settings.schedule_pass_interval),
        hooks=Hooks(engine, secrets, allow_local=settings.hook_allow_local),
        hook_deliverer=HookDeliverer(
            engine, secrets, server_url=settings.base_url, keepalive_config=settings.keepalive,
            base_delay=settings.hook_retry_base_delay, max_attempts=settings.hook_max_attempts, pulse=pulse,
        ),
    )


def _pulse(settings: ServerSettings, engine: AsyncEngine) -> periodic.Pulse:
    """The scheduler's, the bridges' and hook deliveries' one question a beat (queries/pulse.py)."""
    single = single_statements(engine)

    async def probe() -> dict[str, bool]:
        async with single.connect() as conn:
            return await queries.pulse.due(conn)

    return periodic.Pulse(settings.schedule_interval, probe, log)


def _engine(settings: ServerSettings, url: str, observer: StatementObserver) -> AsyncEngine:
    """The primary's engine or a replica's: same observer, query comments and server-side bounds."""
    bounds = ConnectionBounds(settings.db_statement_timeout, settings.db_idle_in_transaction_timeout, "conveyor-server")
    return create_engine(
        url, observer, pool_size=settings.db_pool_size, keepalive_config=settings.keepalive,
        ping_after_idle=settings.db_ping_after_idle, bounds=bounds, commenter=Commenter(settings.db_query_comments),
    )


async def _background(name: str, work: Awaitable[None]) -> None:
    """A background task whose statements say ``task=<name>`` (sqlcommenter) and whose writes
    make its own later replica reads wait for them."""
    with comments.tagged(task=name), write_session():
        await work


def _object_store(settings: ServerSettings) -> ObjectStore:
    s3 = S3Options(
        endpoint=settings.object_store_endpoint,
        region=settings.object_store_region,
        access_key_id=settings.object_store_access_key_id,
        secret_access_key=settings.object_store_secret_access_key,
        allow_http=settings.object_store_allow_http,
        timeout=settings.object_store_timeout,
        retry_timeout=settings.object_store_retry_timeout,
        pool_idle_timeout=settings.object_store_pool_idle_timeout,
    )
    return open_store(settings.object_store_url, Path(settings.data_dir) / "objects", s3)


def _redis(settings: ServerSettings, *, retries: int = REDIS_RETRIES) -> Redis:
    """A Redis client whose TCP connections set keepalive (no-op on unix sockets).

    Its pool makes a command wait for a free connection (up to ``REDIS_POOL_WAIT`` seconds) when
    all ``redis_max_connections`` are busy; redis-py's default pool fails the command at once
    (``MaxConnectionsError``, a 500 on a log PATCH: seen with 500 jobs and 100 pollers).

    A pooled connection Redis dropped (a restart) fails its next command; with ``retries`` it is
    retried on a fresh one. Safe for every command the server sends: appends are offset-checked
    (a retried append that had landed answers 416 with the new size), the rest are idempotent or
    re-checked. Not for subscriptions (``retries=0``): redis-py would resubscribe unseen, and
    what was published meanwhile would be lost without the subscriber knowing to re-read.
    """
    pool_options: dict = {"max_connections": settings.redis_max_connections, "timeout": REDIS_POOL_WAIT}
    if retries:
        pool_options.update(retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries),
                            retry_on_error=[RedisConnectionError, RedisTimeoutError])
    if not settings.redis_url.startswith("unix://"):
        # redis-py applies TCP-level options only with SO_KEEPALIVE on: configured off, it stays on
        # at the kernel's 2 h idle (never within a firewall's timeout), with TCP_USER_TIMEOUT
        options = {option: value for level, option, value in keepalive.socket_options(settings.keepalive) if level != socket.SOL_SOCKET}
        pool_options.update(socket_keepalive=True, socket_keepalive_options=options)
    return Redis.from_pool(BlockingConnectionPool.from_url(settings.redis_url, **pool_options))


def _trace_store(settings: ServerSettings, engine: AsyncEngine, redis: Redis, objects: ObjectStore) -> TraceStore:
    if settings.trace_chunk_store not in ("auto", "object", "database"):
        raise ValueError(f"trace_chunk_store {settings.trace_chunk_store!r} must be auto, object or database")
    if settings.trace_store == "redis":
        local = objects.local_root
        if settings.trace_chunk_store == "database" or (settings.trace_chunk_store == "auto" and local is None):
            return RedisTraceStore(engine, redis, settings.trace_chunk_size)
        if local is None:  # S3: an object per chunk
            return RedisTraceStore(engine, redis, settings.trace_chunk_size, objects=objects)
        segments = SegmentFiles(local / "trace-segments", fsync=settings.trace_chunk_fsync, direct=settings.trace_chunk_direct)
        return RedisTraceStore(engine, redis, settings.trace_chunk_size, segments=segments)
    if settings.trace_store == "postgres":
        return PostgresTraceStore(engine, settings.trace_chunk_size)
    raise ValueError(f"trace_store {settings.trace_store!r} must be resolved to redis or postgres (see embedded.start)")


async def _check_secrets_key(services: Services) -> None:
    """Refuse to start without CONVEYOR_SECRETS_KEY when encrypted secrets are stored."""
    if services.secrets.configured:
        return
    async with services.engine.connect() as conn:
        stored = await queries.variables.any_stored(conn)
    if stored:
        await services.engine.dispose()
        raise SettingsError(
            "CONVEYOR_SECRETS_KEY is not set, but the database holds encrypted CI/CD variables or hook "
            "secrets: set it to the key they were stored with"
        )


# First, as every request tries the routes in order (~1.7 us each): the runner API and pipeline
# creation, a job's whole life. Their paths match no other router's (tests/unit/server/test_rest_routes.py),
# so going first changes no request's route, only how many routes it tries first (issue 24).
HOT_ROUTERS = (api.runner_v4.router, api.pipelines.router)


def create_app(settings: ServerSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Services]]:
        services = build_services(settings)
        await upgrade(services.engine)
        await _check_secrets_key(services)
        generated = await services.admin_tokens.ensure_root(settings.initial_root_token)
        if generated:
            print(f"Conveyor root token (shown once, store it now): {generated}", file=sys.stderr, flush=True)
        app.state.services = services
        _warm(app)
        archiver = asyncio.create_task(_background("trace-archiver", services.archiver.run()), name="trace-archiver")
        artifact_sweeper = asyncio.create_task(_background("artifact-sweeper", services.artifacts.run()), name="artifact-sweeper")
        background = [
            asyncio.create_task(_background("queue-notifier", services.notifier.run()), name="queue-notifier"),
            *([asyncio.create_task(_background("background-pulse", services.pulse.run()), name="background-pulse")] if services.pulse else []),
            asyncio.create_task(_background("queue-sweeper", services.sweeper.run()), name="queue-sweeper"),
            asyncio.create_task(_background("queue-scheduler", services.scheduler.run()), name="queue-scheduler"),
            asyncio.create_task(_background("trace-events", services.trace_events.run()), name="trace-events"),
            asyncio.create_task(_background("job-revocations", services.job_tokens.run()), name="job-revocations"),
            asyncio.create_task(_background("pipeline-schedules", services.automation.schedule_firer.run()), name="pipeline-schedules"),
            asyncio.create_task(_background("repository-poller", services.automation.poller.run()), name="repository-poller"),
            asyncio.create_task(_background("hook-deliverer", services.automation.hook_deliverer.run()), name="hook-deliverer"),
            *([asyncio.create_task(_background("queue-bridges", services.bridges.run()), name="queue-bridges")] if services.bridges else []),
            *([asyncio.create_task(_background("environment-auto-stop", services.deployments.run()), name="environment-auto-stop")]
              if services.deployments else []),
        ]
        try:
            yield {"services": services}
        finally:
            services.trace_events.close()  # live tails end; their clients reconnect elsewhere
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            archiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await archiver
            artifact_sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await artifact_sweeper
            await services.traces.aclose()
            await services.automation.hook_deliverer.aclose()
            await services.automation.pushes.aclose()
            await services.redis.aclose()
            await services.trace_events.aclose()
            await services.reads.dispose()
            await services.engine.dispose()

    app = FastAPI(
        title="Conveyor", summary="GitLab's REST API v4 (the subset Conveyor serves) and its runner API",
        lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url="/api/v4/openapi.json",
    )
    app.add_middleware(DatabaseContext)
    app.add_middleware(api.limits.RequestLimits, limit=settings.api_body_limit, webhook_limit=settings.webhook_body_limit)
    api.errors.install(app)
    for router in HOT_ROUTERS:
        app.include_router(router)
    app.include_router(api.health.router)
    app.include_router(api.registration.router)
    app.include_router(api.artifacts.router)
    app.include_router(api.users.router)
    app.include_router(api.members.router)
    app.include_router(api.projects.router)
    app.include_router(api.repository.router)
    app.include_router(api.job_artifacts.router)  # before jobs: /jobs/artifacts/:ref_name/...
    app.include_router(api.jobs.router)
    app.include_router(api.current_job.router)
    app.include_router(api.runners_admin.router)  # after registration: /runners/managers
    app.include_router(api.variables.router)
    app.include_router(api.triggers.router)
    app.include_router(api.triggers.public)
    app.include_router(api.schedules.router)
    app.include_router(api.hooks.router)
    app.include_router(api.pushes.router)
    app.include_router(api.pushes.public)
    if settings.bench_routes:
        app.include_router(api.bench.router)
    app.include_router(api.viewer.router)
    app.add_api_route("/", _home, include_in_schema=False)
    app.mount("/-", create_site())
    app.include_router(gitlab_urls.router)  # last: /<namespace>/<project>/-/jobs/:id and the like
    return app


def _warm(app: FastAPI) -> None:
    """Before the server accepts: the work a new process's first requests would do while someone
    waits (~120 ms of CPU measured): FastAPI builds each included router's routes (dependants,
    pydantic schemas) at the first request that walks them, Jinja2 compiles each template at
    its first page. Done here, on the start-up the ready line already waits for."""
    pending: list = list(app.router.routes)
    while pending:
        route = pending.pop()
        if hasattr(route, "effective_candidates"):  # FastAPI's lazily built included router
            pending += route.effective_candidates()
            route.effective_low_priority_routes()
        elif isinstance(getattr(route, "app", None), FastAPI):  # a mounted site
            pending += route.app.router.routes
    web.warm()


async def _home() -> RedirectResponse:
    return RedirectResponse("/-/", status_code=303)
