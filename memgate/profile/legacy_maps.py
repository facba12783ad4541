"""Memory maps of legacy heap profiles: ``/proc/self/maps`` lines and pprof's brief form,
their ``$attribute`` substitutions, and the massage and remap pprof applies to the mappings
(``ParseMemoryMapFromScanner`` in google/pprof ``profile/legacy_profile.go``)."""

from __future__ import annotations

from collections.abc import Sequence

from memgate import regex
from memgate.profile.goemu import NS, UINT64_MASK, D, S, X, trim_space
from memgate.profile.legacy_common import Fail, RawLocation, RawMapping

# Memory maps (legacy_profile.go procMapsRE / briefMapsRE / logInfoRE).
_C_HEX = rf"(?:0x)?({X}+)"
_C_HEX_RANGE = rf"{S}*{_C_HEX}[\t\n\f\r -]?{S}*{_C_HEX}:?"
_C_SPACE_STRING = rf"(?:{S}+({NS}+))?"
_C_SPACE_HEX = rf"(?:{S}+({X}+))?"
_C_SPACE_AT_OFFSET = rf"(?:{S}+\(@({X}+)\))?"
_C_PERM = rf"(?:{S}+([-rwxp]+))?"
_PROC_MAPS_RE = regex.compile(
    "^"
    + _C_HEX_RANGE
    + _C_PERM
    + _C_SPACE_HEX
    + rf"{S}+{X}+:{X}+"
    + rf"{S}+{D}+"
    + _C_SPACE_STRING
)
_BRIEF_MAPS_RE = regex.compile(
    "^" + _C_HEX_RANGE + _C_PERM + _C_SPACE_STRING + _C_SPACE_AT_OFFSET + _C_SPACE_HEX
)
_LOG_INFO_RE = regex.compile(r"^[^\[\]]+:[0-9]+]" + S)
_LIB_RE = regex.compile(r"([.]so$|[.]so[._][0-9]+)")
_MEMORY_MAP_SENTINELS = ("--- Memory map: ---", "MAPPED_LIBRARIES:")


def is_memory_map_sentinel(line: str) -> bool:
    return any(s in line for s in _MEMORY_MAP_SENTINELS)



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
                raise Fail(f"line {lineno}: memory map line grows by more than "
                            f"{MAX_SUBSTITUTED_GROWTH} characters through $attribute "
                            "substitutions")
            return value

        out: str = self.pattern.sub(one, line)
        return out


def _re2_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching exactly it."""
    return "".join(c if c.isalnum() or c in " _" else f"\\x{{{ord(c):x}}}" for c in text)




def _parse_mapping_entry(line: str) -> RawMapping | None:
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
    m = RawMapping(start=int(start, 16), limit=int(end, 16), file=file, build_id=build_id)
    if offset:
        m.offset = int(offset, 16)
    if max(m.start, m.limit, m.offset) > UINT64_MASK:
        raise ValueError(line)  # strconv.ParseUint range error: unrecognized
    return m


def _parse_proc_maps(lines: list[tuple[int, str]]) -> list[RawMapping]:
    """``parseProcMapsFromScanner``: mapping lines, ``attr=value`` substitutions, junk ignored."""
    mappings: list[RawMapping] = []
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
                    raise Fail(f"line {lineno}: more than {MAX_SUBSTITUTIONS} $attribute "
                                "definitions in the memory map") from None
                pairs.append(("$" + trim_space(key), trim_space(val)))
                replacer = None
            continue
        if m is not None:
            mappings.append(m)
    return mappings


def _adjacent(m1: RawMapping, m2: RawMapping) -> bool:
    """``adjacent``: two entries that are one mapping split in two."""
    if m1.file and m2.file and m1.file != m2.file:
        return False
    if m1.build_id and m2.build_id and m1.build_id != m2.build_id:
        return False
    if m1.limit != m2.start:
        return False
    if m1.offset != 0 and m2.offset != 0:
        offset = (m1.offset + (m1.limit - m1.start)) & UINT64_MASK
        if offset != m2.offset:
            return False
    return True


def _massage_mappings(mappings: list[RawMapping]) -> list[RawMapping]:
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
        file = trim_space(m.file.replace("(deleted)", ""))
        if not file or _LIB_RE.search(file) or file[0] == "[":
            continue
        mappings[0], mappings[i] = mappings[i], mappings[0]
        break
    return mappings


def remap_mapping_ids(mappings: list[RawMapping], locations: list[RawLocation]) -> list[RawMapping]:
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
        if (m0.start - m0.offset) & UINT64_MASK == 0x400000:
            m0.start = 0x400000
            m0.offset = 0
    fake: RawMapping | None = None
    for loc in locations:
        a = loc.address
        if loc.mapping is not None or a == 0:
            continue
        found = next((m for m in mappings if m.start <= a < m.limit), None)
        if found is None:
            # Work around legacy handlers failing to encode the first part of mappings split
            # into adjacent ranges.
            for m in mappings:
                if m.offset != 0 and (m.start - m.offset) & UINT64_MASK <= a < m.start:
                    m.start = (m.start - m.offset) & UINT64_MASK
                    m.offset = 0
                    found = m
                    break
        if found is None:
            if fake is None:
                fake = RawMapping(start=0, limit=UINT64_MASK)
                mappings = [*mappings, fake]
            found = fake
        loc.mapping = found
    return mappings


def parse_memory_map(lines: list[tuple[int, str]],
                     locations: list[RawLocation]) -> list[RawMapping]:
    """``ParseMemoryMapFromScanner`` (also run, with no lines, when there is no memory map)."""
    mappings = _massage_mappings(_parse_proc_maps(lines))
    return remap_mapping_ids(mappings, locations)

