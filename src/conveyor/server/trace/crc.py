"""CRC-32 of a log in one pass over its bytes, while each sealed chunk keeps a CRC-32 of its own.

An append needs both the log's running CRC (``zlib.crc32(data, crc)``) and, for every whole chunk
it carries, the chunk's own CRC: two passes over a 1 MiB PATCH. CRC-32 is affine in its start
value, so ``crc32(piece, crc) == crc32(piece) ^ A(crc)`` where ``A`` is linear and depends only on
``len(piece)``. For the one length that matters (a whole chunk) ``ChunkCrc`` measures ``A``'s 32
columns once with zlib itself, and then extends a running CRC by a whole chunk from that chunk's
own CRC in 32 steps instead of 128 KiB of hashing.
"""

from __future__ import annotations

import zlib


class ChunkCrc:
    def __init__(self, chunk_size: int) -> None:
        zeros = bytes(chunk_size)
        base = zlib.crc32(zeros, 0)
        self.chunk_size = chunk_size
        self._columns = [zlib.crc32(zeros, 1 << bit) ^ base for bit in range(32)]

    def extend(self, crc: int, chunk_crc: int) -> int:
        """``zlib.crc32(chunk, crc)`` given ``chunk_crc == zlib.crc32(chunk)`` for a whole chunk."""
        out, bit = chunk_crc, 0
        while crc:
            if crc & 1:
                out ^= self._columns[bit]
            crc >>= 1
            bit += 1
        return out
