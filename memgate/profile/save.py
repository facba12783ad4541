"""Save a profile read from a URL (or anywhere) to a file: ``memgate fetch -o`` and ``top -o``.

``baseline update`` and ``accept`` work on files, and a check's report names files, so a
profile fetched from a live ``/debug/pprof/heap`` must be saved to be kept. The bytes are saved
as served: the sha256 a later check records is the sha256 of what the server sent. One
exception: a delta URL (``?seconds=N``) whose profile records no duration (Go's does; other
servers may not) gets ``duration_nanos = N s``, so that the saved file keeps what the URL
said about the time it covers, as a rate comparison needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from memgate.profile.gunzip import gunzip_if_gzip
from memgate.profile.limits import InputLimits
from memgate.profile.model import Profile
from memgate.profile.wire import encode_varint


@dataclass(frozen=True)
class Saved:
    """The bytes to write and what a user is told about them."""

    data: bytes
    duration_seconds: float | None
    #: How the duration came to be: "profile", "url" (set from ?seconds=N) or "none".
    duration_source: str


def savable(data: bytes, prof: Profile, spec: str, limits: InputLimits) -> Saved:
    """The file content for a profile read from ``spec`` (``data`` as read, ``prof`` decoded).

    Only a protobuf profile can carry a duration; a legacy text profile is saved unchanged.
    """
    if prof.duration_seconds:
        return Saved(data, prof.duration_seconds, "profile")
    from memgate.profile.fetch import delta_seconds
    from memgate.profile.source import is_url

    seconds = delta_seconds(spec) if is_url(spec) else 0.0
    if not seconds or not prof.encoding.endswith("protobuf"):
        return Saved(data, None, "none")
    import gzip

    raw = gunzip_if_gzip(data, spec, limits.max_decompressed_bytes)
    # Appended, not re-encoded: for a scalar field protobuf keeps the last value on the wire,
    # so everything the server sent stays byte for byte (invalid UTF-8 names included).
    raw += encode_varint(DURATION_NANOS_TAG) + encode_varint(round(seconds * 1e9))
    return Saved(gzip.compress(raw, compresslevel=6, mtime=0), seconds, "url")


#: Field 10 (``int64 duration_nanos``) of pprof's Profile message, wire type 0 (varint).
DURATION_NANOS_TAG = 10 << 3


