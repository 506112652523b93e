"""GitLab's web addresses, as the API's ``web_url`` and the jobs' ``CI_PROJECT_URL``,
``CI_PIPELINE_URL`` and ``CI_JOB_URL`` give them (``/<namespace>/<project>/-/jobs/42``): each
redirects to this site's page for the same thing, so a link printed in a job log or a chat
notification opens. The page it lands on checks who may see it (a project the visitor cannot see
is 404 there, as everywhere)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from conveyor.server.api.deps import services
from conveyor.server.errors import NotFound

router = APIRouter(include_in_schema=False)
KINDS = {"pipelines": "pipelines", "jobs": "jobs"}


@router.get("/{project_path:path}/-/{kind}/{item_id}")
async def item(request: Request, project_path: str, kind: str, item_id: int) -> RedirectResponse:
    """``/root/app/-/pipelines/7`` -> ``/-/projects/<id>/pipelines/7`` (and jobs alike)."""
    if kind not in KINDS:
        raise NotFound("404 Not Found")
    project = await services(request).projects.get(project_path)
    return RedirectResponse(f"/-/projects/{project['id']}/{KINDS[kind]}/{item_id}", status_code=302)
