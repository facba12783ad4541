"""Legacy text heap profiles: Go ``debug=1`` / gperftools / tcmalloc heap text, and Java heapz.

pprof still reads these through ``parseLegacy`` (google/pprof ``profile/legacy_profile.go`` and
``profile/legacy_java_profile.go``). memgate compares its numbers with ``go tool pprof``, so this
module is a line-for-line port of those parsers, not a reinterpretation: the same regular
expressions, the same value order, the same unsampling arithmetic (including float truncation),
the same address adjustment and the same location, function and mapping numbering. The reference
is the copy of pprof vendored in the Go toolchain (``cmd/vendor/github.com/google/pprof``,
v0.0.0-20260507013755-92041b743c96); older pprof releases differ (they did not decrement the leaf
address, had other memory-map regexes and gave 4-column Go heaps the CPU drop_frames).

Deliberate deviations, each one only turning a pprof failure (or undefined result) into
something else, never changing numbers pprof would print:

* leading blank lines before the header are skipped (pprof requires the header on line 1);
* lines are not limited to 64 KiB (pprof's ``bufio.Scanner`` fails on longer lines);
* where pprof's arithmetic leaves int64 (``int64(+Inf)`` when unsampling absurd records) or a
  hex address does not fit in 64 bits, this module raises :class:`ProfileError` instead of
  producing garbage or panicking.

Go's regexp syntax classes are spelled out (``[0-9]`` for ``\\d``, ``[\\t\\n\\f\\r ]`` for ``\\s``)
because Python's differ (Unicode digits, ``\\v``), and Go's ``strings.TrimSpace`` is reproduced
for the same reason.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memgate import regex
from memgate.errors import ProfileError
from memgate.profile.model import (
    Function,
    Locations,
    Mapping,
    Profile,
    Samples,
    ValueType,
    num_label_unit,
)

__all__ = [
    "ALLOC_RX_STR",
    "ALLOC_SKIP_RX_STR",
    "ENCODING_HEAP",
    "ENCODING_JAVA_HEAP",
    "JAVA_HEAPZ_SAMPLING_RATE",
    "looks_like_legacy",
    "parse_legacy",
    "scale_heap_sample",
]

#: ``Profile.encoding`` of a Go / gperftools / tcmalloc text heap profile.
ENCODING_HEAP = "legacy-heap"
#: ``Profile.encoding`` of a Java ``--- heapz 1 ---`` profile.
ENCODING_JAVA_HEAP = "legacy-java-heap"

#: pprof's ``javaHeapzSamplingRate``: Java heapz values are unsampled at this fixed rate, but
#: pprof records neither the rate nor a period type in the profile (period 0).
JAVA_HEAPZ_SAMPLING_RATE = 524288

#: Slugs of the errors raised here (scripts may match on them).
SLUG_UNRECOGNIZED = "profile-unrecognized"
SLUG_UNSUPPORTED = "profile-unsupported"
SLUG_INVALID = "profile-invalid"

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MASK = (1 << 64) - 1

# pprof's allocRxStr / allocSkipRxStr (legacy_profile.go), copied verbatim and joined with "|"
# exactly as pprof joins them. addLegacyFrameInfo sets them on every legacy heap profile.
_ALLOC_RX = (
    # POSIX entry points.
    r"calloc",
    r"cfree",
    r"malloc",
    r"free",
    r"memalign",
    r"do_memalign",
    r"(__)?posix_memalign",
    r"pvalloc",
    r"valloc",
    r"realloc",
    # TC malloc.
    r"tcmalloc::.*",
    r"tc_calloc",
    r"tc_cfree",
    r"tc_malloc",
    r"tc_free",
    r"tc_memalign",
    r"tc_posix_memalign",
    r"tc_pvalloc",
    r"tc_valloc",
    r"tc_realloc",
    r"tc_new",
    r"tc_delete",
    r"tc_newarray",
    r"tc_deletearray",
    r"tc_new_nothrow",
    r"tc_newarray_nothrow",
    # Memory-allocation routines on OS X.
    r"malloc_zone_malloc",
    r"malloc_zone_calloc",
    r"malloc_zone_valloc",
    r"malloc_zone_realloc",
    r"malloc_zone_memalign",
    r"malloc_zone_free",
    # Go runtime
    r"runtime\..*",
    # Other misc. memory allocation routines
    r"BaseArena::.*",
    r"(::)?do_malloc_no_errno",
    r"(::)?do_malloc_pages",
    r"(::)?do_malloc",
    r"DoSampledAllocation",
    r"MallocedMemBlock::MallocedMemBlock",
    r"_M_allocate",
    r"__builtin_(vec_)?delete",
    r"__builtin_(vec_)?new",
    r"__gnu_cxx::new_allocator::allocate",
    r"__libc_malloc",
    r"__malloc_alloc_template::allocate",
    r"allocate",
    r"cpp_alloc",
    r"operator new(\[\])?",
    r"simple_alloc::allocate",
)
_ALLOC_SKIP_RX = (
    # Preserve Go runtime frames that appear in the middle/bottom of the stack.
    r"runtime\.panic",
    r"runtime\.reflectcall",
    r"runtime\.call[0-9]*",
)
ALLOC_RX_STR = "|".join(_ALLOC_RX)
ALLOC_SKIP_RX_STR = "|".join(_ALLOC_SKIP_RX)

# --- Go regexp classes spelled out for Python ------------------------------------------------
_S = r"[\t\n\f\r ]"  # Go \s
_NS = r"[^\t\n\f\r ]"  # Go \S
_X = r"[0-9A-Fa-f]"  # [[:xdigit:]]
_D = r"[0-9]"  # Go \d and [[:digit:]]

_HEAP_HEADER_RE = regex.compile(
    rf"heap profile: *({_D}+): *({_D}+) *\[ *({_D}+): *({_D}+) *\] *@ *(heap[_a-z0-9]*)/?({_D}*)"
)
_HEAP_SAMPLE_RE = regex.compile(rf"(-?{_D}+): *(-?{_D}+) *\[ *({_D}+): *({_D}+) *] @([ x0-9a-f]*)")
_GROWTH_HEADER_RE = regex.compile(
    rf"heap profile: *({_D}+): *({_D}+) *\[ *({_D}+): *({_D}+) *\] @ growthz?"
)
_FRAGMENTATION_HEADER_RE = regex.compile(
    rf"heap profile: *({_D}+): *({_D}+) *\[ *({_D}+): *({_D}+) *\] @ fragmentationz?"
)
_HEX_NUMBER_RE = regex.compile(r"0x[0-9a-f]+")

# Memory maps (legacy_profile.go procMapsRE / briefMapsRE / logInfoRE).
_C_HEX = rf"(?:0x)?({_X}+)"
_C_HEX_RANGE = rf"{_S}*{_C_HEX}[\t\n\f\r -]?{_S}*{_C_HEX}:?"
_C_SPACE_STRING = rf"(?:{_S}+({_NS}+))?"
_C_SPACE_HEX = rf"(?:{_S}+({_X}+))?"
_C_SPACE_AT_OFFSET = rf"(?:{_S}+\(@({_X}+)\))?"
_C_PERM = rf"(?:{_S}+([-rwxp]+))?"
_PROC_MAPS_RE = regex.compile(
    "^"
    + _C_HEX_RANGE
    + _C_PERM
    + _C_SPACE_HEX
    + rf"{_S}+{_X}+:{_X}+"
    + rf"{_S}+{_D}+"
    + _C_SPACE_STRING
)
_BRIEF_MAPS_RE = regex.compile(
    "^" + _C_HEX_RANGE + _C_PERM + _C_SPACE_STRING + _C_SPACE_AT_OFFSET + _C_SPACE_HEX
)
_LOG_INFO_RE = regex.compile(r"^[^\[\]]+:[0-9]+]" + _S)
_LIB_RE = regex.compile(r"([.]so$|[.]so[._][0-9]+)")
_MEMORY_MAP_SENTINELS = ("--- Memory map: ---", "MAPPED_LIBRARIES:")

# Java (legacy_java_profile.go).
_JAVA_HEAPZ_HEADER = "--- heapz 1 ---"
_ATTRIBUTE_RE = regex.compile(r"([0-9A-Za-z_ ]+)=([0-9A-Za-z_ ]+)")  # Go `([\w ]+)=([\w ]+)`
_JAVA_SAMPLE_RE = regex.compile(rf" *({_D}+) +({_D}+) +@ +([ x0-9a-f]*)")
_JAVA_LOCATION_RE = regex.compile(rf"(?s)^{_S}*0x({_X}+){_S}+(.*){_S}*$")
_JAVA_LOCATION_FILE_LINE_RE = regex.compile(rf"(?s)^(.*){_S}+\((.+):(-?{_D}+)\)$")
_JAVA_LOCATION_PATH_RE = regex.compile(rf"(?s)^(.*){_S}+\((.*)\)$")

# Other legacy text kinds pprof knows; recognised only to say they are not memory profiles.
_COUNT_START_RE = regex.compile(rf"(?:{_NS}+) profile: total {_D}+")
_OTHER_LEGACY_PREFIXES = (
    "--- contentionz ",
    "--- mutex:",
    "--- contention:",
    "--- threadz ",
    "--- Thread ",
)

# Go's unicode.IsSpace, for strings.TrimSpace (Python's str.strip() also strips \x1c-\x1f).
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

#: How much of the input :func:`looks_like_legacy` decodes.
_SNIFF_BYTES = 4096


def _trim(s: str) -> str:
    """Go's strings.TrimSpace."""
    return s.strip(_GO_SPACE)


def _snippet(line: str, limit: int = 60) -> str:
    """A line quoted for a one-line error message."""
    if len(line) > limit:
        line = line[:limit] + "..."
    return repr(line)


def _is_space_or_comment(line: str) -> bool:
    trimmed = _trim(line)
    return not trimmed or trimmed[0] == "#"


def _is_memory_map_sentinel(line: str) -> bool:
    return any(s in line for s in _MEMORY_MAP_SENTINELS)


def _scan_lines(text: str, first_lineno: int) -> list[tuple[int, str]]:
    """Split like Go's ``bufio.ScanLines``: on ``\\n``, dropping one trailing ``\\r``.

    A final line without a newline is a line; an empty remainder after the last newline is not.
    Each line comes with its 1-based number in the file, for error messages.
    """
    pieces = text.split("\n")
    if pieces and pieces[-1] == "":
        pieces.pop()
    out = []
    for i, piece in enumerate(pieces):
        piece = piece.removesuffix("\r")
        out.append((first_lineno + i, piece))
    return out


# --- Go integer semantics ------------------------------------------------------------------


class _ParseIntError(ValueError):
    pass


def _parse_int(s: str, base: int) -> int:
    """``strconv.ParseInt(s, base, 64)`` for the digit strings the regexes capture.

    Base 0 follows Go's prefix rule; with only decimal digits captured, a leading ``0`` means
    octal (so ``010`` is 8 and ``09`` is an error), as in pprof's Java sample parsing.
    """
    body = s[1:] if s[:1] in "+-" else s
    if base == 0:
        if len(body) > 1 and body[0] == "0":
            base, body = 8, body[1:]
        else:
            base = 10
    try:
        v = int(body, base)
    except ValueError:
        raise _ParseIntError(f"invalid syntax: {s!r}") from None
    if s[:1] == "-":
        v = -v
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise _ParseIntError(f"value out of range: {s}")
    return v


def _go_div(a: int, b: int) -> int:
    """int64 division truncating toward zero, wrapping like Go for MinInt64 / -1."""
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    if q > _INT64_MAX:
        q -= 1 << 64
    return q


def _float_to_int64(x: float) -> int:
    """Go's ``int64(x)``: truncation toward zero. Out of range is undefined in Go: refuse it."""
    if math.isnan(x) or not -9.223372036854775808e18 <= x < 9.223372036854775808e18:
        raise OverflowError(x)
    return int(x)


# Go's math.Exp as compiled for amd64 with FMA (math/exp_amd64.s, the ``avxfma`` path: every
# x86-64 CPU since 2013). libm's exp differs from it in the last bit for about 1 input in 6000,
# which after truncation moves an unsampled value by a byte; pprof's numbers are this code's.
# (pprof on arm64, or on x86-64 without FMA, can itself differ from this in the last bit.)
_EXP_LOG2E = 1.4426950408889634073599246810018920
_EXP_LN2U = 0.69314718055966295651160180568695068359375
_EXP_LN2L = 0.28235290563031577122588448175013436025525412068e-12
_EXP_OVERFLOW = 7.09782712893384e02
_EXP_TAYLOR = (
    2.4801587301587301587e-5,
    1.9841269841269841270e-4,
    1.3888888888888888889e-3,
    8.3333333333333333333e-3,
    4.1666666666666666667e-2,
    1.6666666666666666667e-1,
    0.5,
    1.0,
)


def _fma(a: float, b: float, c: float) -> float:
    """a*b + c with a single rounding (math.fma exists only from Python 3.13).

    Exact in integers: finite floats are dyadic rationals, so the sum has a power-of-two
    denominator, and CPython's int / int true division is correctly rounded.
    """
    na, da = a.as_integer_ratio()
    nb, db = b.as_integer_ratio()
    nc, dc = c.as_integer_ratio()
    n, d = na * nb, da * db
    if d >= dc:
        n += nc * (d // dc)
    else:
        n, d = n * (dc // d) + nc, dc
    return n / d


def _pow2(biased_exponent: int) -> float:
    """The float whose bits are ``biased_exponent << 52``."""
    return float(struct.unpack("<d", struct.pack("<Q", (biased_exponent << 52) & _UINT64_MASK))[0])


def _go_exp(x: float) -> float:
    """Go's ``math.Exp`` on amd64 with FMA, operation for operation."""
    if math.isnan(x) or x == math.inf:
        return x
    if x == -math.inf:
        return 0.0
    if x > _EXP_OVERFLOW:
        return math.inf
    k = _EXP_LOG2E * x
    # CVTSD2SL: round to nearest even; out of int32 range gives the "integer indefinite".
    bx = round(k) if -2147483648.5 < k < 2147483647.5 else -(1 << 31)
    kf = float(bx)
    r = _fma(-kf, _EXP_LN2U, x)
    r = _fma(-kf, _EXP_LN2L, r)
    r *= 0.0625
    p = _EXP_TAYLOR[0]
    for c in _EXP_TAYLOR[1:]:
        p = _fma(p, r, c)
    r *= p
    for _ in range(3):
        r *= r + 2.0
    r = _fma(r, r + 2.0, 1.0)
    bx += 0x3FF
    if bx <= 0:
        if bx < -52:
            return 0.0
        return r * _pow2(bx + 0x3FE) * _pow2(1)
    if bx >= 0x7FF:
        return math.inf
    return r * _pow2(bx)


def scale_heap_sample(count: int, size: int, rate: int) -> tuple[int, int]:
    """pprof's ``scaleHeapSample``: undo Poisson sampling of one (count, size) pair.

    An allocation of average size ``s`` is sampled with probability ``1 - exp(-s/rate)``, so
    both values are divided by it. The float arithmetic and the truncation are Go's, so the
    results match pprof's to the unit. Raises OverflowError where Go's result is undefined.
    """
    if count == 0 or size == 0:
        return 0, 0
    if rate <= 1:
        # rate == 1: everything was collected; rate < 1: unknown, so no adjustment.
        return count, size
    avg_size = float(size) / float(count)
    denominator = 1 - _go_exp(-avg_size / float(rate))
    if denominator == 0:
        raise OverflowError("scale is infinite")
    scale = 1 / denominator
    return _float_to_int64(float(count) * scale), _float_to_int64(float(size) * scale)


# --- intermediate, mutable objects (pprof mutates its *Mapping and *Location in place) ------


@dataclass(eq=False)
class _Mapping:
    start: int
    limit: int
    offset: int = 0
    file: str = ""
    build_id: str = ""


@dataclass(eq=False)
class _Function:
    name: str
    filename: str


@dataclass(eq=False)
class _Location:
    address: int
    mapping: _Mapping | None = None
    #: Java only: the single (function, line number) of a symbolized location.
    line: tuple[_Function, int] | None = None


@dataclass
class _Parsed:
    """A legacy profile as pprof holds it just before ``addLegacyFrameInfo``."""

    sample_types: tuple[ValueType, ...]
    period_type: ValueType
    period: int
    values: list[list[int]]
    stacks: list[list[_Location]]
    block_sizes: list[int]
    locations: list[_Location]
    mappings: list[_Mapping]
    encoding: str


class _Fail(Exception):
    """Internal: a parse failure, turned into ProfileError (with the source) at the top."""

    def __init__(self, message: str, slug: str = SLUG_INVALID) -> None:
        super().__init__(message)
        self.message = message
        self.slug = slug


# --- public API ------------------------------------------------------------------------------


def looks_like_legacy(data: bytes) -> bool:
    """Whether ``data`` is a legacy *text* profile that :func:`parse_legacy` should handle.

    A cheap sniff of the first non-blank line, for callers choosing between the protobuf decoder
    and this module (check the gzip magic first). True for pprof's heap headers (Go ``heap/N``,
    tcmalloc ``heapz_v2``/``heap_v2``, ``heapprofile``, ``growthz``, ``fragmentationz``), the Java
    ``--- heapz 1 ---`` header, and also for the other legacy *text* kinds pprof knows (goroutine
    counts, contention, threadz): those are not memory profiles, and routing them here gets the
    user a precise "unsupported" error instead of a protobuf decoding failure. The heap header
    must start its line here (pprof searches anywhere in the line) so that binary data that
    happens to contain the text does not qualify.
    """
    head = data[:_SNIFF_BYTES].decode("utf-8", errors="replace")
    for raw in head.split("\n"):
        line = _trim(raw)
        if not line:
            continue
        if line.startswith("heap profile:"):
            return bool(
                _HEAP_HEADER_RE.search(line)
                or _GROWTH_HEADER_RE.search(line)
                or _FRAGMENTATION_HEADER_RE.search(line)
            )
        if line == _JAVA_HEAPZ_HEADER or line.startswith("--- heapz "):
            return True
        if line.startswith(_OTHER_LEGACY_PREFIXES) or line == "--- contentionz 1 ---":
            return True
        return _COUNT_START_RE.fullmatch(line) is not None
    return False


def parse_legacy(data: bytes, source: str) -> Profile:
    """Parse a legacy text heap profile the way pprof's ``parseLegacy`` does.

    Go / gperftools / tcmalloc heap text gets ``encoding="legacy-heap"``, Java heapz
    ``"legacy-java-heap"``. Anything else, and any line pprof would reject, raises
    :class:`ProfileError` naming ``source`` with a one-line message (slug
    ``profile-unrecognized`` for an unknown format, ``profile-unsupported`` for legacy kinds that
    are not heap profiles, ``profile-invalid`` for malformed content).
    """
    try:
        parsed = _parse(data)
    except _Fail as e:
        raise ProfileError(e.message, source=source, slug=e.slug) from None
    return _to_profile(parsed, source)


def _parse(data: bytes) -> _Parsed:
    if not data:
        raise _Fail("empty legacy profile", SLUG_UNRECOGNIZED)
    # Function names are UTF-8 in practice; Go's regexps see invalid bytes as U+FFFD too.
    text = data.decode("utf-8", errors="replace")
    # Skip leading blank lines (pprof would not; see the module docstring).
    first_lineno = 1
    while True:
        nl = text.find("\n")
        if nl < 0 or _trim(text[:nl]):
            break
        text = text[nl + 1 :]
        first_lineno += 1
    if not _trim(text):
        raise _Fail("empty legacy profile", SLUG_UNRECOGNIZED)
    nl = text.find("\n")
    first = text if nl < 0 else text[:nl]
    first = first.removesuffix("\r")

    if (
        _HEAP_HEADER_RE.search(first)
        or _GROWTH_HEADER_RE.search(first)
        or _FRAGMENTATION_HEADER_RE.search(first)
    ):
        return _parse_heap(_scan_lines(text, first_lineno))
    header = _trim(first)
    if header == _JAVA_HEAPZ_HEADER:
        return _parse_java_heap(text, first_lineno)
    if header == "--- contentionz 1 ---" or header.startswith(_OTHER_LEGACY_PREFIXES):
        raise _Fail(
            f"legacy {header.strip('- ').split(' ')[0].rstrip(':')} profile is not a heap "
            "profile; only legacy heap profiles are supported",
            SLUG_UNSUPPORTED,
        )
    m = _COUNT_START_RE.fullmatch(header)
    if m is not None:
        kind = header.split(" ", 1)[0]
        raise _Fail(
            f"legacy {kind} count profile is not a heap profile; only legacy heap profiles "
            "are supported",
            SLUG_UNSUPPORTED,
        )
    raise _Fail(f"not a legacy heap profile (first line {_snippet(first)})", SLUG_UNRECOGNIZED)


# --- Go / gperftools / tcmalloc heap text ------------------------------------------------------


def _parse_heap_header(line: str) -> tuple[str, int, bool]:
    """``parseHeapHeader``: (sampling, period, hasAlloc) from a ``heap profile:`` line."""
    header = _HEAP_HEADER_RE.search(line)
    assert header is not None
    h = header.groups()
    period = 0
    if h[5]:
        try:
            period = _parse_int(h[5], 10)
        except _ParseIntError:
            raise _Fail(f"line 1: sampling period {h[5]} out of range", SLUG_UNRECOGNIZED) from None
    # String comparisons, as in pprof: the alloc pair counts only if it differs and is non-zero.
    has_alloc = (h[2] != h[0] and h[2] != "0") or (h[3] != h[1] and h[3] != "0")
    kind = h[4]
    if kind in ("heapz_v2", "heap_v2"):
        return "v2", period, has_alloc
    if kind == "heapprofile":
        return "", 1, has_alloc
    if kind == "heap":
        # Go writes 2*MemProfileRate after "heap/" (a historical quirk); pprof halves it.
        return "v2", _go_div(period, 2), has_alloc
    raise _Fail(f"unrecognized heap profile kind {kind!r} in header", SLUG_UNRECOGNIZED)


def _parse_heap(lines: list[tuple[int, str]]) -> _Parsed:
    """``parseHeap``: header, one record per line, then an optional memory map."""
    header = lines[0][1]
    sampling = ""
    has_alloc = False
    if _HEAP_HEADER_RE.search(header):
        sampling, period, has_alloc = _parse_heap_header(header)
    else:  # growthz / fragmentationz
        period = 1

    if has_alloc:
        # pprof puts alloc before inuse so that the default (last) sample type is inuse_space.
        sample_types: tuple[ValueType, ...] = (
            ValueType("alloc_objects", "count"),
            ValueType("alloc_space", "bytes"),
            ValueType("inuse_objects", "count"),
            ValueType("inuse_space", "bytes"),
        )
    else:
        sample_types = (ValueType("objects", "count"), ValueType("space", "bytes"))

    locs: dict[int, _Location] = {}
    locations: list[_Location] = []
    values: list[list[int]] = []
    stacks: list[list[_Location]] = []
    block_sizes: list[int] = []
    map_lines: list[tuple[int, str]] = []
    for idx in range(1, len(lines)):
        lineno, raw = lines[idx]
        line = _trim(raw)
        if _is_space_or_comment(line):
            continue
        if _is_memory_map_sentinel(line):
            map_lines = lines[idx + 1 :]
            break
        value, block_size, addrs = _parse_heap_sample(line, lineno, period, sampling, has_alloc)
        stack = []
        for addr in addrs:
            # Return addresses point after the call; pprof moves every frame (the leaf too,
            # which in a heap profile is also a call, into the allocator) back by one byte.
            addr = (addr - 1) & _UINT64_MASK
            loc = locs.get(addr)
            if loc is None:
                loc = _Location(addr)
                locs[addr] = loc
                locations.append(loc)
            stack.append(loc)
        values.append(value)
        stacks.append(stack)
        block_sizes.append(block_size)

    mappings = _parse_memory_map(map_lines, locations)
    return _Parsed(
        sample_types=sample_types,
        period_type=ValueType("space", "bytes"),
        period=period,
        values=values,
        stacks=stacks,
        block_sizes=block_sizes,
        locations=locations,
        mappings=mappings,
        encoding=ENCODING_HEAP,
    )


def _parse_heap_sample(
    line: str, lineno: int, rate: int, sampling: str, include_alloc: bool
) -> tuple[list[int], int, list[int]]:
    """``parseHeapSample``: values (alloc pair first when present), block size, addresses."""
    m = _HEAP_SAMPLE_RE.search(line)
    if m is None:
        raise _Fail(
            f"line {lineno}: malformed heap record {_snippet(line)} "
            "(want 'inuse_count: inuse_bytes [alloc_count: alloc_bytes] @ 0xaddr ...')"
        )
    g = m.groups()
    value: list[int] = []
    block_size = 0

    def add_values(count_s: str, size_s: str, label: str) -> None:
        nonlocal block_size
        try:
            count = _parse_int(count_s, 10)
            size = _parse_int(size_s, 10)
        except _ParseIntError as e:
            raise _Fail(f"line {lineno}: malformed heap record {_snippet(line)}: {e}") from None
        if count == 0 and size != 0:
            raise _Fail(f"line {lineno}: {label} count was 0 but {label} bytes was {size}")
        if count != 0:
            block_size = _go_div(size, count)
            if sampling == "v2":
                try:
                    count, size = scale_heap_sample(count, size, rate)
                except OverflowError:
                    raise _Fail(
                        f"line {lineno}: {label} values {count}: {size} cannot be unsampled "
                        f"at rate {rate} (result outside int64)"
                    ) from None
        value.extend((count, size))

    if include_alloc:
        add_values(g[2], g[3], "allocation")
    # Added last, so the block size is the inuse pair's when its count is non-zero.
    add_values(g[0], g[1], "inuse")
    return value, block_size, _parse_hex_addresses(g[4], lineno, line)


def _parse_hex_addresses(s: str, lineno: int, line: str) -> list[int]:
    addrs = []
    for h in _HEX_NUMBER_RE.findall(s):
        a = int(h, 16)
        if a > _UINT64_MASK:
            raise _Fail(
                f"line {lineno}: malformed record {_snippet(line)}: "
                f"failed to parse as hex 64-bit number: {_snippet(h, 24)}"
            )
        addrs.append(a)
    return addrs


# --- memory maps (ParseMemoryMapFromScanner and what it calls) --------------------------------


#: ``$attribute`` substitutions a memory map may define (pprof's real ones have a handful).
MAX_SUBSTITUTIONS = 1000
#: How much longer than itself a memory-map line may grow by substitutions: without a bound,
#: a line of ``$a$a$a...`` with a long value for ``a`` would expand to gigabytes.
MAX_SUBSTITUTED_GROWTH = 1 << 16


class _Replacer:
    """``strings.NewReplacer(pairs...).Replace``: left to right, without overlaps, and at a
    position the earliest pair wins, in time linear in the line (one RE2 alternation of the
    keys, leftmost-first as Go's generic replacer) rather than lines times pairs."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.values: dict[str, str] = {}
        for old, new in pairs:
            self.values.setdefault(old, new)  # a later duplicate never wins
        keys = [k for k in dict.fromkeys(old for old, _ in pairs)]
        self.pattern = regex.compile("|".join(_re2_literal(k) for k in keys)) if keys else None

    def replace(self, line: str, lineno: int) -> str:
        if self.pattern is None:
            return line
        grown = [0]

        def one(m: regex.Match) -> str:
            key = m.group()
            value = self.values[key]
            grown[0] += len(value) - len(key)
            if grown[0] > MAX_SUBSTITUTED_GROWTH:  # stop before the line is built
                raise _Fail(f"line {lineno}: memory map line grows by more than "
                            f"{MAX_SUBSTITUTED_GROWTH} characters through $attribute "
                            "substitutions")
            return value

        out: str = self.pattern.sub(one, line)
        return out


def _re2_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching exactly it."""
    return "".join(c if c.isalnum() or c in " _" else f"\\x{{{ord(c):x}}}" for c in text)


def _go_replace(line: str, pairs: Sequence[tuple[str, str]]) -> str:
    """``strings.NewReplacer(pairs...).Replace`` for one line (see :class:`_Replacer`)."""
    return _Replacer(pairs).replace(line, 0)


def _parse_mapping_entry(line: str) -> _Mapping | None:
    """``parseMappingEntry``. None for a non-executable entry; raises ValueError if unrecognized."""
    me = _PROC_MAPS_RE.search(line)
    build_id = ""
    if me is not None:
        start, end, perm, offset, file = (g or "" for g in me.groups())
    else:
        mb = _BRIEF_MAPS_RE.search(line)
        if mb is None:
            raise ValueError(line)
        start, end, perm, file, offset, build_id = (g or "" for g in mb.groups())
    if perm and "x" not in perm:
        return None  # Skip non-executable entries.
    m = _Mapping(start=int(start, 16), limit=int(end, 16), file=file, build_id=build_id)
    if offset:
        m.offset = int(offset, 16)
    if max(m.start, m.limit, m.offset) > _UINT64_MASK:
        raise ValueError(line)  # strconv.ParseUint range error: unrecognized
    return m


def _parse_proc_maps(lines: list[tuple[int, str]]) -> list[_Mapping]:
    """``parseProcMapsFromScanner``: mapping lines, ``attr=value`` substitutions, junk ignored."""
    mappings: list[_Mapping] = []
    pairs: list[tuple[str, str]] = []
    replacer: _Replacer | None = None  # built again after a new definition, when next used
    for lineno, raw in lines:
        line = raw
        log = _LOG_INFO_RE.search(line)
        if log is not None:
            line = line[log.end() :]
        if pairs:
            if replacer is None:
                replacer = _Replacer(pairs)
            line = replacer.replace(line, lineno)
        try:
            m = _parse_mapping_entry(line)
        except ValueError:
            # Recognize assignments of the form attr=value, and replace $attr with value on
            # subsequent mappings. Ignore any other unrecognized entries.
            if "=" in line:
                key, val = line.split("=", 1)
                if len(pairs) >= MAX_SUBSTITUTIONS:
                    raise _Fail(f"line {lineno}: more than {MAX_SUBSTITUTIONS} $attribute "
                                "definitions in the memory map") from None
                pairs.append(("$" + _trim(key), _trim(val)))
                replacer = None
            continue
        if m is not None:
            mappings.append(m)
    return mappings


def _adjacent(m1: _Mapping, m2: _Mapping) -> bool:
    """``adjacent``: two entries that are one mapping split in two."""
    if m1.file and m2.file and m1.file != m2.file:
        return False
    if m1.build_id and m2.build_id and m1.build_id != m2.build_id:
        return False
    if m1.limit != m2.start:
        return False
    if m1.offset != 0 and m2.offset != 0:
        offset = (m1.offset + (m1.limit - m1.start)) & _UINT64_MASK
        if offset != m2.offset:
            return False
    return True


def _massage_mappings(mappings: list[_Mapping]) -> list[_Mapping]:
    """``massageMappings``: merge split entries, move the main binary to the front."""
    if len(mappings) > 1:
        merged = [mappings[0]]
        for m in mappings[1:]:
            lm = merged[-1]
            if _adjacent(lm, m):
                lm.limit = m.limit
                if m.file:
                    lm.file = m.file
                if m.build_id:
                    lm.build_id = m.build_id
                continue  # no location has a mapping yet, so updateLocationMapping is a no-op
            merged.append(m)
        mappings = merged
    for i, m in enumerate(mappings):
        file = _trim(m.file.replace("(deleted)", ""))
        if not file or _LIB_RE.search(file) or file[0] == "[":
            continue
        mappings[0], mappings[i] = mappings[i], mappings[0]
        break
    return mappings


def _remap_mapping_ids(mappings: list[_Mapping], locations: list[_Location]) -> list[_Mapping]:
    """``remapMappingIDs``: fix up the main mapping, then give every location a mapping.

    A location whose address no mapping covers gets one shared fake mapping [0, 2^64-1), as
    pprof does for Go legacy profiles (which carry no memory map at all).
    """
    if mappings:
        # Drop an initial /anon_hugepage mapping that is followed by an adjacent one.
        m0 = mappings[0]
        anon = m0.file.startswith("/anon_hugepage")
        if anon and len(mappings) > 1 and m0.limit == mappings[1].start:
            mappings = mappings[1:]
    if mappings:
        m0 = mappings[0]
        if (m0.start - m0.offset) & _UINT64_MASK == 0x400000:
            m0.start = 0x400000
            m0.offset = 0
    fake: _Mapping | None = None
    for loc in locations:
        a = loc.address
        if loc.mapping is not None or a == 0:
            continue
        found = next((m for m in mappings if m.start <= a < m.limit), None)
        if found is None:
            # Work around legacy handlers failing to encode the first part of mappings split
            # into adjacent ranges.
            for m in mappings:
                if m.offset != 0 and (m.start - m.offset) & _UINT64_MASK <= a < m.start:
                    m.start = (m.start - m.offset) & _UINT64_MASK
                    m.offset = 0
                    found = m
                    break
        if found is None:
            if fake is None:
                fake = _Mapping(start=0, limit=_UINT64_MASK)
                mappings = [*mappings, fake]
            found = fake
        loc.mapping = found
    return mappings


def _parse_memory_map(lines: list[tuple[int, str]], locations: list[_Location]) -> list[_Mapping]:
    """``ParseMemoryMapFromScanner`` (also run, with no lines, when there is no memory map)."""
    mappings = _massage_mappings(_parse_proc_maps(lines))
    return _remap_mapping_ids(mappings, locations)


# --- Java heapz ------------------------------------------------------------------------------


def _parse_java_heap(text: str, first_lineno: int) -> _Parsed:
    """``parseJavaProfile`` for ``--- heapz 1 ---``: attributes, samples, then symbols.

    Like pprof, the attribute and sample sections only take lines that end in a newline (a
    last sample line without one is read as a symbol line, i.e. ignored), samples end at the
    first line that is not one, and addresses are not adjusted (they are ids, not PCs).
    """
    nl = text.find("\n")
    if nl < 0:
        raise _Fail("java heapz profile has nothing after its header", SLUG_UNRECOGNIZED)
    pieces = text[nl + 1 :].split("\n")
    complete = len(pieces) - 1  # pieces[:complete] ended in a newline
    base = first_lineno + 1
    idx = 0

    # parseJavaHeader
    sample_types: tuple[ValueType, ...] = ()
    while idx < complete:
        line = _trim(pieces[idx])
        if line:
            h = _ATTRIBUTE_RE.search(line)
            if h is None:
                break  # Not an attribute: the samples start here.
            attribute, value = _trim(h.group(1)), _trim(h.group(2))
            if attribute == "format":
                if value != "java":
                    raise _Fail(
                        f"line {base + idx}: java heapz format is {value!r}, not 'java'",
                        SLUG_UNRECOGNIZED,
                    )
            elif attribute == "resolution":
                sample_types = (
                    ValueType("inuse_objects", "count"),
                    ValueType("inuse_space", value),
                )
            else:
                raise _Fail(
                    f"line {base + idx}: unrecognized java heapz attribute {_snippet(line)}",
                    SLUG_UNRECOGNIZED,
                )
        idx += 1

    # parseJavaSamples
    locs: dict[int, _Location] = {}
    locations: list[_Location] = []
    values: list[list[int]] = []
    stacks: list[list[_Location]] = []
    block_sizes: list[int] = []
    while idx < complete:
        line = _trim(pieces[idx])
        lineno = base + idx
        if line:
            s = _JAVA_SAMPLE_RE.search(line)
            if s is None:
                break  # Not a sample: the symbols start here.
            # Java has the fields inverted: "<bytes> <count> @ ...".
            count_s, size_s = s.group(2), s.group(1)
            stack = []
            for addr in _parse_hex_addresses(s.group(3), lineno, line):
                loc = locs.get(addr)
                if loc is None:
                    loc = _Location(addr)
                    locs[addr] = loc
                    locations.append(loc)
                stack.append(loc)
            try:
                count = _parse_int(count_s, 0)
                size = _parse_int(size_s, 0)
            except _ParseIntError as e:
                raise _Fail(
                    f"line {lineno}: malformed java heapz sample {_snippet(line)}: {e}"
                ) from None
            if count == 0:
                raise _Fail(
                    f"line {lineno}: java heapz sample {_snippet(line)}: "
                    "second value (count) must be non-zero"
                )
            block_sizes.append(_go_div(size, count))
            try:
                values.append(list(scale_heap_sample(count, size, JAVA_HEAPZ_SAMPLING_RATE)))
            except OverflowError:
                raise _Fail(
                    f"line {lineno}: java heapz sample {_snippet(line)} cannot be unsampled"
                ) from None
            stacks.append(stack)
        idx += 1

    if values and not sample_types:
        # pprof's CheckValid: "missing sample type information".
        raise _Fail("java heapz profile has samples but no 'resolution' attribute")

    # parseJavaLocations: "0x<addr> <function> (<file>:<line>)" and variants.
    functions: dict[str, _Function] = {}
    for j in range(idx, len(pieces)):
        line = _trim(pieces[j])
        if not line:
            continue
        jloc = _JAVA_LOCATION_RE.match(line)
        if jloc is None:
            continue
        addr = int(jloc.group(1), 16)
        if addr > _UINT64_MASK:
            raise _Fail(
                f"line {base + j}: java symbol address {_snippet(jloc.group(1), 24)} "
                "is not a 64-bit number"
            )
        loc = locs.get(addr)
        if loc is None:
            continue  # Unused/unseen.
        rest = jloc.group(2)
        line_no = 0
        file = ""
        fl = _JAVA_LOCATION_FILE_LINE_RE.match(rest)
        if fl is not None:
            func, file = fl.group(1), fl.group(2)
            try:
                n = _parse_int(fl.group(3), 10)
            except _ParseIntError:
                n = 0
            if n > 0:
                line_no = n
        else:
            fp = _JAVA_LOCATION_PATH_RE.match(rest)
            if fp is not None:
                # A shared library path: pprof keeps only its base name.
                func, file = fp.group(1), _go_filepath_base(fp.group(2))
            elif "generated stub/JIT" in rest:
                func = "STUB"
            else:
                # The whole text is the name (the Java agent's "GC", "VM", ...).
                func = rest
        fn = functions.get(func)
        if fn is None:
            fn = _Function(func, file)
            functions[func] = fn
        loc.line = (fn, line_no)
        loc.address = 0

    # remapMappingIDs (no mappings in Java heapz: unsymbolized locations share a fake one),
    # then Aggregate(address=false), which zeroes every address ("for better merge").
    mappings = _remap_mapping_ids([], locations)
    for loc in locations:
        loc.address = 0
    return _Parsed(
        sample_types=sample_types,
        period_type=ValueType("", ""),
        period=0,
        values=values,
        stacks=stacks,
        block_sizes=block_sizes,
        locations=locations,
        mappings=mappings,
        encoding=ENCODING_JAVA_HEAP,
    )


def _go_filepath_base(path: str) -> str:
    """Go's ``filepath.Base`` on Unix."""
    if path == "":
        return "."
    path = path.rstrip("/")
    if path == "":
        return "/"
    return path.rsplit("/", 1)[-1]


# --- assembly into the columnar model --------------------------------------------------------


def _to_profile(p: _Parsed, source: str) -> Profile:
    """Build the columnar :class:`Profile`, numbering like pprof's remap*IDs.

    Locations are already in first-seen order (remapLocationIDs), functions are numbered in
    order of first use by a location (remapFunctionIDs), mappings keep their list order.
    """
    n = len(p.values)
    nt = len(p.sample_types)
    loc_index = {id(loc): i for i, loc in enumerate(p.locations)}
    map_index = {id(m): i for i, m in enumerate(p.mappings)}

    functions: list[Function] = []
    fn_index: dict[int, int] = {}
    line_offsets = np.zeros(len(p.locations) + 1, dtype=np.int64)
    line_function: list[int] = []
    line_number: list[int] = []
    for i, loc in enumerate(p.locations):
        if loc.line is not None:
            fn, line_no = loc.line
            k = fn_index.get(id(fn))
            if k is None:
                k = len(functions)
                fn_index[id(fn)] = k
                functions.append(Function(fn.name, fn.name, fn.filename, 0))
            line_function.append(k)
            line_number.append(line_no)
        line_offsets[i + 1] = len(line_function)

    lengths = np.array([len(s) for s in p.stacks], dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    samples = Samples(
        values=np.array(p.values, dtype=np.int64).reshape(n, nt),
        offsets=offsets,
        locations=np.array([loc_index[id(loc)] for s in p.stacks for loc in s], dtype=np.int32),
        num_labels={"bytes": np.array(p.block_sizes, dtype=np.int64)},
        num_label_units={"bytes": num_label_unit("bytes", "")},
    )
    locations = Locations(
        ids=np.arange(1, len(p.locations) + 1, dtype=np.uint64),
        address=np.array([loc.address for loc in p.locations], dtype=np.uint64),
        mapping=np.array(
            [-1 if loc.mapping is None else map_index[id(loc.mapping)] for loc in p.locations],
            dtype=np.int32,
        ),
        line_offsets=line_offsets,
        line_function=np.array(line_function, dtype=np.int32),
        line_number=np.array(line_number, dtype=np.int64),
        line_column=np.zeros(len(line_function), dtype=np.int64),
    )
    mappings = tuple(
        Mapping(m.file, m.build_id, m.start, m.limit, m.offset, False) for m in p.mappings
    )
    # addLegacyFrameInfo: every profile these parsers produce has heapz sample types.
    return Profile(
        source=source,
        sample_types=p.sample_types,
        samples=samples,
        locations=locations,
        functions=tuple(functions),
        mappings=mappings,
        period_type=p.period_type,
        period=p.period,
        drop_frames=ALLOC_RX_STR,
        keep_frames=ALLOC_SKIP_RX_STR,
        encoding=p.encoding,
    )
