"""GitLab's repository API (rest-api.md 2.4), read from the project's git repository: branches,
commits, the tree, a file's raw bytes."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from conveyor.server.api import pagination, params, presenters
from conveyor.server.api.deps import Reporter, services
from conveyor.server.api.openapi import LIST, OBJECT, doc
from conveyor.server.errors import NotFound, ParamError
from conveyor.server.queue.listing import PipelineFilter, Window
from conveyor.server.sources.repository import CommitQuery

router = APIRouter(prefix="/api/v4/projects/{project}/repository")


def _base_path(request: Request, access: Any) -> tuple[str, str]:
    return services(request).settings.base_url, presenters.path_of(access.project)


@router.get("/branches", **doc(("search", "regex"), listing=True, answer=LIST))
async def list_branches(request: Request, access: Reporter) -> JSONResponse:
    """Branches by name; ``search`` (``^x`` / ``x$`` anchor it, as GitLab's) or ``regex`` (RE2 in
    GitLab, Python's ``re`` here) narrow them."""
    found = await params.read(request)
    search, pattern = params.text(found, "search"), params.text(found, "regex")
    branches = await services(request).repository.branches(access.project["source"])
    if search:
        branches = [b for b in branches if _matches(b["name"], search)]
    if pattern:
        try:
            compiled = re.compile(pattern)
        except re.error:
            raise ParamError("regex is invalid") from None
        branches = [b for b in branches if compiled.search(b["name"])]
    base, path = _base_path(request, access)
    protected = list(access.project["protected_refs"] or [])
    shown = [presenters.branch(b, base, path, access.project["default_branch"], protected) for b in branches]
    return pagination.respond_all(request, shown, found)


def _matches(name: str, search: str) -> bool:
    if search.startswith("^"):
        return name.lower().startswith(search[1:].lower())
    if search.endswith("$"):
        return name.lower().endswith(search[:-1].lower())
    return search.lower() in name.lower()


@router.get("/branches/{branch:path}", **doc(answer=OBJECT))
async def get_branch(request: Request, access: Reporter, branch: str) -> dict[str, Any]:
    for found in await services(request).repository.branches(access.project["source"]):
        if found["name"] == branch:
            base, path = _base_path(request, access)
            return presenters.branch(found, base, path, access.project["default_branch"], list(access.project["protected_refs"] or []))
    raise NotFound("404 Branch Not Found")


@router.get("/commits", **doc(("ref_name", "since", "until", "path", "all"), listing=True, answer=LIST))
async def list_commits(request: Request, access: Reporter) -> JSONResponse:
    """The history of ``ref_name`` (the default branch if omitted), newest first."""
    found = await params.read(request)
    page = pagination.page_of(found)
    query = CommitQuery(
        ref=params.text(found, "ref_name") or access.project["default_branch"] or "HEAD",
        since=params.text(found, "since"), until=params.text(found, "until"), path=params.text(found, "path"),
        all=bool(params.boolean(found, "all", False)),
    )
    listed = await services(request).repository.commits(access.project["source"], query, page.limit, page.offset)
    if listed is None:
        raise NotFound("404 Reference Not Found")
    commits, total = listed
    base, path = _base_path(request, access)
    return pagination.respond(request, [presenters.commit(c, base, path) for c in commits], page, total)


@router.get("/commits/{sha:path}", **doc(answer=OBJECT))
async def get_commit(request: Request, access: Reporter, sha: str) -> dict[str, Any]:
    """One commit by sha, branch or tag, with ``stats``, ``project_id`` and its last pipeline."""
    svc = services(request)
    found = await svc.repository.commit(access.project["source"], sha)
    if found is None:
        raise NotFound("404 Commit Not Found")
    base, path = _base_path(request, access)
    shown = presenters.commit(found, base, path)
    shown["project_id"] = access.project_id
    latest = await svc.listings.pipelines(access.project_id, PipelineFilter(sha=found["id"]), "id", "desc", Window(1, 0))
    shown["last_pipeline"] = presenters.pipeline(latest[0][0], base, path, full=False) if latest[0] else None
    shown["status"] = latest[0][0]["status"] if latest[0] else None
    return shown


@router.get("/tree", **doc(("path", "ref", "recursive"), listing=True, answer=LIST))
async def tree(request: Request, access: Reporter) -> JSONResponse:
    found = await params.read(request)
    ref = params.text(found, "ref") or access.project["default_branch"] or "HEAD"
    entries = await services(request).repository.tree(
        access.project["source"], ref, params.text(found, "path") or "", bool(params.boolean(found, "recursive", False))
    )
    if entries is None:
        raise NotFound("404 Tree Not Found")
    return pagination.respond_all(request, entries, found)


@router.get("/files/{file_path:path}/raw", **doc(("ref",), media="application/octet-stream"))
async def raw_file(request: Request, access: Reporter, file_path: str) -> Response:
    """A file's bytes at ``ref`` (the default branch if omitted)."""
    found = await params.read(request)
    ref = params.text(found, "ref") or access.project["default_branch"] or "HEAD"
    data = await services(request).repository.raw(access.project["source"], ref, file_path)
    if data is None:
        raise NotFound("404 File Not Found")
    return Response(data, media_type="text/plain" if _is_text(data) else "application/octet-stream")


def _is_text(data: bytes) -> bool:
    return b"\0" not in data[:8000]
