"""Pages people read: projects, a project's pipelines, a pipeline, a job, runners; each a thin
read over the services the API uses, rendered by a template, showing only what the signed-in user
may see with the API's roles (``render.visit``: a project they cannot see answers 404; jobs, logs,
artifacts and test reports need Reporter; runners are for administrators)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from conveyor.protocol import JobStatus
from conveyor.server.accounts.access import Role
from conveyor.server.api.deps import services
from conveyor.server.errors import BadRequest, Forbidden
from conveyor.server.web import graph, logs, render, views
from conveyor.server.web import rows as log_rows
from conveyor.server.web.render import REFUSED, page, signed_in, visit
from conveyor.server.web.sessions import Session

router = APIRouter()
STATUSES = ("created", "waiting_for_resource", "pending", "running", "success", "failed", "canceling", "canceled",
            "skipped", "manual", "scheduled")


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/-/", ended: str = "") -> HTMLResponse:
    """The sign-in form; ``ended`` says why the last session ended (``render.REFUSED``)."""
    return await page(request, "login.html", None, next=next, title="Sign in", error=render.ended(ended) if ended in REFUSED else None)


@router.get("/", response_class=HTMLResponse)
async def projects(request: Request, session: Session = Depends(signed_in)) -> HTMLResponse:
    svc = services(request)
    assert session.actor is not None
    latest = await svc.pipelines.latest()
    rows = [
        {"id": p["id"], "name": p["name"], "default_branch": p["default_branch"] or "",
         "last": views.pipeline(latest[p["id"]]) if p["id"] in latest else None}
        for p in await svc.members.visible(session.actor, await svc.projects.list())
    ]
    return await page(request, "projects.html", session, projects=rows, title="Projects")


@router.get("/projects/{project}/pipelines", response_class=HTMLResponse)
async def pipelines(
    request: Request, project: str, ref: str = "", status: str = "", before: int | None = None,
    session: Session = Depends(signed_in),
) -> HTMLResponse:
    if status and status not in STATUSES:
        raise BadRequest(f"400 Bad request - status does not have a valid value: {status}")
    svc = services(request)
    access = await visit(request, project, session)
    row = access.project
    listed, next_before = await svc.pipelines.page(row["id"], before_id=before, ref=ref or None, status=status or None)
    return await page(
        request, "pipelines.html", session, project=row, pipelines=[views.pipeline(p) for p in listed],
        next_before=next_before, ref=ref, status=status, statuses=STATUSES, title=f"Pipelines · {row['name']}",
        can_act=access.may_act(),
    )


@router.get("/projects/{project}/pipelines/{pipeline_id}", response_class=HTMLResponse)
async def pipeline(request: Request, project: str, pipeline_id: int, session: Session = Depends(signed_in)) -> HTMLResponse:
    svc = services(request)
    access = await visit(request, project, session, Role.REPORTER)  # it lists jobs: the API's Reporter
    row = access.project
    state = views.pipeline(await svc.pipelines.get(row["id"], pipeline_id))
    jobs = views.jobs(await svc.pipelines.jobs(pipeline_id, include_retried=True))
    return await page(
        request, "pipeline.html", session, project=row, pipeline=state, graph=graph.layout(jobs),
        layout=graph, title=f"#{pipeline_id} · {row['name']}", status=state["status"], can_act=access.may_act(),
    )


@router.get("/projects/{project}/pipelines/{pipeline_id}/tests", response_class=HTMLResponse)
async def tests(request: Request, project: str, pipeline_id: int, session: Session = Depends(signed_in)) -> HTMLResponse:
    """The pipeline's JUnit test report (``artifacts:reports:junit``): suites, failed cases."""
    svc = services(request)
    row = (await visit(request, project, session, Role.REPORTER)).project
    await svc.pipelines.get(row["id"], pipeline_id)  # 404 unless the pipeline is the project's
    report = await svc.test_reports.for_pipeline(pipeline_id)
    return await page(request, "tests.html", session, project=row, pipeline_id=pipeline_id, report=report,
                      title=f"Tests · #{pipeline_id} · {row['name']}")  # fmt: skip


@router.get("/projects/{project}/pipelines/{pipeline_id}/status.json")
async def pipeline_status(request: Request, project: str, pipeline_id: int, session: Session = Depends(signed_in)) -> JSONResponse:
    """What the pipeline page polls: its status and each job's (one cheap read, see the README)."""
    svc = services(request)
    row = (await visit(request, project, session, Role.REPORTER)).project
    state = views.pipeline(await svc.pipelines.get(row["id"], pipeline_id))
    jobs = views.jobs(await svc.pipelines.jobs(pipeline_id, include_retried=True))
    return JSONResponse({"status": state["status"], "duration": state["duration"], "jobs": {
        str(j["id"]): {"status": j["status"], "label": j["label"], "duration": j["duration"], "name": j["name"]} for j in jobs
    }})


@router.get("/projects/{project}/jobs/{job_id}", response_class=HTMLResponse)
async def job(request: Request, project: str, job_id: int, session: Session = Depends(signed_in)) -> HTMLResponse:
    svc = services(request)
    access = await visit(request, project, session, Role.REPORTER)
    row = access.project
    state = await _job(request, row["id"], job_id)
    sibling_rows, artifact_rows, tail = await asyncio.gather(
        svc.pipelines.jobs(state["pipeline_id"], include_retried=True), svc.artifacts.for_job(job_id),
        logs.inline_tail(request, job_id),
    )
    siblings = views.jobs(sibling_rows)
    artifacts = [views.artifact(a) for a in artifact_rows]
    tail, rendered = log_rows.adopt(tail)  # the rows in the page: painted before the viewer runs
    data = {"project": row["id"], "job": job_id, "status": state["status"], "size": tail["size"], "name": state["name"],
            "tail": tail}
    return await page(
        request, "job.html", session, project=row, job=state, jobs=siblings, artifacts=artifacts, data=data, rows=rendered,
        title=f"{state['name']} · #{job_id} · {row['name']}", status=state["status"], can_act=access.may_act(),
    )


@router.get("/projects/{project}/jobs/{job_id}/status.json")
async def job_status(request: Request, project: str, job_id: int, session: Session = Depends(signed_in)) -> JSONResponse:
    row = (await visit(request, project, session, Role.REPORTER)).project
    state = await _job(request, row["id"], job_id)
    return JSONResponse({k: state[k] for k in ("status", "label", "duration", "failure_reason", "exit_code")})


@router.get("/projects/{project}/jobs/{job_id}/artifacts/{file_type}")
async def artifact(request: Request, project: str, job_id: int, file_type: str, session: Session = Depends(signed_in)) -> StreamingResponse:
    """An artifact as a download, never rendered on this origin (attachment + sandbox CSP)."""
    svc = services(request)
    row = (await visit(request, project, session, Role.REPORTER)).project
    await svc.pipelines.job(row["id"], job_id)
    stored, stream = await svc.artifacts.open_file(job_id, file_type)
    name = stored["filename"].replace('"', "").replace("\\", "")
    extra = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Content-Length": str(stored["size"]),
    }
    return StreamingResponse(stream, media_type="application/octet-stream", headers=extra)


@router.get("/runners", response_class=HTMLResponse)
async def runners(request: Request, session: Session = Depends(signed_in)) -> HTMLResponse:
    """Every runner and its current job: for administrators (GitLab's admin area), 403 otherwise."""
    if session.actor is None or not session.actor.admin:
        raise Forbidden("403 Forbidden - only administrators see the runners")
    listed = [views.runner(r, running) for r, running in await services(request).runners.with_jobs()]
    return await page(request, "runners.html", session, runners=listed, title="Runners")


async def _job(request: Request, project_id: int, job_id: int) -> dict[str, Any]:
    svc = services(request)
    row = await svc.pipelines.job(project_id, job_id)
    state = views.job(row)
    state["active"] = JobStatus(row["status"]).is_active
    return state
