"""The ``download_artifacts`` and ``upload_artifacts_on_*`` stages, run by the runner itself.

Both executors bind or share the project directory with the runner's host, so archiving and
extracting happen here in Python (in a thread) and reach the coordinator through
``CoordinatorClient``: ``GET jobs/:dep/artifacts`` with each dependency's token, and
``POST jobs/:id/artifacts?artifact_format=…&artifact_type=…&expire_in=…`` per ``artifacts[]``
entry whose ``when`` matches (runner-api.md 7). ``archive`` entries are zips; report entries
(``junit``, ``dotenv``…) keep their type as metadata and are sent as gzip of their one file
when ``artifact_format`` is ``gzip``.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from conveyor.protocol.models import JobPayload
from conveyor.runner.client import CoordinatorClient
from conveyor.runner.files import archive
from conveyor.runner.trace import ansi

Say = Callable[[str], None]
EXTENSIONS = {"zip": ".zip", "zipzstd": ".zip", "gzip": ".gz", "raw": "", "tarzstd": ".tar.zst"}


def applies(when: str | None, succeeded: bool) -> bool:
    when = when or "on_success"
    return when == "always" or (when == "on_success") == succeeded


async def download(client: CoordinatorClient, job: JobPayload, project_dir: Path, say: Say) -> bool:
    """Fetch and extract every dependency that has an archive; False when one failed."""
    for dependency in job.dependencies:
        filename = (dependency.get("artifacts_file") or {}).get("filename")
        if not filename:
            continue
        name, dep_id = dependency.get("name", "?"), int(dependency["id"])
        say(ansi.plain(f"Downloading artifacts for {name} ({dep_id})..."))
        with tempfile.TemporaryDirectory(prefix="conveyor-artifacts-") as tmp:
            target = Path(tmp) / "artifacts.zip"
            result = await client.download_artifact(dep_id, str(dependency.get("token") or job.token), target)
            if not result.ok:
                say(ansi.error(f"Downloading artifacts from coordinator... {result.status or 'error'}: {result.error}"))
                return False
            try:
                count = await asyncio.to_thread(archive.extract_zip, target, project_dir)
            except archive.ArchiveError as exc:
                say(ansi.error(str(exc)))
                return False
        say(ansi.plain(f"Downloaded artifacts for {name} ({dep_id}): {count} entries"))
    return True


async def upload(
    client: CoordinatorClient, job: JobPayload, project_dir: Path, *, succeeded: bool, say: Say
) -> bool:
    """Archive and upload each matching ``artifacts[]`` entry; False when an upload failed."""
    ok = True
    for spec in job.artifacts:
        if not applies(spec.get("when"), succeeded):
            continue
        names = await asyncio.to_thread(
            archive.collect, project_dir, spec.get("paths") or [], spec.get("exclude") or [],
            bool(spec.get("untracked")),
        )  # fmt: skip
        kind = str(spec.get("artifact_type") or "archive")
        if not names:
            say(ansi.warning(f"{kind}: no files to upload (paths: {spec.get('paths') or []})"))
            continue
        fmt = str(spec.get("artifact_format") or "zip")
        filename = str(spec.get("name") or "artifacts") + EXTENSIONS.get(fmt, ".zip")
        say(ansi.plain(f"Uploading artifacts for {kind}: {len(names)} files as {filename}..."))
        with tempfile.TemporaryDirectory(prefix="conveyor-artifacts-") as tmp:
            packed = Path(tmp) / "upload"
            await asyncio.to_thread(_pack, project_dir, names, fmt, packed)
            query = {"artifact_format": fmt, "artifact_type": kind, "expire_in": str(spec.get("expire_in") or "")}
            result = await client.upload_artifact(job.id, job.token, packed, filename=filename, query=query)
        if result.ok:
            say(ansi.plain(f"Uploading artifacts as \"{kind}\" to coordinator... 201 Created"))
        else:
            say(ansi.error(f"Uploading artifacts as \"{kind}\" to coordinator... {result.status}: {result.error}"))
            ok = False
    return ok


def _pack(root: Path, names: list[str], fmt: str, destination: Path) -> None:
    if fmt in ("gzip", "raw"):
        with (root / names[0]).open("rb") as source:  # reports: one file each
            opener = gzip.open if fmt == "gzip" else open
            with opener(destination, "wb") as out:  # type: ignore[operator]
                shutil.copyfileobj(source, out)
        return
    archive.write_zip(root, names, destination)
