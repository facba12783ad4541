"""What kind of profile a byte string holds, from its content alone (never its name).

The one place that knows the headers: gzip magic ``1f 8b``; legacy text (``heap profile:``,
``--- heapz``); anything else is taken for raw protobuf and left to the protobuf decoder.
"""

from __future__ import annotations

from memgate import regex
from memgate.profile.goemu import NS, D, trim_space

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(data: bytes) -> bool:
    """Whether ``data`` starts with the gzip magic."""
    return data[:2] == GZIP_MAGIC


def looks_like_text(data: bytes) -> bool:
    """Legacy formats are ASCII text; a protobuf profile starts with a field tag byte."""
    head = data[:256].lstrip()
    return bool(head) and all(32 <= c < 127 or c in (9, 10, 13) for c in head[:64])


# Legacy text headers (google/pprof ``profile/legacy_profile.go``), the parsers' too.
HEAP_HEADER_RE = regex.compile(
    rf"heap profile: *({D}+): *({D}+) *\[ *({D}+): *({D}+) *\] *@ *(heap[_a-z0-9]*)/?({D}*)"
)
GROWTH_HEADER_RE = regex.compile(
    rf"heap profile: *({D}+): *({D}+) *\[ *({D}+): *({D}+) *\] @ growthz?"
)
FRAGMENTATION_HEADER_RE = regex.compile(
    rf"heap profile: *({D}+): *({D}+) *\[ *({D}+): *({D}+) *\] @ fragmentationz?"
)
JAVA_HEAPZ_HEADER = "--- heapz 1 ---"

# Other legacy text kinds pprof knows; recognised only to say they are not memory profiles.
COUNT_START_RE = regex.compile(rf"(?:{NS}+) profile: total {D}+")
OTHER_LEGACY_PREFIXES = (
    "--- contentionz ",
    "--- mutex:",
    "--- contention:",
    "--- threadz ",
    "--- Thread ",
)


def is_heap_header(line: str) -> bool:
    """Whether ``line`` is a Go / gperftools / tcmalloc heap header (``heap/N``,
    ``heapz_v2``, ``heapprofile``, ``growthz``, ``fragmentationz``)."""
    return bool(
        HEAP_HEADER_RE.search(line)
        or GROWTH_HEADER_RE.search(line)
        or FRAGMENTATION_HEADER_RE.search(line)
    )


#: How much of the input :func:`looks_like_legacy` decodes.
_SNIFF_BYTES = 4096


def looks_like_legacy(data: bytes) -> bool:
    """Whether ``data`` is a legacy *text* profile that
    :func:`memgate.profile.legacy.parse_legacy` should handle.

    A cheap sniff of the first non-blank line, for callers choosing between the protobuf decoder
    and the legacy parsers (check the gzip magic first). True for pprof's heap headers (Go
    ``heap/N``, tcmalloc ``heapz_v2``/``heap_v2``, ``heapprofile``, ``growthz``,
    ``fragmentationz``), the Java ``--- heapz 1 ---`` header, and also for the other legacy
    *text* kinds pprof knows (goroutine counts, contention, threadz): those are not memory
    profiles, and routing them here gets the user a precise "unsupported" error instead of a
    protobuf decoding failure. The heap header
    must start its line here (pprof searches anywhere in the line) so that binary data that
    happens to contain the text does not qualify.
    """
    head = data[:_SNIFF_BYTES].decode("utf-8", errors="replace")
    for raw in head.split("\n"):
        line = trim_space(raw)
        if not line:
            continue
        if line.startswith("heap profile:"):
            return is_heap_header(line)
        if line == JAVA_HEAPZ_HEADER or line.startswith("--- heapz "):
            return True
        if line.startswith(OTHER_LEGACY_PREFIXES):
            return True
        return COUNT_START_RE.fullmatch(line) is not None
    return False
