"""REST API for people and the CLI (GitLab's paths): projects, pipelines, jobs, job logs; each
route requires GitLab's role for it (``deps.project_access``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.engine import RowMapping

from conveyor.protocol import JobStatus, headers
from conveyor.server.accounts.access import Role
from conveyor.server.api import params
from conveyor.server.api.deps import CurrentActor, project_access, services
from conveyor.server.errors import RangeMismatch
from conveyor.server.queue.states import allowed_to_fail, when_of

if TYPE_CHECKING:
    from conveyor.server.app import Services

router = APIRouter(prefix="/api/v4")
_BYTES_RANGE = re.compile(r"^bytes=(\d+)-$")


class ProjectCreate(BaseModel):
    source: str | None = None
    import_url: str | None = None  # GitLab's name for a remote source
    name: str | None = None
    namespace_id: int | None = None


class PipelineCreate(BaseModel):
    ref: str | None = None
    variables: list[dict[str, str]] | None = None


@router.post("/projects", status_code=201)
async def create_project(
    request: Request, body: Annotated[ProjectCreate, Depends(params.model_body(ProjectCreate))], actor: CurrentActor
) -> dict[str, Any]:
    """In ``namespace_id`` (maintainer of the group) or the caller's own namespace."""
    svc = services(request)
    namespace_id = await svc.members.namespace_for_new_project(actor, body.namespace_id)
    project = await svc.projects.add(body.name, body.source or body.import_url or "", namespace_id)
    return _project(project)


@router.get("/projects")
async def list_projects(request: Request, actor: CurrentActor) -> list[dict[str, Any]]:
    """Every project for an administrator, else the caller's (as a member, or its group's)."""
    svc = services(request)
    return [_project(p) for p in await svc.members.visible(actor, await svc.projects.list())]


@router.get("/projects/{project}", dependencies=[Depends(project_access(Role.GUEST))])
async def get_project(request: Request, project: str) -> dict[str, Any]:
    return _project(await services(request).projects.get(project))


@router.post("/projects/{project}/pipeline", status_code=201, dependencies=[Depends(project_access(Role.DEVELOPER))])
async def create_pipeline(
    request: Request, project: str, body: Annotated[PipelineCreate, Depends(params.model_body(PipelineCreate))]
) -> dict[str, Any]:
    """``ref`` and ``variables`` from JSON, form, multipart or the query string (``?ref=main``)."""
    svc = services(request)
    row = await svc.projects.get(project)
    variables = {v["key"]: v.get("value", "") for v in (body.variables or [])}
    created = await svc.pipelines.create(row, body.ref, variables)
    if created.enqueued:
        await svc.dispatcher.tick(created.enqueued)
    return _pipeline(await svc.pipelines.get(row["id"], created.id))


@router.get("/projects/{project}/pipelines", dependencies=[Depends(project_access(Role.GUEST))])
async def list_pipelines(request: Request, project: str) -> list[dict[str, Any]]:
    svc = services(request)
    row = await svc.projects.get(project)
    return [_pipeline(p) for p in await svc.pipelines.list(row["id"])]


@router.get("/projects/{project}/pipelines/{pipeline_id}", dependencies=[Depends(project_access(Role.GUEST))])
async def get_pipeline(request: Request, project: str, pipeline_id: int) -> dict[str, Any]:
    svc = services(request)
    row = await svc.projects.get(project)
    return _pipeline(await svc.pipelines.get(row["id"], pipeline_id))


@router.get("/projects/{project}/pipelines/{pipeline_id}/jobs", dependencies=[Depends(project_access(Role.REPORTER))])
async def list_jobs(request: Request, project: str, pipeline_id: int, include_retried: bool = False) -> list[dict[str, Any]]:
    """The pipeline's jobs; retried attempts only with ``include_retried=true`` (GitLab's)."""
    svc = services(request)
    row = await svc.projects.get(project)
    await svc.pipelines.get(row["id"], pipeline_id)
    found = await svc.pipelines.jobs(pipeline_id, include_retried=include_retried)
    return [await _live_job(svc, j) for j in found if (j["spec"] or {}).get("trigger") is None]  # bridges: /bridges


@router.get("/projects/{project}/pipelines/{pipeline_id}/test_report", dependencies=[Depends(project_access(Role.REPORTER))])
async def test_report(request: Request, project: str, pipeline_id: int) -> dict[str, Any]:
    """The pipeline's JUnit test report (``artifacts:reports:junit``), as GitLab's."""
    svc = services(request)
    await svc.pipelines.get((await svc.projects.get(project))["id"], pipeline_id)
    return await svc.test_reports.for_pipeline(pipeline_id)


@router.get("/projects/{project}/environments", dependencies=[Depends(project_access(Role.REPORTER))])
async def list_environments(request: Request, project: str) -> list[dict[str, Any]]:
    svc = services(request)
    return await svc.deployments.environments((await svc.projects.get(project))["id"])


@router.post("/projects/{project}/environments/{environment_id}/stop", dependencies=[Depends(project_access(Role.DEVELOPER))])
async def stop_environment(request: Request, project: str, environment_id: int) -> dict[str, Any]:
    """Stop an environment: its on_stop job is played (GitLab's ``Environments::StopService``)."""
    svc = services(request)
    return await svc.deployments.stop((await svc.projects.get(project))["id"], environment_id)


@router.get("/projects/{project}/deployments", dependencies=[Depends(project_access(Role.REPORTER))])
async def list_deployments(request: Request, project: str) -> list[dict[str, Any]]:
    svc = services(request)
    return await svc.deployments.list((await svc.projects.get(project))["id"])


@router.get("/projects/{project}/pipelines/{pipeline_id}/bridges", dependencies=[Depends(project_access(Role.REPORTER))])
async def list_bridges(request: Request, project: str, pipeline_id: int) -> list[dict[str, Any]]:
    """The pipeline's trigger jobs, each with its latest ``downstream_pipeline`` (or null)."""
    svc = services(request)
    row = await svc.projects.get(project)
    await svc.pipelines.get(row["id"], pipeline_id)
    return [_bridge(b) for b in await svc.pipelines.bridges(pipeline_id)]


@router.get("/projects/{project}/jobs/{job_id}", dependencies=[Depends(project_access(Role.REPORTER))])
async def get_job(request: Request, project: str, job_id: int) -> dict[str, Any]:
    svc = services(request)
    row = await svc.projects.get(project)
    return await _live_job(svc, await svc.pipelines.job(row["id"], job_id))


async def _live_job(svc: Services, row: RowMapping) -> dict[str, Any]:
    """``_job`` with ``trace_size`` as live as the log: an active job's hot bytes count too."""
    job = _job(row)
    if JobStatus(row["status"]).is_active:
        job["trace_size"] = await svc.traces.size(row["id"])
    return job


@router.post("/projects/{project}/jobs/{job_id}/cancel", dependencies=[Depends(project_access(Role.DEVELOPER))])
async def cancel_job(request: Request, project: str, job_id: int) -> dict[str, Any]:
    svc = services(request)
    row = await svc.projects.get(project)
    await svc.pipelines.job(row["id"], job_id)
    status = await svc.cancellation.cancel_job(job_id)
    if status == "canceled":  # a running job goes through "canceling" and ends at its runner's final update
        await svc.trace_events.publish_finished(job_id, status)
    await svc.dispatcher.tick()  # the pipeline may have moved on
    return _job(await svc.pipelines.job(row["id"], job_id))


@router.post("/projects/{project}/jobs/{job_id}/play", dependencies=[Depends(project_access(Role.DEVELOPER))])
async def play_job(request: Request, project: str, job_id: int) -> dict[str, Any]:
    """Run a manual job, or a scheduled one now; 400 "Unplayable Job" otherwise."""
    svc = services(request)
    row = await svc.projects.get(project)
    result = await svc.job_actions.play(row["id"], job_id)
    if result.enqueued:
        await svc.dispatcher.tick(result.enqueued)
    return _job(await svc.pipelines.job(row["id"], result.job_id))


@router.post("/projects/{project}/jobs/{job_id}/retry", status_code=201, dependencies=[Depends(project_access(Role.DEVELOPER))])
async def retry_job(request: Request, project: str, job_id: int) -> dict[str, Any]:
    """A new attempt of a finished job (the old one is kept, ``retried``); returns the new job."""
    svc = services(request)
    row = await svc.projects.get(project)
    result = await svc.job_actions.retry(row["id"], job_id)
    if result.enqueued:
        await svc.dispatcher.tick(result.enqueued)
    return _job(await svc.pipelines.job(row["id"], result.job_id))


@router.post("/projects/{project}/pipelines/{pipeline_id}/retry", status_code=201, dependencies=[Depends(project_access(Role.DEVELOPER))])
async def retry_pipeline(request: Request, project: str, pipeline_id: int) -> dict[str, Any]:
    """Retry every failed or canceled job of the pipeline; returns the pipeline."""
    svc = services(request)
    row = await svc.projects.get(project)
    enqueued = await svc.job_actions.retry_pipeline(row["id"], pipeline_id)
    if enqueued:
        await svc.dispatcher.tick(enqueued)
    return _pipeline(await svc.pipelines.get(row["id"], pipeline_id))


@router.post("/projects/{project}/pipelines/{pipeline_id}/cancel", dependencies=[Depends(project_access(Role.DEVELOPER))])
async def cancel_pipeline(request: Request, project: str, pipeline_id: int) -> dict[str, Any]:
    svc = services(request)
    row = await svc.projects.get(project)
    await svc.pipelines.get(row["id"], pipeline_id)
    await svc.cancellation.cancel_pipeline(pipeline_id)
    await svc.dispatcher.tick()
    return _pipeline(await svc.pipelines.get(row["id"], pipeline_id))


@router.get("/projects/{project}/jobs/{job_id}/trace", dependencies=[Depends(project_access(Role.REPORTER))])
async def job_trace(request: Request, project: str, job_id: int) -> StreamingResponse:
    """The job's log as stored, from any byte offset with ``Range: bytes=N-`` (then 206)."""
    svc = services(request)
    row = await svc.projects.get(project)
    job = await svc.pipelines.job(row["id"], job_id)
    start = 0
    raw = request.headers.get("Range")
    if raw:
        match = _BYTES_RANGE.match(raw.strip())
        size = await svc.reader.size(job_id)
        if not match or int(match.group(1)) > size:
            raise RangeMismatch(size, f"416 Range Not Satisfiable - the log has {size} bytes")
        start = int(match.group(1))
    extra = {headers.JOB_STATUS: job["status"], "Accept-Ranges": "bytes"}
    return StreamingResponse(
        svc.reader.stream(job_id, start), status_code=206 if raw else 200, media_type="text/plain", headers=extra
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _project(row: RowMapping) -> dict[str, Any]:
    namespace = {"id": row["namespace_id"], "name": row["namespace_name"], "path": row["namespace_path"],
                 "kind": row["namespace_kind"], "full_path": row["namespace_path"], "parent_id": None}  # fmt: skip
    return {
        "id": row["id"], "name": row["name"], "path": row["name"], "source": row["source"], "default_branch": row["default_branch"],
        "path_with_namespace": f"{row['namespace_path']}/{row['name']}", "namespace": namespace,
        "name_with_namespace": f"{row['namespace_name']} / {row['name']}",
    }  # fmt: skip


def _pipeline(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "project_id": row["project_id"],
        "ref": row["ref"],
        "sha": row["sha"],
        "before_sha": row["before_sha"] or "0" * 40,
        "tag": row["tag"],
        "source": row["source"],
        "status": row["status"],
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "auto_canceled_by_id": row["auto_canceled_by_id"],
        "iid": row.get("iid"),
        "source": row.get("source"),
    }


def _bridge(row: RowMapping) -> dict[str, Any]:
    """A bridge as GitLab's ``/bridges`` shows it: the job fields and ``downstream_pipeline``."""
    bridge = _job(row)
    downstream = None
    if row["downstream_id"] is not None:
        downstream = {
            "id": row["downstream_id"], "iid": row["downstream_iid"], "project_id": row["downstream_project_id"],
            "sha": row["downstream_sha"], "ref": row["downstream_ref"], "status": row["downstream_status"],
            "source": row["downstream_source"], "created_at": _iso(row["downstream_created_at"]),
            "updated_at": _iso(row["downstream_finished_at"] or row["downstream_started_at"] or row["downstream_created_at"]),
        }  # fmt: skip
    bridge["downstream_pipeline"] = downstream
    bridge["downstream_errors"] = list(row["downstream_errors"] or [])  # why it could not be created
    return bridge


def _job(row: RowMapping) -> dict[str, Any]:
    started, finished = row["started_at"], row["finished_at"]
    return {
        "id": row["id"],
        "name": row["name"],
        "stage": row["stage"],
        "status": row["status"],
        "allow_failure": allowed_to_fail(row),
        "when": str(when_of(row["spec"])),
        "retried": row["retried"],
        "scheduled_at": _iso(row["scheduled_at"]),
        "resource_group": row["resource_group"],
        "failure_reason": row["failure_reason"],
        "exit_code": row["exit_code"],
        "coverage": row.get("coverage"),
        "pipeline": {"id": row["pipeline_id"]},
        "trace_size": row["trace_size"],  # durable bytes; the jobs endpoints put the live size here
        "trace_archived": row["trace_archived"],
        "trace_checksum": row["trace_checksum"],  # as the runner reported it at its final update
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "duration": (finished - started).total_seconds() if started and finished else None,
    }


present_pipeline = _pipeline  # the pipeline object other routers answer with (trigger, schedules)
