"""The ``restore_cache`` and ``archive_cache`` stages: a local, keyed cache.

The coordinator only sends ``cache[]`` specs (runner-api.md 7.3); the archives live on the
runner under ``cache_dir/<project path>/<key>/cache.zip``. ``policy`` ``pull`` only restores,
``push`` only saves, ``pull-push`` (default) both; restore tries ``key`` then ``fallback_keys``;
saving honours ``when`` (default ``on_success``). Cache problems are warnings, never failures,
as in gitlab-runner. Keys are used as one path segment, so ``/`` and ``..`` cannot escape.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from urllib.parse import quote

from conveyor.protocol.models import JobPayload
from conveyor.runner.files import archive
from conveyor.runner.files.artifacts import Say, applies
from conveyor.runner.trace import ansi


def cache_file(cache_root: Path, key: str) -> Path:
    segment = quote(key or "default", safe="-_.") or "default"
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return cache_root / segment / "cache.zip"


async def restore(job: JobPayload, cache_root: Path, project_dir: Path, say: Say) -> None:
    for spec in job.cache:
        if (spec.get("policy") or "pull-push") == "push":
            continue
        keys = [str(spec.get("key") or "default"), *[str(k) for k in spec.get("fallback_keys") or []]]
        for key in keys:
            say(ansi.plain(f"Checking cache for {key}..."))
            path = cache_file(cache_root, key)
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


async def save(job: JobPayload, cache_root: Path, project_dir: Path, *, succeeded: bool, say: Say) -> None:
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
            await asyncio.to_thread(archive.write_zip, project_dir, names, partial)
            os.replace(partial, path)  # readers never see a half-written archive
        except OSError as exc:
            partial.unlink(missing_ok=True)
            say(ansi.warning(f"cache {key} not saved: {exc}"))
            continue
        say(ansi.plain(f"Created cache {key}: {len(names)} files"))
