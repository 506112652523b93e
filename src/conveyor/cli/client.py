"""A small client of Conveyor's admin API (projects, pipelines, jobs, logs) for the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from conveyor.cli import sse
from conveyor.protocol import headers, keepalive


class ApiError(Exception):
    def __init__(self, status: int, message: Any) -> None:
        if isinstance(message, dict):  # GitLab's {"base": [...]} validation errors, one per line
            lines = [str(line) for value in message.values() for line in (value if isinstance(value, list) else [value])]
            text = "the CI configuration is invalid:\n" + "\n".join(f"  {line}" for line in lines)
        else:
            text = f"HTTP {status}: {message}"
        super().__init__(text)
        self.status = status
        self.message = message


class AdminClient:
    def __init__(self, url: str, token: str, *, config: keepalive.KeepaliveConfig | None = None) -> None:
        transport = httpx.AsyncHTTPTransport(socket_options=keepalive.socket_options(config or keepalive.KeepaliveConfig()))
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/") + "/api/v4",
            headers={headers.PRIVATE_TOKEN: token},
            transport=transport,
            timeout=httpx.Timeout(30.0, read=120.0),
        )

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def _checked(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise ApiError(response.status_code, message)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._checked(method, path, **kwargs)
        return response.json() if response.content else None

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Any API call; the JSON answer (None for an empty one), ``ApiError`` for 4xx and 5xx."""
        return await self._json(method, path, json=body) if body is not None else await self._json(method, path)

    async def create_runner(self, description: str) -> dict[str, Any]:
        return await self._json("POST", "/user/runners", json={"runner_type": "instance_type", "description": description})

    async def add_project(self, source: str, name: str | None = None) -> dict[str, Any]:
        return await self._json("POST", "/projects", json={"source": source, "name": name})

    async def project(self, id_or_name: str) -> dict[str, Any] | None:
        try:
            return await self._json("GET", f"/projects/{id_or_name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create_pipeline(self, project: str, ref: str | None = None) -> dict[str, Any]:
        return await self._json("POST", f"/projects/{project}/pipeline", params={"ref": ref} if ref else None)

    async def pipeline(self, project: str, pipeline_id: int) -> dict[str, Any]:
        return await self._json("GET", f"/projects/{project}/pipelines/{pipeline_id}")

    async def jobs(self, project: str, pipeline_id: int) -> list[dict[str, Any]]:
        return await self._every(f"/projects/{project}/pipelines/{pipeline_id}/jobs")

    async def _every(self, path: str) -> list[Any]:
        """Every item of a paginated list, following ``X-Next-Page`` 100 at a time."""
        items: list[Any] = []
        page = "1"
        while page:
            response = await self._checked("GET", path, params={"page": page, "per_page": 100})
            items += response.json()
            page = response.headers.get("X-Next-Page", "")
        return items

    async def cancel_pipeline(self, project: str, pipeline_id: int) -> dict[str, Any]:
        return await self._json("POST", f"/projects/{project}/pipelines/{pipeline_id}/cancel")

    async def retry_pipeline(self, project: str, pipeline_id: int) -> dict[str, Any]:
        return await self._json("POST", f"/projects/{project}/pipelines/{pipeline_id}/retry")

    async def play_job(self, project: str, job_id: int) -> dict[str, Any]:
        return await self._json("POST", f"/projects/{project}/jobs/{job_id}/play")

    async def retry_job(self, project: str, job_id: int) -> dict[str, Any]:
        return await self._json("POST", f"/projects/{project}/jobs/{job_id}/retry")

    async def trace(self, project: str, job_id: int, start: int = 0) -> bytes:
        """The job log from byte ``start`` (b"" when nothing new)."""
        extra = {"Range": f"bytes={start}-"} if start else {}
        response = await self._http.get(f"/projects/{project}/jobs/{job_id}/trace", headers=extra)
        if response.status_code == 416:
            return b""
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text)
        return response.content

    async def follow_trace(self, project: str, job_id: int, on_data: Callable[[bytes], None], start: int = 0) -> str:
        """Feed the job's log to ``on_data`` live (SSE, resumed after drops) until it ends; its status."""
        return await sse.follow_log(self._http, f"/projects/{project}/jobs/{job_id}/trace/stream", on_data, start=start)
