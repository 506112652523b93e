"""One file field of a ``multipart/form-data`` request body, streamed (python-multipart's parser).

The parser runs on each received piece of the body as it arrives, so only that piece is ever
held: ``start()`` reads up to the file part's headers and returns its filename, ``chunks()``
then yields the file's bytes while reading the rest of the body. Limits are enforced while
streaming; a body that is malformed, too large or ends before its closing boundary raises from
``chunks()`` so that the object store abandons the upload.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from conveyor.server.errors import BadRequest, PayloadTooLarge

TOO_LARGE = "413 Request Entity Too Large"
FORM_OVERHEAD = 1024 * 1024  # room for part headers and the small fields besides the file


class FilePart:
    """The first part named ``field`` that carries a filename.

    Args:
        body: the request body as it arrives.
        content_type: the request's Content-Type (must be multipart/form-data with a boundary).
        field: the form field holding the file.
        size_limit: largest file accepted; beyond it ``PayloadTooLarge``. The whole body may
            exceed it by ``FORM_OVERHEAD`` at most.
    """

    def __init__(self, body: AsyncIterator[bytes], content_type: str, *, field: str, size_limit: int) -> None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise BadRequest("400 Bad request - expected multipart/form-data with a boundary")
        self._body = aiter(body)
        self._field = field.encode()
        self._size_limit = size_limit
        self._body_limit = size_limit + FORM_OVERHEAD
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )
        self._pending: deque[bytes] = deque()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._in_file = False
        self._file_done = False
        self._ended = False
        self._received = 0
        self.filename: str | None = None
        self.size = 0

    async def start(self) -> str:
        """Read until the file part's headers; its filename (may be empty)."""
        while self.filename is None:
            if not await self._feed():
                raise BadRequest(f"400 Bad request - missing form field {self._field.decode()!r} with a file")
        return self.filename

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes; raises if the body turns out malformed, incomplete or too large."""
        if self.filename is None:
            await self.start()
        while True:
            while self._pending:
                yield self._pending.popleft()
            if self._file_done or self._ended:
                break
            if not await self._feed():
                raise BadRequest("400 Bad request - the multipart body ended before its closing boundary")

    async def _feed(self) -> bool:
        """Parse the next piece of the body; False when the body has ended."""
        try:
            piece = await anext(self._body)
        except StopAsyncIteration:
            return False
        self._received += len(piece)
        if self._received > self._body_limit:
            raise PayloadTooLarge(TOO_LARGE)
        try:
            self._parser.write(piece)
        except FormParserError as exc:
            raise BadRequest(f"400 Bad request - invalid multipart body: {exc}") from exc
        if self.size > self._size_limit:
            raise PayloadTooLarge(TOO_LARGE)
        return True

    # parser callbacks: plain functions, called synchronously from write()

    def _on_part_begin(self) -> None:
        self._disposition = b""

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition.decode("latin-1"))
        if self.filename is None and options.get(b"name") == self._field and b"filename" in options:
            self.filename = _decode(options[b"filename"])
            self._in_file = True

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:  # other parts (GitLab's metadata, token...) are not needed: dropped
            self.size += end - start
            self._pending.append(data[start:end])

    def _on_part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._file_done = True

    def _on_end(self) -> None:
        self._ended = True


def _decode(raw: bytes) -> str:
    """Header bytes as sent: UTF-8 (Go's mime/multipart), else Latin-1."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")
