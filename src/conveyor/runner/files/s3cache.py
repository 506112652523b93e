"""The shared cache in S3, as gitlab-runner's ``[runners.cache]`` with ``Type = "s3"``.

Several runners share one bucket: the archive of cache key ``k`` of project ``p`` is the object
``<Path>/runner/<short token>/project/<p>/<k>`` (the token as GitLab shows it), or without the
``runner/...`` part when ``Shared = true`` (gitlab-runner's ``generateObjectName``; a key that
climbs out of the project is refused). The runner signs URLs itself (AWS Signature V4 in the
query string, valid for the job's duration, as gitlab-runner presigns them) and moves the
archives with plain HTTP ``GET``/``PUT``; every socket has TCP keepalive. The local cache under
``cache_dir`` stays the working copy: a download lands there before it is extracted, an upload
is the archive just written there. The job log shows the URLs with ``X-Amz-Signature`` and
``X-Amz-Credential`` masked (``trace/urlparams.py``).

Path-style URLs (``<ServerAddress>/<bucket>/<object>``), except virtual-hosted ones on
``*.amazonaws.com``; ``Insecure = true`` means plain HTTP. Only access keys are supported
(gitlab-runner's ``AuthenticationType = "access-key"``); IAM instance profiles are not.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx

from conveyor.protocol import keepalive
from conveyor.runner.settings import S3CacheSettings

SERVICE = "s3"
MAX_EXPIRY = 7 * 24 * 3600  # SigV4's limit for presigned URLs


class CacheKeyError(ValueError):
    """The key would leave the project's part of the bucket."""


def object_name(settings: S3CacheSettings, short_token: str, project_id: int, key: str) -> str:
    namespace = "" if settings.shared else posixpath.join("runner", short_token)
    base = posixpath.join(settings.path, namespace, "project", str(project_id)).lstrip("/")
    full = posixpath.normpath(posixpath.join(base, key))
    if not full.startswith(base + "/"):
        raise CacheKeyError("computed cache path outside of project bucket. Please remove `../` from cache key")
    return full


def presign(settings: S3CacheSettings, method: str, name: str, expires: int, now: datetime | None = None) -> str:
    """A SigV4 query-string-signed URL for ``method`` on object ``name`` (UNSIGNED-PAYLOAD)."""
    now = now or datetime.now(UTC)
    scheme = "http" if settings.insecure else "https"
    address = settings.server_address.removeprefix("https://").removeprefix("http://").rstrip("/")
    key = quote(name, safe="/-_.~")
    if address.endswith("amazonaws.com"):
        host, path = f"{settings.bucket_name}.{address}", f"/{key}"
    else:
        host, path = address, f"/{quote(settings.bucket_name, safe='-_.~')}/{key}"
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/{settings.bucket_location}/{SERVICE}/aws4_request"
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{settings.access_key}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(max(1, min(expires, MAX_EXPIRY))),
        "X-Amz-SignedHeaders": "host",
    }
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
    canonical = "\n".join([method, path, canonical_query, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing = f"AWS4{settings.secret_key}".encode()
    for part in (day, settings.bucket_location, SERVICE, "aws4_request"):
        signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{scheme}://{host}{path}?{canonical_query}&X-Amz-Signature={signature}"


def _client(config: keepalive.KeepaliveConfig) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(socket_options=keepalive.socket_options(config), retries=1)
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(600.0, connect=30.0))


async def download(url: str, target: Path, config: keepalive.KeepaliveConfig) -> bool:
    """The object into ``target`` (atomically); False when there is none (404)."""
    partial = target.with_name(target.name + ".download")
    target.parent.mkdir(parents=True, exist_ok=True)
    async with _client(config) as client, client.stream("GET", url) as response:
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            await response.aread()
            raise httpx.HTTPStatusError(f"{response.status_code} {response.reason_phrase}", request=response.request, response=response)
        with open(partial, "wb") as out:
            async for chunk in response.aiter_bytes():
                out.write(chunk)
    partial.replace(target)
    return True


async def upload(url: str, source: Path, config: keepalive.KeepaliveConfig) -> None:
    size = source.stat().st_size

    async def body():  # noqa: ANN202
        with open(source, "rb") as data:
            while chunk := data.read(1024 * 1024):
                yield chunk

    async with _client(config) as client:
        response = await client.put(url, content=body(), headers={"Content-Length": str(size), "Content-Type": "application/zip"})
    if response.status_code not in (200, 201, 204):
        raise httpx.HTTPStatusError(f"{response.status_code} {response.reason_phrase}", request=response.request, response=response)
