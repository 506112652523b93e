"""GitLab's pipelines API (rest-api.md 2.5): list with filters, get, latest, create with
variables, retry, cancel, delete, variables, jobs, bridges, test report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from conveyor.protocol import JobStatus
from conveyor.server.api import pagination, params, presenters
from conveyor.server.api.deps import Developer, Guest, Owner, Reporter, services
from conveyor.server.api.openapi import LIST, OBJECT, doc
from conveyor.server.errors import Forbidden, ParamError
from conveyor.server.queue.listing import PipelineFilter, Window
from conveyor.server.queue.pipelines import Origin

router = APIRouter(prefix="/api/v4/projects/{project}")
STATUSES = ("created", "waiting_for_resource", "preparing", "pending", "running", "success", "failed",
            "canceling", "canceled", "skipped", "manual", "scheduled")
SOURCES = ("push", "web", "trigger", "schedule", "api", "external", "pipeline", "chat", "webide",
           "merge_request_event", "external_pull_request_event", "parent_pipeline", "ondemand_dast_scan",
           "ondemand_dast_validation", "security_orchestration_policy")
SCOPES = ("running", "pending", "finished", "branches", "tags")
ORDERS = ("id", "status", "ref", "updated_at", "user_id")
_FILTERS = ("status", "ref", "sha", "source", "scope", "username", "updated_after", "updated_before",
            "created_after", "created_before", "order_by", "sort")


def _time(found: dict[str, Any], name: str) -> datetime | None:
    value = params.text(found, name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ParamError(f"{name} is invalid") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # a bare date or time is UTC


def _filter(found: dict[str, Any]) -> PipelineFilter:
    return PipelineFilter(
        status=params.choice(found, "status", STATUSES), ref=params.text(found, "ref"), sha=params.text(found, "sha"),
        source=params.choice(found, "source", SOURCES), scope=params.choice(found, "scope", SCOPES),
        username=params.text(found, "username"),
        **{name: _time(found, name) for name in ("updated_after", "updated_before", "created_after", "created_before")},
    )


def statuses(found: dict[str, Any], allowed: tuple[str, ...]) -> list[str]:
    """``scope`` / ``scope[]`` / ``scope[0]`` as a list of job statuses; Grape's 400 for others."""
    value = found.get("scope")
    chosen = [value] if isinstance(value, str) else list(value or []) if isinstance(value, list) else []
    if isinstance(value, dict) or any(not isinstance(v, str) or v not in allowed for v in chosen):
        raise ParamError("scope does not have a valid value")
    return chosen


async def present_jobs(request: Request, rows: list[Any], path: str) -> list[dict[str, Any]]:
    """Jobs as GitLab shows them, with their artifacts; an active job's ``trace_size`` is as live
    as its log (hot bytes not yet durable count too)."""
    svc = services(request)
    found = await svc.listings.artifacts([r["id"] for r in rows])
    base = svc.settings.base_url
    shown = [presenters.job(r, base, path, found.get(r["id"], ())) for r in rows]
    for row, item in zip(rows, shown, strict=True):
        if JobStatus(row["status"]).is_active:
            item["trace_size"] = await svc.traces.size(row["id"])
    return shown


def _shown(request: Request, access: Any, row: Any, *, full: bool = True) -> dict[str, Any]:
    return presenters.pipeline(row, services(request).settings.base_url, presenters.path_of(access.project), full=full)


async def _full(request: Request, access: Any, row: Any) -> dict[str, Any]:
    """The full pipeline with its ``coverage``: the average of its jobs' as a string (GitLab's)."""
    shown = _shown(request, access, row)
    coverage = await services(request).listings.coverage(row["id"])
    shown["coverage"] = f"{coverage:.2f}" if coverage is not None else None
    return shown


@router.get("/pipelines", **doc(_FILTERS, listing=True, answer=LIST))
async def list_pipelines(request: Request, access: Guest) -> JSONResponse:
    """Newest first by default; child pipelines only with ``source=parent_pipeline``."""
    found = await params.read(request)
    page = pagination.page_of(found)
    order_by = params.choice(found, "order_by", ORDERS, "id") or "id"
    sort = params.choice(found, "sort", ("asc", "desc"), "desc") or "desc"
    rows, total = await services(request).listings.pipelines(
        access.project_id, _filter(found), order_by, sort, Window(page.limit, page.offset)
    )
    return pagination.respond(request, [_shown(request, access, r, full=False) for r in rows], page, total)


@router.get("/pipelines/latest", **doc(("ref",), answer=OBJECT))
async def latest_pipeline(request: Request, access: Guest) -> dict[str, Any]:
    """The newest pipeline of ``ref`` (the default branch if omitted); GitLab's 403 when none."""
    found = await params.read(request)
    ref = params.text(found, "ref") or access.project["default_branch"] or "main"
    row = await services(request).listings.latest_pipeline(access.project_id, ref)
    if row is None:
        raise Forbidden("403 Forbidden")
    return await _full(request, access, row)


@router.post("/pipeline", status_code=201, **doc(body=("ref", "variables"), answer=OBJECT, status=201))
async def create_pipeline(request: Request, access: Developer) -> dict[str, Any]:
    """A pipeline for ``ref`` with ``variables``, an array of ``{key, value, variable_type}``
    (``file`` variables become files in the job). Two differences from GitLab, kept because the
    CLI and existing pipelines rely on them: without ``ref`` the default branch is taken (GitLab:
    ``ref is missing``), and the source stays ``push`` (GitLab: ``api``, under which
    ``rules:changes`` always matches)."""
    found = await params.read(request)
    ref = params.text(found, "ref")
    given = found.get("variables") or []
    if isinstance(given, dict):  # Rails' variables[KEY]=value form
        given = [{"key": k, "value": v} for k, v in given.items()]
    if not isinstance(given, list) or not all(isinstance(v, dict) and "key" in v for v in given):
        raise ParamError("variables is invalid")
    variables = {str(v["key"]): str(v.get("value") or "") for v in given}
    files = tuple(str(v["key"]) for v in given if v.get("variable_type") == "file")
    svc = services(request)
    origin = Origin(file_variables=files, user=await svc.users.starter(access.actor))
    created = await svc.pipelines.create(access.project, ref, variables, origin)
    if created.enqueued:
        await svc.dispatcher.tick(created.enqueued)
    return _shown(request, access, created.row)  # as created: none of its jobs has a coverage yet


@router.get("/pipelines/{pipeline_id}", **doc(answer=OBJECT))
async def get_pipeline(request: Request, access: Guest, pipeline_id: int) -> dict[str, Any]:
    return await _full(request, access, await services(request).pipelines.get(access.project_id, pipeline_id))


@router.post("/pipelines/{pipeline_id}/retry", status_code=201, **doc(answer=OBJECT, status=201))
async def retry_pipeline(request: Request, access: Developer, pipeline_id: int) -> dict[str, Any]:
    """Retry every failed or canceled job of the pipeline; returns the pipeline."""
    svc = services(request)
    enqueued = await svc.job_actions.retry_pipeline(access.project_id, pipeline_id)
    answer = await _full(request, access, await svc.pipelines.get(access.project_id, pipeline_id))
    if enqueued:  # after the answer is read: it shows the pipeline as the retry left it
        await svc.dispatcher.tick(enqueued)
    return answer


@router.post("/pipelines/{pipeline_id}/cancel", **doc(answer=OBJECT))
async def cancel_pipeline(request: Request, access: Developer, pipeline_id: int) -> dict[str, Any]:
    """Cancel what has not finished; GitLab answers 200, in any state."""
    svc = services(request)
    await svc.pipelines.get(access.project_id, pipeline_id)
    await svc.cancellation.cancel_pipeline(pipeline_id)
    await svc.dispatcher.tick()
    return await _full(request, access, await svc.pipelines.get(access.project_id, pipeline_id))


@router.delete("/pipelines/{pipeline_id}", status_code=204)
async def delete_pipeline(request: Request, access: Owner, pipeline_id: int) -> Response:
    """Delete the pipeline, its jobs, their logs and artifacts (from the object store too)."""
    await services(request).removal.delete_pipeline(access.project_id, pipeline_id)
    return Response(status_code=204)


@router.get("/pipelines/{pipeline_id}/variables", **doc(answer=LIST))
async def pipeline_variables(request: Request, access: Developer, pipeline_id: int) -> list[dict[str, Any]]:
    """The variables the pipeline was created with: ``[{key, value, variable_type}]``."""
    row = await services(request).pipelines.get(access.project_id, pipeline_id)
    files = set(row["file_variables"] or [])
    return [{"key": k, "value": v, "variable_type": "file" if k in files else "env_var"} for k, v in (row["variables"] or {}).items()]


@router.get("/pipelines/{pipeline_id}/jobs", **doc(("scope", "scope[]", "include_retried"), listing=True, answer=LIST))
async def pipeline_jobs(request: Request, access: Reporter, pipeline_id: int) -> JSONResponse:
    """The pipeline's jobs (not bridges) in stage order; retried attempts with ``include_retried``."""
    return await _jobs(request, access, pipeline_id, bridges=False)


@router.get("/pipelines/{pipeline_id}/bridges", **doc(("scope", "scope[]"), listing=True, answer=LIST))
async def pipeline_bridges(request: Request, access: Reporter, pipeline_id: int) -> JSONResponse:
    """The pipeline's trigger jobs, each with its latest ``downstream_pipeline`` (or null)."""
    return await _jobs(request, access, pipeline_id, bridges=True)


async def _jobs(request: Request, access: Any, pipeline_id: int, *, bridges: bool) -> JSONResponse:
    svc = services(request)
    found = await params.read(request)
    await svc.pipelines.get(access.project_id, pipeline_id)
    page = pagination.page_of(found)
    chosen = statuses(found, STATUSES)
    retried = bool(params.boolean(found, "include_retried", False))
    rows, total = await svc.listings.pipeline_jobs(pipeline_id, chosen, retried, Window(page.limit, page.offset), bridges=bridges)
    path = presenters.path_of(access.project)
    shown = await present_jobs(request, rows, path)
    if bridges:
        downstream = {b["id"]: b for b in await svc.pipelines.bridges(pipeline_id)}
        for item in shown:
            item.update(_downstream(downstream.get(item["id"]), svc.settings.base_url, path))
    return pagination.respond(request, shown, page, total)


def _downstream(row: Any, base: str, path: str) -> dict[str, Any]:
    if row is None or row["downstream_id"] is None:
        return {"downstream_pipeline": None, "downstream_errors": list((row or {}).get("downstream_errors") or [])}
    updated = row["downstream_finished_at"] or row["downstream_started_at"] or row["downstream_created_at"]
    return {
        "downstream_pipeline": {
            "id": row["downstream_id"], "iid": row["downstream_iid"], "project_id": row["downstream_project_id"],
            "sha": row["downstream_sha"], "ref": row["downstream_ref"], "status": row["downstream_status"],
            "source": row["downstream_source"], "created_at": presenters.iso(row["downstream_created_at"]),
            "updated_at": presenters.iso(updated), "web_url": f"{base}/{path}/-/pipelines/{row['downstream_id']}",
        },
        "downstream_errors": list(row["downstream_errors"] or []),
    }


@router.get("/pipelines/{pipeline_id}/test_report", **doc(answer=OBJECT))
async def test_report(request: Request, access: Reporter, pipeline_id: int) -> dict[str, Any]:
    """The pipeline's JUnit test report (``artifacts:reports:junit``), as GitLab's."""
    svc = services(request)
    await svc.pipelines.get(access.project_id, pipeline_id)
    return await svc.test_reports.for_pipeline(pipeline_id)
