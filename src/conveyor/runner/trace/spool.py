"""TraceSpool: the local, append-only copy of every trace byte a job produced.

Every byte lands here before it is sent, so the sender can resend from any offset the server asks
for (a lost response, a 416, a server restart) and the final checksum covers exactly the bytes
produced. Like gitlab-runner ``helpers/trace/buffer.go``, it keeps a running CRC-32 and the size.
"""

from __future__ import annotations

import os
from pathlib import Path

from conveyor.protocol.trace import crc32, format_checksum


class TraceSpool:
    """An append-only file with a running CRC-32. Not thread-safe; one event loop writes and reads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._size = 0
        self._crc = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def crc32(self) -> int:
        return self._crc

    @property
    def checksum(self) -> str:
        """``crc32:%08x`` of all bytes written so far."""
        return format_checksum(self._crc)

    def write(self, data: bytes) -> None:
        if not data:
            return
        fd = self._require_open()
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, self._size)
            self._size += written
            view = view[written:]
        self._crc = crc32(data, self._crc)

    def flush(self) -> None:
        """Nothing is buffered: ``write`` hands bytes straight to the OS."""

    def read(self, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from ``offset``; empty at or past the end."""
        if offset < 0:
            raise ValueError("offset must be >= 0")
        length = max(0, min(limit, self._size - offset))
        if length == 0:
            return b""
        fd = self._require_open()
        chunks = []
        while length > 0:
            chunk = os.pread(fd, length, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def read_all(self) -> bytes:
        return self.read(0, self._size)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def delete(self) -> None:
        """Close and remove the file; safe to call twice."""
        self.close()
        self.path.unlink(missing_ok=True)

    def _require_open(self) -> int:
        if self._fd is None:
            raise ValueError("trace spool is closed")
        return self._fd
