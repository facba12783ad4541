"""gzip decompression within a size limit: a 1 KB gzip file can expand to gigabytes."""

from __future__ import annotations

import zlib

from memgate.errors import LimitError, ProfileError
from memgate.profile.limits import raise_with
from memgate.profile.sniff import is_gzip

#: Output of one zlib call: the decompressed data grows in steps of this size, so that memory
#: never exceeds the limit by more than a step (one call for everything doubles its buffer
#: as it goes, and a 1 GiB limit cost 2 GiB).
_GUNZIP_STEP = 16 << 20


def gunzip(data: bytes, source: str, limit: int) -> bytes:
    """Decompress gzip data (several members are concatenated, like Go's reader) within a limit.

    The result is a ``bytearray`` grown in place (the allocator extends it without a copy),
    which every reader of the decoded data accepts as bytes; it is never copied whole.
    """
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        chunk_in = rest
        while True:
            try:
                chunk = d.decompress(chunk_in, min(limit - len(out) + 1, _GUNZIP_STEP))
            except zlib.error as e:
                raise ProfileError(
                    f"corrupt gzip data ({e})", source=source, slug="gzip-corrupt"
                ) from None
            out += chunk
            if len(out) > limit:
                raise LimitError(
                    f"decompressed size exceeds the limit of {limit} bytes "
                    f"({raise_with('max_decompressed_bytes')})",
                    source=source,
                )
            if d.eof:
                break
            chunk_in = d.unconsumed_tail
            # No input left: zlib may still hold output back (the step was full); another
            # call with no input gets it. No input and no output means the stream ended early.
            if not chunk_in and not chunk:
                raise ProfileError(
                    "truncated gzip data (unexpected end of stream)",
                    source=source,
                    slug="gzip-truncated",
                )
        rest = d.unused_data
        # Trailing zero padding after the last member is tolerated (as gzip(1) does).
        if rest and not rest.strip(b"\x00"):
            break
    return out  # type: ignore[return-value]  # a bytearray: see the docstring



def gunzip_if_gzip(data: bytes, source: str, limit: int) -> bytes:
    """``data`` decompressed within ``limit`` if it is gzip, else ``data`` itself."""
    return gunzip(data, source, limit) if is_gzip(data) else data
