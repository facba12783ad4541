"""What the legacy parsers share: the intermediate objects pprof mutates in place, the
failure they raise, and helpers for the lines they quote and the addresses they read."""

from __future__ import annotations

from dataclasses import dataclass

from memgate import regex
from memgate.profile.goemu import UINT64_MASK
from memgate.profile.model import ValueType

#: ``Profile.encoding`` of a Go / gperftools / tcmalloc text heap profile.
ENCODING_HEAP = "legacy-heap"
#: ``Profile.encoding`` of a Java ``--- heapz 1 ---`` profile.
ENCODING_JAVA_HEAP = "legacy-java-heap"

#: Slugs of the errors raised here (scripts may match on them).
SLUG_UNRECOGNIZED = "profile-unrecognized"
SLUG_UNSUPPORTED = "profile-unsupported"
SLUG_INVALID = "profile-invalid"

_HEX_NUMBER_RE = regex.compile(r"0x[0-9a-f]+")


def snippet(line: str, limit: int = 60) -> str:
    """A line quoted for a one-line error message."""
    if len(line) > limit:
        line = line[:limit] + "..."
    return repr(line)




@dataclass(eq=False)
class RawMapping:
    start: int
    limit: int
    offset: int = 0
    file: str = ""
    build_id: str = ""


@dataclass(eq=False)
class RawFunction:
    name: str
    filename: str


@dataclass(eq=False)
class RawLocation:
    address: int
    mapping: RawMapping | None = None
    #: Java only: the single (function, line number) of a symbolized location.
    line: tuple[RawFunction, int] | None = None


@dataclass
class Parsed:
    """A legacy profile as pprof holds it just before ``addLegacyFrameInfo``."""

    sample_types: tuple[ValueType, ...]
    period_type: ValueType
    period: int
    values: list[list[int]]
    stacks: list[list[RawLocation]]
    block_sizes: list[int]
    locations: list[RawLocation]
    mappings: list[RawMapping]
    encoding: str


class LocationTable:
    """The locations of a legacy profile by address, in first-seen order (the numbering of
    pprof's ``remapLocationIDs``)."""

    def __init__(self) -> None:
        self.by_address: dict[int, RawLocation] = {}
        self.locations: list[RawLocation] = []

    def get(self, address: int) -> RawLocation:
        """The location at ``address``, created on first sight."""
        loc = self.by_address.get(address)
        if loc is None:
            loc = RawLocation(address)
            self.by_address[address] = loc
            self.locations.append(loc)
        return loc


class Fail(Exception):
    """Internal: a parse failure, turned into ProfileError (with the source) at the top."""

    def __init__(self, message: str, slug: str = SLUG_INVALID) -> None:
        super().__init__(message)
        self.message = message
        self.slug = slug



def parse_hex_addresses(s: str, lineno: int, line: str) -> list[int]:
    addrs = []
    for h in _HEX_NUMBER_RE.findall(s):
        a = int(h, 16)
        if a > UINT64_MASK:
            raise Fail(
                f"line {lineno}: malformed record {snippet(line)}: "
                f"failed to parse as hex 64-bit number: {snippet(h, 24)}"
            )
        addrs.append(a)
    return addrs

