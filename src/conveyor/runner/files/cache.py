"""The ``restore_cache`` and ``archive_cache`` stages: a local, keyed cache.

The coordinator only sends ``cache[]`` specs (runner-api.md 7.3); the archives live on the
runner under ``cache_dir/<project path>/<key>/cache.zip``. ``policy`` ``pull`` only restores,
``push`` only saves, ``pull-push`` (default) both; restore tries ``key`` then ``fallback_keys``;
saving honours ``when`` (default ``on_success``). Cache problems are warnings, never failures,
as in gitlab-runner. Keys are used as one path segment, so ``/`` and ``..`` cannot escape.

With a shared cache (``[runners.cache]`` in S3, ``s3cache.py``) the archive is first downloaded
from the bucket into that local place (the local copy is used when the bucket has none or
cannot be reached), and a saved archive is uploaded to it.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.protocol.models import JobPayload
from conveyor.runner.files import archive, s3cache
from conveyor.runner.files.artifacts import Say, applies
from conveyor.runner.settings import S3CacheSettings
from conveyor.runner.trace import ansi


@dataclass(frozen=True)
class Shared:
    """Where this job's cache archives live in the shared cache."""

    settings: S3CacheSettings
    short_token: str  # the runner's, as GitLab shows it
    project_id: int
    expires: int  # seconds the signed URLs stay valid: the job's timeout
    keepalive: KeepaliveConfig

    def url(self, method: str, key: str) -> str:
        return s3cache.presign(self.settings, method, s3cache.object_name(self.settings, self.short_token, self.project_id, key),
                               self.expires)  # fmt: skip


def cache_file(cache_root: Path, key: str) -> Path:
    segment = quote(key or "default", safe="-_.") or "default"
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return cache_root / segment / "cache.zip"


async def restore(job: JobPayload, cache_root: Path, project_dir: Path, say: Say, shared: Shared | None = None) -> None:
    for spec in job.cache:
        if (spec.get("policy") or "pull-push") == "push":
            continue
        keys = [str(spec.get("key") or "default"), *[str(k) for k in spec.get("fallback_keys") or []]]
        for key in keys:
            say(ansi.plain(f"Checking cache for {key}..."))
            path = cache_file(cache_root, key)
            if shared is not None:
                await _download(shared, key, path, say)
            if not path.is_file():
                say(ansi.warning(f"file does not exist: cache {key} not found"))
                continue
            try:
                await asyncio.to_thread(archive.extract_zip, path, project_dir)
            except archive.ArchiveError as exc:
                say(ansi.warning(f"cache {key} not restored: {exc}"))
                continue
            say(ansi.plain(f"Successfully extracted cache {key}"))
            break


async def _download(shared: Shared, key: str, path: Path, say: Say) -> None:
    """The shared archive of ``key`` into ``path``; on any problem the local copy stays."""
    try:
        url = shared.url("GET", key)
        say(ansi.plain(f"Downloading cache from {url}"))
        if not await s3cache.download(url, path, shared.keepalive):
            say(ansi.warning(f"{key}: not found in the shared cache"))
            return
    except Exception as exc:  # noqa: BLE001 - a cache problem is a warning, as in gitlab-runner
        say(ansi.warning(f"Failed to download cache from the shared cache: {exc}; using the local copy if any"))


async def _upload(shared: Shared, key: str, path: Path, say: Say) -> None:
    try:
        url = shared.url("PUT", key)
        say(ansi.plain(f"Uploading cache.zip to {url}"))
        await s3cache.upload(url, path, shared.keepalive)
    except Exception as exc:  # noqa: BLE001
        say(ansi.warning(f"Failed to upload cache to the shared cache: {exc}"))


async def save(
    job: JobPayload, cache_root: Path, project_dir: Path, *, succeeded: bool, say: Say, shared: Shared | None = None
) -> None:
    for spec in job.cache:
        if (spec.get("policy") or "pull-push") == "pull" or not applies(spec.get("when"), succeeded):
            continue
        key = str(spec.get("key") or "default")
        say(ansi.plain(f"Creating cache {key}..."))
        names = await asyncio.to_thread(
            archive.collect, project_dir, spec.get("paths") or [], (), bool(spec.get("untracked"))
        )
        if not names:
            say(ansi.warning(f"no files to cache for {key}"))
            continue
        path = cache_file(cache_root, key)
        partial = path.with_name(f"cache.zip.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(archive.write_zip, project_dir, names, partial)
            os.replace(partial, path)  # readers never see a half-written archive
        except OSError as exc:
            partial.unlink(missing_ok=True)
            say(ansi.warning(f"cache {key} not saved: {exc}"))
            continue
        if shared is not None:
            await _upload(shared, key, path, say)
        say(ansi.plain(f"Created cache {key}: {len(names)} files"))
