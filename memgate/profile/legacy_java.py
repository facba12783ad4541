"""Java heapz text (``--- heapz 1 ---``): pprof's ``parseJavaProfile`` (google/pprof
``profile/legacy_java_profile.go``) in its three parts: header attributes, samples, symbols."""

from __future__ import annotations

from dataclasses import dataclass, field

from memgate import regex
from memgate.profile.goemu import (
    UINT64_MASK,
    D,
    ParseIntError,
    S,
    X,
    go_div,
    go_filepath_base,
    parse_int,
    scale_heap_sample,
    trim_space,
)
from memgate.profile.legacy_common import (
    ENCODING_JAVA_HEAP,
    SLUG_UNRECOGNIZED,
    Fail,
    LocationTable,
    Parsed,
    RawFunction,
    RawLocation,
    parse_hex_addresses,
    snippet,
)
from memgate.profile.legacy_maps import remap_mapping_ids
from memgate.profile.model import ValueType

#: pprof's ``javaHeapzSamplingRate``: Java heapz values are unsampled at this fixed rate, but
#: pprof records neither the rate nor a period type in the profile (period 0).
JAVA_HEAPZ_SAMPLING_RATE = 524288

# Java (legacy_java_profile.go).
_ATTRIBUTE_RE = regex.compile(r"([0-9A-Za-z_ ]+)=([0-9A-Za-z_ ]+)")  # Go `([\w ]+)=([\w ]+)`
_JAVA_SAMPLE_RE = regex.compile(rf" *({D}+) +({D}+) +@ +([ x0-9a-f]*)")
_JAVA_LOCATION_RE = regex.compile(rf"(?s)^{S}*0x({X}+){S}+(.*){S}*$")
_JAVA_LOCATION_FILE_LINE_RE = regex.compile(rf"(?s)^(.*){S}+\((.+):(-?{D}+)\)$")
_JAVA_LOCATION_PATH_RE = regex.compile(rf"(?s)^(.*){S}+\((.*)\)$")


def parse_java_heap(text: str, first_lineno: int) -> Parsed:
    """``parseJavaProfile`` for ``--- heapz 1 ---``: attributes, samples, then symbols.

    Like pprof, the attribute and sample sections only take lines that end in a newline (a
    last sample line without one is read as a symbol line, i.e. ignored), samples end at the
    first line that is not one, and addresses are not adjusted (they are ids, not PCs).
    """
    nl = text.find("\n")
    if nl < 0:
        raise Fail("java heapz profile has nothing after its header", SLUG_UNRECOGNIZED)
    lines = _Lines(text[nl + 1 :].split("\n"), first_lineno + 1)
    sample_types, idx = _parse_header(lines)
    samples, idx = _parse_samples(lines, idx)
    if samples.values and not sample_types:
        # pprof's CheckValid: "missing sample type information".
        raise Fail("java heapz profile has samples but no 'resolution' attribute")
    _parse_locations(lines, idx, samples.table)

    # remapMappingIDs (no mappings in Java heapz: unsymbolized locations share a fake one),
    # then Aggregate(address=false), which zeroes every address ("for better merge").
    locations = samples.table.locations
    mappings = remap_mapping_ids([], locations)
    for loc in locations:
        loc.address = 0
    return Parsed(
        sample_types=sample_types,
        period_type=ValueType("", ""),
        period=0,
        values=samples.values,
        stacks=samples.stacks,
        block_sizes=samples.block_sizes,
        locations=locations,
        mappings=mappings,
        encoding=ENCODING_JAVA_HEAP,
    )


@dataclass(frozen=True)
class _Lines:
    """The lines after the header, and the file's line number of the first."""

    pieces: list[str]
    base: int

    @property
    def complete(self) -> int:
        """How many lines ended in a newline (the last piece did not)."""
        return len(self.pieces) - 1


def _parse_header(lines: _Lines) -> tuple[tuple[ValueType, ...], int]:
    """``parseJavaHeader``: the sample types, and the index of the first line after the
    attributes."""
    sample_types: tuple[ValueType, ...] = ()
    idx = 0
    while idx < lines.complete:
        line = trim_space(lines.pieces[idx])
        if line:
            h = _ATTRIBUTE_RE.search(line)
            if h is None:
                break  # Not an attribute: the samples start here.
            attribute, value = trim_space(h.group(1)), trim_space(h.group(2))
            if attribute == "format":
                if value != "java":
                    raise Fail(
                        f"line {lines.base + idx}: java heapz format is {value!r}, not 'java'",
                        SLUG_UNRECOGNIZED,
                    )
            elif attribute == "resolution":
                sample_types = (
                    ValueType("inuse_objects", "count"),
                    ValueType("inuse_space", value),
                )
            else:
                raise Fail(
                    f"line {lines.base + idx}: unrecognized java heapz attribute "
                    f"{snippet(line)}",
                    SLUG_UNRECOGNIZED,
                )
        idx += 1
    return sample_types, idx


@dataclass
class _Samples:
    table: LocationTable = field(default_factory=LocationTable)
    values: list[list[int]] = field(default_factory=list)
    stacks: list[list[RawLocation]] = field(default_factory=list)
    block_sizes: list[int] = field(default_factory=list)


def _parse_samples(lines: _Lines, idx: int) -> tuple[_Samples, int]:
    """``parseJavaSamples`` from line ``idx``: the samples, and the index of the first line
    after them."""
    out = _Samples()
    while idx < lines.complete:
        line = trim_space(lines.pieces[idx])
        lineno = lines.base + idx
        if line:
            s = _JAVA_SAMPLE_RE.search(line)
            if s is None:
                break  # Not a sample: the symbols start here.
            # Java has the fields inverted: "<bytes> <count> @ ...".
            count_s, size_s = s.group(2), s.group(1)
            stack = [out.table.get(addr)
                     for addr in parse_hex_addresses(s.group(3), lineno, line)]
            try:
                count = parse_int(count_s, 0)
                size = parse_int(size_s, 0)
            except ParseIntError as e:
                raise Fail(
                    f"line {lineno}: malformed java heapz sample {snippet(line)}: {e}"
                ) from None
            if count == 0:
                raise Fail(
                    f"line {lineno}: java heapz sample {snippet(line)}: "
                    "second value (count) must be non-zero"
                )
            out.block_sizes.append(go_div(size, count))
            try:
                out.values.append(list(scale_heap_sample(count, size, JAVA_HEAPZ_SAMPLING_RATE)))
            except OverflowError:
                raise Fail(
                    f"line {lineno}: java heapz sample {snippet(line)} cannot be unsampled"
                ) from None
            out.stacks.append(stack)
        idx += 1
    return out, idx


def _parse_locations(lines: _Lines, idx: int, table: LocationTable) -> None:
    """``parseJavaLocations`` from line ``idx``: ``0x<addr> <function> (<file>:<line>)`` and
    variants symbolize the locations the samples use (others are ignored)."""
    functions: dict[str, RawFunction] = {}
    for j in range(idx, len(lines.pieces)):
        line = trim_space(lines.pieces[j])
        if not line:
            continue
        jloc = _JAVA_LOCATION_RE.match(line)
        if jloc is None:
            continue
        addr = int(jloc.group(1), 16)
        if addr > UINT64_MASK:
            raise Fail(
                f"line {lines.base + j}: java symbol address {snippet(jloc.group(1), 24)} "
                "is not a 64-bit number"
            )
        loc = table.by_address.get(addr)
        if loc is None:
            continue  # Unused/unseen.
        func, file, line_no = _symbol(jloc.group(2))
        fn = functions.get(func)
        if fn is None:
            fn = RawFunction(func, file)
            functions[func] = fn
        loc.line = (fn, line_no)
        loc.address = 0


def _symbol(rest: str) -> tuple[str, str, int]:
    """(function, file, line number) of the text after a symbol's address."""
    fl = _JAVA_LOCATION_FILE_LINE_RE.match(rest)
    if fl is not None:
        try:
            n = parse_int(fl.group(3), 10)
        except ParseIntError:
            n = 0
        return fl.group(1), fl.group(2), max(n, 0)
    fp = _JAVA_LOCATION_PATH_RE.match(rest)
    if fp is not None:
        # A shared library path: pprof keeps only its base name.
        return fp.group(1), go_filepath_base(fp.group(2)), 0
    if "generated stub/JIT" in rest:
        return "STUB", "", 0
    # The whole text is the name (the Java agent's "GC", "VM", ...).
    return rest, "", 0
