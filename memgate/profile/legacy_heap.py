"""Go / gperftools / tcmalloc heap text (``heap profile: ...``): pprof's ``parseHeap`` and
``parseHeapSample``, with Go's unsampling arithmetic."""

from __future__ import annotations

from memgate import regex
from memgate.profile.goemu import (
    UINT64_MASK,
    D,
    ParseIntError,
    go_div,
    parse_int,
    scale_heap_sample,
    trim_space,
)
from memgate.profile.legacy_common import (
    ENCODING_HEAP,
    SLUG_UNRECOGNIZED,
    Fail,
    LocationTable,
    Parsed,
    RawLocation,
    parse_hex_addresses,
    snippet,
)
from memgate.profile.legacy_maps import is_memory_map_sentinel, parse_memory_map
from memgate.profile.model import ValueType
from memgate.profile.sniff import HEAP_HEADER_RE

_HEAP_SAMPLE_RE = regex.compile(rf"(-?{D}+): *(-?{D}+) *\[ *({D}+): *({D}+) *] @([ x0-9a-f]*)")


def _is_space_or_comment(line: str) -> bool:
    trimmed = trim_space(line)
    return not trimmed or trimmed[0] == "#"



def _parse_heap_header(line: str) -> tuple[str, int, bool]:
    """``parseHeapHeader``: (sampling, period, hasAlloc) from a ``heap profile:`` line."""
    header = HEAP_HEADER_RE.search(line)
    assert header is not None
    h = header.groups()
    period = 0
    if h[5]:
        try:
            period = parse_int(h[5], 10)
        except ParseIntError:
            raise Fail(f"line 1: sampling period {h[5]} out of range", SLUG_UNRECOGNIZED) from None
    # String comparisons, as in pprof: the alloc pair counts only if it differs and is non-zero.
    has_alloc = (h[2] != h[0] and h[2] != "0") or (h[3] != h[1] and h[3] != "0")
    kind = h[4]
    if kind in ("heapz_v2", "heap_v2"):
        return "v2", period, has_alloc
    if kind == "heapprofile":
        return "", 1, has_alloc
    if kind == "heap":
        # Go writes 2*MemProfileRate after "heap/" (a historical quirk); pprof halves it.
        return "v2", go_div(period, 2), has_alloc
    raise Fail(f"unrecognized heap profile kind {kind!r} in header", SLUG_UNRECOGNIZED)


def parse_heap(lines: list[tuple[int, str]]) -> Parsed:
    """``parseHeap``: header, one record per line, then an optional memory map."""
    header = lines[0][1]
    sampling = ""
    has_alloc = False
    if HEAP_HEADER_RE.search(header):
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

    table = LocationTable()
    values: list[list[int]] = []
    stacks: list[list[RawLocation]] = []
    block_sizes: list[int] = []
    map_lines: list[tuple[int, str]] = []
    for idx in range(1, len(lines)):
        lineno, raw = lines[idx]
        line = trim_space(raw)
        if _is_space_or_comment(line):
            continue
        if is_memory_map_sentinel(line):
            map_lines = lines[idx + 1 :]
            break
        value, block_size, addrs = _parse_heap_sample(line, lineno, period, sampling, has_alloc)
        # Return addresses point after the call; pprof moves every frame (the leaf too,
        # which in a heap profile is also a call, into the allocator) back by one byte.
        stack = [table.get((addr - 1) & UINT64_MASK) for addr in addrs]
        values.append(value)
        stacks.append(stack)
        block_sizes.append(block_size)

    locations = table.locations
    mappings = parse_memory_map(map_lines, locations)
    return Parsed(sample_types=sample_types, period_type=ValueType("space", "bytes"),
                  period=period, values=values, stacks=stacks, block_sizes=block_sizes,
                  locations=locations, mappings=mappings, encoding=ENCODING_HEAP)


def _parse_heap_sample(
    line: str, lineno: int, rate: int, sampling: str, include_alloc: bool
) -> tuple[list[int], int, list[int]]:
    """``parseHeapSample``: values (alloc pair first when present), block size, addresses."""
    m = _HEAP_SAMPLE_RE.search(line)
    if m is None:
        raise Fail(
            f"line {lineno}: malformed heap record {snippet(line)} "
            "(want 'inuse_count: inuse_bytes [alloc_count: alloc_bytes] @ 0xaddr ...')"
        )
    g = m.groups()
    value: list[int] = []
    block_size = 0

    def add_values(count_s: str, size_s: str, label: str) -> None:
        nonlocal block_size
        try:
            count = parse_int(count_s, 10)
            size = parse_int(size_s, 10)
        except ParseIntError as e:
            raise Fail(f"line {lineno}: malformed heap record {snippet(line)}: {e}") from None
        if count == 0 and size != 0:
            raise Fail(f"line {lineno}: {label} count was 0 but {label} bytes was {size}")
        if count != 0:
            block_size = go_div(size, count)
            if sampling == "v2":
                try:
                    count, size = scale_heap_sample(count, size, rate)
                except OverflowError:
                    raise Fail(
                        f"line {lineno}: {label} values {count}: {size} cannot be unsampled "
                        f"at rate {rate} (result outside int64)"
                    ) from None
        value.extend((count, size))

    if include_alloc:
        add_values(g[2], g[3], "allocation")
    # Added last, so the block size is the inuse pair's when its count is non-zero.
    add_values(g[0], g[1], "inuse")
    return value, block_size, parse_hex_addresses(g[4], lineno, line)

