"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from conveyor.server.api.deps import services

router = APIRouter()


@router.get("/-/liveness")
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/-/readiness")
async def readiness(request: Request) -> JSONResponse:
    ok = await services(request).ready()
    return JSONResponse({"status": "ok" if ok else "failed"}, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(services(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
