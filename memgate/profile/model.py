"""The profile model: what a pprof profile says, and nothing about reports.

The model is columnar. A Go heap profile of a busy service holds a million samples; one Python
object per sample would cost seconds and gigabytes, so samples, locations and lines are numpy
arrays in CSR form (an ``offsets`` array of length n+1 and a flat array of members). Functions
and mappings are few and stay as Python tuples of strings.

Ids in the file (location id, function id, mapping id) are replaced at decode time by 0-based
indices into the arrays here; ``-1`` means "none".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
U64 = NDArray[np.uint64]


@dataclass(frozen=True)
class ValueType:
    """A sample type or the period type: ``inuse_space``/``bytes``, ``cpu``/``nanoseconds``."""

    type: str
    unit: str

    def __str__(self) -> str:
        return f"{self.type}/{self.unit}"


@dataclass(frozen=True, eq=False)
class Samples:
    """All samples: values, stacks (leaf first) and numeric labels."""

    #: (n_samples, n_types) int64 values, one column per sample type.
    values: I64
    #: (n_samples + 1,) offsets into ``locations``.
    offsets: I64
    #: Location indices of every stack, leaf first, concatenated.
    locations: I32
    #: Numeric labels by key: the first value of that key per sample, 0 where absent.
    #: Go heap profiles carry ``bytes`` (the object size of the sample's bucket).
    num_labels: dict[str, I64] = field(default_factory=dict)
    #: Unit per numeric label key (pprof's inference: ``bytes``/``request``/``alignment``
    #: default to "bytes", any other key to its own name).
    num_label_units: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True, eq=False)
class Locations:
    """Locations and their lines. A location with several lines is an inlined call chain."""

    #: The id each location had in the file (for messages and re-encoding).
    ids: U64
    address: U64
    #: Index into :attr:`Profile.mappings`, -1 for none.
    mapping: I32
    #: (n_locations + 1,) offsets into the line arrays.
    line_offsets: I64
    #: Function index of each line, -1 for none. line[0] of a location is the innermost frame.
    line_function: I32
    line_number: I64
    line_column: I64

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True)
class Function:
    name: str
    system_name: str
    filename: str
    start_line: int


@dataclass(frozen=True)
class Mapping:
    file: str
    build_id: str
    memory_start: int = 0
    memory_limit: int = 0
    file_offset: int = 0
    has_functions: bool = False


@dataclass(frozen=True, eq=False)
class Profile:
    """One decoded profile.

    ``source`` names where it came from (path, URL or ``<stdin>``), so that every later error
    can name the file.
    """

    source: str
    sample_types: tuple[ValueType, ...]
    samples: Samples
    locations: Locations
    functions: tuple[Function, ...]
    mappings: tuple[Mapping, ...]
    period_type: ValueType = ValueType("", "")
    period: int = 0
    time_nanos: int = 0
    duration_nanos: int = 0
    #: The sample type name the producer asks tools to show first ("" if unset).
    default_sample_type: str = ""
    comments: tuple[str, ...] = ()
    #: Regular expressions (pprof's drop_frames / keep_frames), "" when unset.
    drop_frames: str = ""
    keep_frames: str = ""
    doc_url: str = ""
    #: What the input was: "gzip+protobuf", "protobuf", "legacy-heap", ...
    encoding: str = "protobuf"

    @property
    def duration_seconds(self) -> float | None:
        """The profile's own duration, or None when the producer did not record one."""
        return self.duration_nanos / 1e9 if self.duration_nanos > 0 else None

    def sample_type_names(self) -> list[str]:
        return [st.type for st in self.sample_types]

    def sample_index(self, name: str | int | None) -> int:
        """pprof's ``SampleIndexByName``.

        None or "" selects ``default_sample_type`` if it names a type, else the last type; a
        number is a 0-based index; a name matches a type exactly or with its ``inuse_`` prefix
        removed (so ``inuse_space`` selects the ``space`` column of two-column profiles).
        Raises ValueError with pprof's wording.
        """
        types = self.sample_type_names()
        if not types:
            raise ValueError("the profile has no sample types")
        if name is None or name == "":
            if self.default_sample_type in types:
                return types.index(self.default_sample_type)
            return len(types) - 1
        text = str(name)
        try:
            i = int(text)
        except ValueError:
            pass
        else:
            if i < 0 or i >= len(types):
                raise ValueError(f"sample_index {text} is outside the range [0..{len(types) - 1}]")
            return i
        no_inuse = text.removeprefix("inuse_")
        for i, t in enumerate(types):
            if t in (text, no_inuse):
                return i
        raise ValueError(f"sample_index {text!r} must be one of: {', '.join(types)}")


def describe_types(p: Profile) -> str:
    """A profile's sample types for a message: ``alloc_objects/count, ...``."""
    return ", ".join(str(st) for st in p.sample_types) or "no sample types"


def type_mismatch(profiles: Sequence[Profile]) -> Profile | None:
    """The first profile whose sample types (names and units, in order) are not the first
    profile's: no two such profiles can be compared or merged value by value."""
    return next((p for p in profiles[1:] if p.sample_types != profiles[0].sample_types), None)


def num_label_unit(key: str, explicit: str) -> str:
    """The unit pprof assigns to a numeric label key (profile.go ``NumLabelUnits``)."""
    if explicit:
        return explicit
    if key in ("bytes", "request", "alignment"):
        return "bytes"
    return key
