"""Legacy text heap profiles: Go ``debug=1`` / gperftools / tcmalloc heap text, and Java heapz.

pprof still reads these through ``parseLegacy`` (google/pprof ``profile/legacy_profile.go`` and
``profile/legacy_java_profile.go``). memgate compares its numbers with ``go tool pprof``, so
this module and its parts (:mod:`~memgate.profile.legacy_heap`,
:mod:`~memgate.profile.legacy_java`, :mod:`~memgate.profile.legacy_maps`,
:mod:`~memgate.profile.goemu`) are a line-for-line port of those parsers, not a
reinterpretation: the same regular expressions, the same value order, the same unsampling
arithmetic (including float truncation), the same address adjustment and the same location,
function and mapping numbering. The reference is the copy of pprof vendored in the Go toolchain
(``cmd/vendor/github.com/google/pprof``, v0.0.0-20260507013755-92041b743c96); older pprof
releases differ (they did not decrement the leaf address, had other memory-map regexes and gave
4-column Go heaps the CPU drop_frames).

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

import numpy as np

from memgate.errors import ProfileError
from memgate.profile.goemu import scan_lines, trim_space
from memgate.profile.legacy_common import (
    SLUG_UNRECOGNIZED,
    SLUG_UNSUPPORTED,
    Fail,
    Parsed,
    snippet,
)
from memgate.profile.legacy_heap import parse_heap
from memgate.profile.legacy_java import parse_java_heap
from memgate.profile.model import Function, Locations, Mapping, Profile, Samples, num_label_unit
from memgate.profile.sniff import (
    COUNT_START_RE,
    JAVA_HEAPZ_HEADER,
    OTHER_LEGACY_PREFIXES,
    is_heap_header,
)

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
    except Fail as e:
        raise ProfileError(e.message, source=source, slug=e.slug) from None
    return _to_profile(parsed, source)


def _parse(data: bytes) -> Parsed:
    if not data:
        raise Fail("empty legacy profile", SLUG_UNRECOGNIZED)
    # Function names are UTF-8 in practice; Go's regexps see invalid bytes as U+FFFD too.
    text = data.decode("utf-8", errors="replace")
    # Skip leading blank lines (pprof would not; see the module docstring).
    first_lineno = 1
    while True:
        nl = text.find("\n")
        if nl < 0 or trim_space(text[:nl]):
            break
        text = text[nl + 1 :]
        first_lineno += 1
    if not trim_space(text):
        raise Fail("empty legacy profile", SLUG_UNRECOGNIZED)
    nl = text.find("\n")
    first = text if nl < 0 else text[:nl]
    first = first.removesuffix("\r")

    if is_heap_header(first):
        return parse_heap(scan_lines(text, first_lineno))
    header = trim_space(first)
    if header == JAVA_HEAPZ_HEADER:
        return parse_java_heap(text, first_lineno)
    if header.startswith(OTHER_LEGACY_PREFIXES):
        raise Fail(
            f"legacy {header.strip('- ').split(' ')[0].rstrip(':')} profile is not a heap "
            "profile; only legacy heap profiles are supported",
            SLUG_UNSUPPORTED,
        )
    m = COUNT_START_RE.fullmatch(header)
    if m is not None:
        kind = header.split(" ", 1)[0]
        raise Fail(
            f"legacy {kind} count profile is not a heap profile; only legacy heap profiles "
            "are supported",
            SLUG_UNSUPPORTED,
        )
    raise Fail(f"not a legacy heap profile (first line {snippet(first)})", SLUG_UNRECOGNIZED)



def _to_profile(p: Parsed, source: str) -> Profile:
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
