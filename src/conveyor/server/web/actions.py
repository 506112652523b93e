"""What people do from the pages: sign in and out, retry, cancel, play, run a pipeline.

Every action is a ``POST`` form with the session's CSRF token (``render.acting``), allowed to a
Developer of the project with an ``api`` token (``render.acts``: the API's role check). Retry,
cancel and play call the very handler the API serves (``api.jobs``, ``api.pipelines``), so a retry from the page
and one from python-gitlab are one code path; "Run pipeline" calls the pipeline service with the
signed-in user (``Origin(source="web", user=...)``: GitLab's source for that form). Errors, a
refusal included, come back as a message on the page they came from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from conveyor.ciconfig import ConfigError
from conveyor.server import auth
from conveyor.server.accounts.access import Access
from conveyor.server.api import jobs as job_api
from conveyor.server.api import pipelines as pipeline_api
from conveyor.server.api.deps import services
from conveyor.server.errors import Forbidden, ServerError
from conveyor.server.queue.pipelines import Origin
from conveyor.server.web.render import REFUSED, SignIn, acting, acts, authenticate, check_origin, cookie_name, page, secure, sessions
from conveyor.server.web.sessions import IDLE, Session

router = APIRouter()
MAX_VARIABLES = 50


@router.post("/login", response_model=None)
async def login(request: Request) -> Any:
    check_origin(request)
    form = await request.form()
    token, target = str(form.get("token") or "").strip(), str(form.get("next") or "/-/")
    if not target.startswith("/-/") or target.startswith("//"):
        target = "/-/"
    try:
        if not token:
            raise SignIn("refused")
        await authenticate(request, auth.digest(token))
    except SignIn as exc:
        error = "Invalid personal access token" if exc.reason in ("refused", "") else f"Sign-in refused: {REFUSED[exc.reason]}."
        return await page(request, "login.html", None, status_code=401, next=target, title="Sign in", error=error)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        cookie_name(secure(request)), await sessions(request).open(token), max_age=IDLE, path="/",
        secure=secure(request), httponly=True, samesite="lax",
    )
    return response


@router.post("/logout")
async def logout(request: Request, session: Session = Depends(acting)) -> RedirectResponse:
    await sessions(request).close(session.id)
    response = RedirectResponse("/-/login", status_code=303)
    response.delete_cookie(cookie_name(secure(request)), path="/")
    return response


@router.post("/projects/{project}/jobs/{job_id}/retry")
async def retry_job(request: Request, project: str, job_id: int, session: Session = Depends(acting)) -> RedirectResponse:
    back = f"/-/projects/{project}/jobs/{job_id}"
    return await _act(request, session, back, lambda access: job_api.retry_job(request, access, job_id), "jobs")


@router.post("/projects/{project}/jobs/{job_id}/cancel")
async def cancel_job(request: Request, project: str, job_id: int, session: Session = Depends(acting)) -> RedirectResponse:
    back = f"/-/projects/{project}/jobs/{job_id}"
    return await _act(request, session, back, lambda access: job_api.cancel_job(request, access, job_id), "jobs")


@router.post("/projects/{project}/jobs/{job_id}/play")
async def play_job(request: Request, project: str, job_id: int, session: Session = Depends(acting)) -> RedirectResponse:
    back = f"/-/projects/{project}/jobs/{job_id}"

    async def play(access: Access) -> dict[str, Any]:
        svc = services(request)
        result = await svc.job_actions.play(access.project_id, job_id, await _variables(request))
        if result.enqueued:
            await svc.dispatcher.tick(result.enqueued)
        return {"id": result.job_id}

    return await _act(request, session, back, play, "jobs")


@router.post("/projects/{project}/pipelines/{pipeline_id}/retry")
async def retry_pipeline(request: Request, project: str, pipeline_id: int, session: Session = Depends(acting)) -> RedirectResponse:
    back = f"/-/projects/{project}/pipelines/{pipeline_id}"
    return await _act(request, session, back, lambda access: pipeline_api.retry_pipeline(request, access, pipeline_id), "pipelines")


@router.post("/projects/{project}/pipelines/{pipeline_id}/cancel")
async def cancel_pipeline(request: Request, project: str, pipeline_id: int, session: Session = Depends(acting)) -> RedirectResponse:
    back = f"/-/projects/{project}/pipelines/{pipeline_id}"
    return await _act(request, session, back, lambda access: pipeline_api.cancel_pipeline(request, access, pipeline_id), "pipelines")


@router.post("/projects/{project}/pipelines")
async def run_pipeline(request: Request, project: str, session: Session = Depends(acting)) -> RedirectResponse:
    back = f"/-/projects/{project}/pipelines"

    async def create(access: Access) -> dict[str, Any]:
        svc = services(request)
        ref = str((await request.form()).get("ref") or "").strip() or None
        origin = Origin(source="web", user=await svc.users.starter(access.actor))
        created = await svc.pipelines.create(access.project, ref, await _variables(request), origin)
        if created.enqueued:
            await svc.dispatcher.tick(created.enqueued)
        return {"id": created.id}

    return await _act(request, session, back, create, "pipelines")


async def _act(
    request: Request, session: Session, back: str, action: Callable[[Access], Awaitable[dict[str, Any]]], kind: str
) -> RedirectResponse:
    """Run ``action`` with the user's access if they may act (``acts``); on success go to the job or
    pipeline it returns, else back with the error (a page the user cannot see answers 404 there)."""
    try:
        result = await action(await acts(request, request.path_params["project"], session))
    except (ServerError, ConfigError) as exc:
        await sessions(request).flash(session.id, str(exc))
        return RedirectResponse(back, status_code=303)
    project = request.path_params["project"]
    return RedirectResponse(f"/-/projects/{project}/{kind}/{result['id']}", status_code=303)


async def _variables(request: Request) -> dict[str, str]:
    """``key``/``value`` rows of a form, empty keys ignored."""
    form = await request.form()
    keys, values = form.getlist("key"), form.getlist("value")
    if len(keys) > MAX_VARIABLES:
        raise Forbidden(f"403 Forbidden - at most {MAX_VARIABLES} variables")
    return {str(k).strip(): str(v) for k, v in zip(keys, values, strict=False) if str(k).strip()}
