"""One file out of a job's zip archive (GitLab's ``/jobs/:id/artifacts/*artifact_path``): the
archive is spooled to a temporary file (memory up to 8 MiB), then read with ``zipfile`` in a
worker thread."""

from __future__ import annotations

import asyncio
import tempfile
import zipfile
from collections.abc import AsyncIterator
from typing import IO

SPOOL_IN_MEMORY = 8 * 1024 * 1024


class NotAnArchive(Exception):
    """The artifact is not a zip archive."""


async def read_member(chunks: AsyncIterator[bytes], path: str) -> bytes | None:
    """The bytes of ``path`` in the zip archive streamed by ``chunks``; None when it has no such file.

    Raises ``NotAnArchive`` when the bytes are not a zip archive."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        async for piece in chunks:
            await asyncio.to_thread(spool.write, piece)
        return await asyncio.to_thread(_member, spool, path.lstrip("/"))


def _member(spool: IO[bytes], name: str) -> bytes | None:
    spool.seek(0)
    try:
        with zipfile.ZipFile(spool) as archive:
            try:
                info = archive.getinfo(name)
            except KeyError:
                return None
            if info.is_dir():
                return None
            return archive.read(info)
    except zipfile.BadZipFile as exc:
        raise NotAnArchive(str(exc)) from exc
