"""Job artifacts: streamed uploads into the object store, authorised downloads, expiry.

Upload (runner-api.md 7.1): the multipart body streams straight into the object store at
``artifacts/<job_id>/<file_type>/<filename>``; nothing is buffered whole and a body over the size
limit is abandoned mid-stream, so nothing is stored. Only then, in one short transaction, the
row is upserted (one per job and type). A replaced artifact's old object is deleted afterwards.

Download (7.2, and 3.5 ``dependencies[]``): a ``JOB-TOKEN`` may be the job's own token or the
token of any running job of the same pipeline (GitLab's "running job token" rule).

Expiry: the sweep deletes the object first, then the row. If deleting the object fails the row
stays and the next sweep retries; a row without its object reads as 404.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.ciconfig.duration import parse_seconds
from conveyor.protocol import JobStatus
from conveyor.server import auth, periodic
from conveyor.server.archive import dotenv
from conveyor.server.archive.multipart import FORM_OVERHEAD, TOO_LARGE, FilePart
from conveyor.server.db import queries
from conveyor.server.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, SettingsError
from conveyor.server.storage import ObjectStore

log = structlog.get_logger(__name__)

ARCHIVE = "archive"
FORMATS = {"zip": ".zip", "gzip": ".gz", "raw": "", "zipzstd": ".zip", "tarzstd": ".tar.zst"}  # runner ArtifactFormat
NEVER = "never"
SWEEP_BATCH = 100
_FILE_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # GitLab's file types: archive, junit, dotenv, ...


def object_key(job_id: int, file_type: str, filename: str) -> str:
    return f"artifacts/{job_id}/{file_type}/{filename}"


def parse_expire_in(value: str) -> timedelta | None:
    """GitLab's ``expire_in`` ("1 week", "30 days", "2 hrs 20 min", "never"); None = never.

    Raises ``ValueError`` when the text is not a duration.
    """
    text = value.strip().lower()
    if text == NEVER:
        return None
    seconds = parse_seconds(text)
    if seconds is None:
        raise ValueError(f"expire_in {value!r} is not a duration")
    return timedelta(seconds=seconds)


class ArtifactService:
    """Store, serve and expire job artifacts.

    Args:
        size_limit: largest artifact file in bytes (413 beyond it).
        default_expire_in: lifetime of an upload that names none (``expire_in`` syntax).
        sweep_interval: seconds between expiry sweeps in ``run()``.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        objects: ObjectStore,
        *,
        size_limit: int,
        default_expire_in: str,
        sweep_interval: float = 15.0,
    ) -> None:
        self._engine = engine
        self.objects = objects
        self._size_limit = size_limit
        try:
            self._default_lifetime = parse_expire_in(default_expire_in)
        except ValueError as exc:
            raise SettingsError(f"artifact_default_expire_in: {exc}") from exc
        self._interval = sweep_interval
        self.failures = 0

    async def upload(
        self,
        job: RowMapping,
        body: AsyncIterator[bytes],
        *,
        content_type: str,
        artifact_type: str | None = None,
        artifact_format: str | None = None,
        expire_in: str | None = None,
        content_length: int | None = None,
    ) -> RowMapping:
        """Stream the ``file`` field of a multipart body into the store; returns the artifact row.

        Args:
            job: the authenticated, running job (``JobUpdates.authenticate``).
            body: the request body as it arrives.
            content_length: the declared body size, if any: refused at once when over the limit.
        """
        file_type = artifact_type or ARCHIVE
        if not _FILE_TYPE.fullmatch(file_type):
            raise BadRequest(f"400 Bad request - artifact_type {file_type!r} is not valid")
        file_format = artifact_format or "zip"
        if file_format not in FORMATS:
            raise BadRequest(f"400 Bad request - artifact_format {file_format!r} is not valid")
        lifetime = self._lifetime(expire_in)
        if content_length is not None and content_length > self._size_limit + FORM_OVERHEAD:
            raise PayloadTooLarge(TOO_LARGE)
        part = FilePart(body, content_type, field="file", size_limit=self._size_limit)
        filename = _safe_filename(await part.start(), file_format)
        key = object_key(job["id"], file_type, filename)
        variables: dict[str, str] | None = None
        if file_type == dotenv.TYPE:  # small: read and checked whole before anything is stored
            variables, data = await _dotenv(part.chunks(), file_format)
            size = await self.objects.put(key, _chunks(data))
        else:
            size = await self.objects.put(key, part.chunks())
        replaced: str | None = None
        try:
            async with self._engine.begin() as conn:
                if variables is not None:  # the job row first, as GitLab (and the sweeps) lock it
                    await queries.jobs.set_dotenv(conn, job["id"], variables)
                old = await queries.artifacts.lock(conn, job["id"], file_type)
                replaced = old["object_key"] if old else None
                row = await queries.artifacts.upsert(
                    conn, job_id=job["id"], file_type=file_type, file_format=file_format,
                    filename=filename, size=size, object_key=key, expire_in=lifetime,
                )
        except Exception:
            if replaced != key:  # the new object is referenced by no row: do not leave it behind
                await self._delete_quietly(key)
            raise
        if replaced and replaced != key:
            await self._delete_quietly(replaced)
        log.info("artifact_stored", job_id=job["id"], file_type=file_type, bytes=size, key=key)
        return row

    async def open(self, job_id: int, token: str | None) -> tuple[RowMapping, AsyncIterator[bytes]]:
        """The job's live ``archive`` artifact and its bytes, for a requester holding ``token``.

        403 when the token is neither the running job's own nor a running job's of the same pipeline;
        404 when the job, the artifact or its object is missing, or the artifact has expired.
        """
        if not token:
            raise Forbidden("403 Forbidden")
        digest = auth.digest(token)
        async with self._engine.connect() as conn:
            owner = await queries.jobs.get(conn, job_id)
            if owner is None:
                raise NotFound("404 Not Found")
            if hmac.compare_digest(owner["token_hash"] or "", digest):
                if not JobStatus(owner["status"]).is_active:  # a finished job's token is dead everywhere
                    raise Forbidden("403 Forbidden")
            else:
                requester = await queries.artifacts.requester(conn, digest)
                owner_project = await queries.projects.get(conn, int(owner["project_id"]))
                if not _may_read(requester, owner, owner_project["name"] if owner_project else None):
                    raise Forbidden("403 Forbidden")
            row = await queries.artifacts.get_live(conn, job_id, ARCHIVE)
        if row is None:
            raise NotFound("404 Not Found")
        return row, await self._read(row)

    async def project_of(self, job_id: int) -> int:
        """The project of a job, for a person's download (their role is checked there); 404."""
        async with self._engine.connect() as conn:
            job = await queries.jobs.get(conn, job_id)
        if job is None:
            raise NotFound("404 Not Found")
        return int(job["project_id"])

    async def for_job(self, job_id: int) -> list[RowMapping]:
        """A job's artifacts that have not expired (for people: the job page)."""
        async with self._engine.connect() as conn:
            return await queries.overview.job_artifacts(conn, job_id)

    async def open_file(self, job_id: int, file_type: str) -> tuple[RowMapping, AsyncIterator[bytes]]:
        """One of a job's artifacts and its bytes, for a signed-in person; 404 when gone."""
        rows = [row for row in await self.for_job(job_id) if row["file_type"] == file_type]
        if not rows:
            raise NotFound("404 Not Found")
        return rows[0], await self._read(rows[0])

    async def _read(self, row: RowMapping) -> AsyncIterator[bytes]:
        """The artifact's bytes; 404 now (not mid-response) when its object is missing."""
        stream = self.objects.open_read(row["object_key"])
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            first = b""
        except FileNotFoundError as exc:
            raise NotFound("404 Not Found") from exc
        return _rest(first, stream)

    async def expire(self) -> int:
        """Delete every expired artifact, object first and then row; returns how many went."""
        total = 0
        while True:
            async with self._engine.connect() as conn:
                rows = await queries.artifacts.expired(conn, SWEEP_BATCH)
            done = 0
            for row in rows:
                try:
                    await self.objects.delete(row["object_key"])
                    async with self._engine.begin() as conn:
                        done += await queries.artifacts.delete_expired(conn, row["id"], row["object_key"])
                except Exception:  # the row stays; the next sweep tries again
                    self.failures += 1
                    log.exception("artifact_expiry_failed", artifact_id=row["id"], key=row["object_key"])
            total += done
            if len(rows) < SWEEP_BATCH or not done:  # all seen, or only failures left this time
                break
        if total:
            log.info("artifacts_expired", count=total)
        return total

    async def run(self) -> None:
        """Sweep expired artifacts every ``sweep_interval`` seconds, forever. Cancel to stop."""
        await periodic.every(self._interval, self.expire, log, "artifact_sweep_failed", on_failure=self._count_failure)

    def _count_failure(self) -> None:
        self.failures += 1

    def _lifetime(self, expire_in: str | None) -> timedelta | None:
        if not expire_in:
            return self._default_lifetime
        try:
            return parse_expire_in(expire_in)
        except ValueError as exc:
            raise BadRequest(f"400 Bad request - {exc}") from exc

    async def _delete_quietly(self, key: str) -> None:
        try:
            await self.objects.delete(key)
        except Exception:  # an orphaned object costs space only; say so and go on
            log.exception("artifact_object_delete_failed", key=key)


async def _dotenv(chunks: AsyncIterator[bytes], file_format: str) -> tuple[dict[str, str], bytes]:
    """The variables of an uploaded dotenv report and its bytes; a bad report is refused with
    GitLab's message before anything is stored (a stored report stays as it was)."""
    data = b""
    try:
        async for chunk in chunks:
            data += chunk
            dotenv.check_size(len(data))  # past the limit: stop reading now
        return dotenv.parse(data, file_format), data
    except dotenv.DotenvError as exc:
        raise BadRequest(str(exc)) from exc


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _may_read(requester: RowMapping | None, owner: RowMapping, owner_project: str | None) -> bool:
    """A running job reads the artifacts of its own pipeline, and those of another pipeline's
    job it names in ``needs:pipeline:job`` (same project) or ``needs:project``; the dispatcher
    already chose which pipeline (``dispatch._cross_pipeline_artifacts``)."""
    if requester is None or not JobStatus(requester["status"]).is_active:
        return False
    if requester["pipeline_id"] == owner["pipeline_id"]:
        return True
    for need in requester["cross_needs"] or []:
        if need.get("job") != owner["name"]:
            continue
        if "pipeline" in need and requester["project_id"] == owner["project_id"]:
            return True
        if need.get("project") == owner_project:
            return True
    return False


def _safe_filename(sent: str, file_format: str) -> str:
    """The client's filename without any directory part; a default when none is usable."""
    name = sent.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise BadRequest("400 Bad request - the file name contains control characters")
    if name in ("", ".", "..") or len(name.encode()) > 255:
        return "artifacts" + FORMATS[file_format]
    return name


async def _rest(first: bytes, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for piece in stream:
            yield piece
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
