"""Build a :class:`Profile` from Python values, one sample at a time.

For small profiles only: the legacy text parsers (a few thousand records at most) and tests.
The protobuf decoder builds its arrays directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memgate.profile.model import (
    Function,
    Locations,
    Mapping,
    Profile,
    Samples,
    ValueType,
    num_label_unit,
)

#: One frame of a location: (function name, file name, line number).
Frame = tuple[str, str, int]


class ProfileBuilder:
    """Accumulates samples, interning locations and functions."""

    def __init__(
        self,
        sample_types: Sequence[tuple[str, str]],
        *,
        source: str = "<built>",
        period_type: tuple[str, str] = ("", ""),
        period: int = 0,
    ) -> None:
        self.source = source
        self.sample_types = tuple(ValueType(t, u) for t, u in sample_types)
        self.period_type = ValueType(*period_type)
        self.period = period
        self.time_nanos = 0
        self.duration_nanos = 0
        self.default_sample_type = ""
        self.comments: list[str] = []
        self.drop_frames = ""
        self.keep_frames = ""
        self._functions: dict[tuple[str, str], int] = {}
        self._function_list: list[Function] = []
        self._mappings: list[Mapping] = []
        self._locations: dict[tuple[int, tuple[Frame, ...]], int] = {}
        self._loc_address: list[int] = []
        self._loc_lines: list[tuple[Frame, ...]] = []
        self._values: list[Sequence[int]] = []
        self._stacks: list[list[int]] = []
        self._labels: dict[str, dict[int, int]] = {}

    def add_mapping(self, file: str, build_id: str = "", start: int = 0, limit: int = 0) -> int:
        self._mappings.append(Mapping(file, build_id, start, limit))
        return len(self._mappings) - 1

    def location(self, address: int = 0, frames: Sequence[Frame] = ()) -> int:
        """Intern a location (an address and its inlined frames, innermost first)."""
        key = (address, tuple(frames))
        idx = self._locations.get(key)
        if idx is None:
            idx = len(self._loc_address)
            self._locations[key] = idx
            self._loc_address.append(address)
            self._loc_lines.append(tuple(frames))
            for name, filename, _ in frames:
                if (name, filename) not in self._functions:
                    self._functions[(name, filename)] = len(self._function_list)
                    self._function_list.append(Function(name, name, filename, 0))
        return idx

    def add_sample(
        self,
        values: Sequence[int],
        stack: Sequence[int],
        num_labels: dict[str, int] | None = None,
    ) -> None:
        """Add a sample: values per sample type and location indices, leaf first."""
        if len(values) != len(self.sample_types):
            raise ValueError("value count differs from sample type count")
        n = len(self._values)
        self._values.append(tuple(int(v) for v in values))
        self._stacks.append(list(stack))
        for key, num in (num_labels or {}).items():
            self._labels.setdefault(key, {})[n] = int(num)

    def add_stack_sample(
        self, values: Sequence[int], frames: Sequence[Sequence[Frame] | Frame]
    ) -> None:
        """Convenience for tests: frames leaf first, each a Frame or a list of inlined Frames."""
        stack = []
        for fr in frames:
            if fr and isinstance(fr[0], str):
                stack.append(self.location(0, [fr]))  # type: ignore[list-item]
            else:
                stack.append(self.location(0, fr))  # type: ignore[arg-type]
        self.add_sample(values, stack)

    def build(self) -> Profile:
        n = len(self._values)
        nt = len(self.sample_types)
        values = np.array(self._values, dtype=np.int64).reshape(n, nt)
        lengths = np.array([len(s) for s in self._stacks], dtype=np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = [loc for s in self._stacks for loc in s]
        labels = {}
        for key, per in self._labels.items():
            arr = np.zeros(n, dtype=np.int64)
            for i, v in per.items():
                arr[i] = v
            labels[key] = arr
        samples = Samples(
            values=values,
            offsets=offsets,
            locations=np.array(flat, dtype=np.int32),
            num_labels=labels,
            num_label_units={k: num_label_unit(k, "") for k in labels},
        )
        nloc = len(self._loc_address)
        line_counts = np.array([len(ls) for ls in self._loc_lines], dtype=np.int64)
        line_offsets = np.zeros(nloc + 1, dtype=np.int64)
        np.cumsum(line_counts, out=line_offsets[1:])
        all_lines = [fr for ls in self._loc_lines for fr in ls]
        locations = Locations(
            ids=np.arange(1, nloc + 1, dtype=np.uint64),
            address=np.array(self._loc_address, dtype=np.uint64),
            mapping=np.full(nloc, 0 if self._mappings else -1, dtype=np.int32),
            line_offsets=line_offsets,
            line_function=np.array(
                [self._functions[(nm, fl)] for nm, fl, _ in all_lines], dtype=np.int32
            ),
            line_number=np.array([ln for _, _, ln in all_lines], dtype=np.int64),
            line_column=np.zeros(len(all_lines), dtype=np.int64),
        )
        return Profile(
            source=self.source,
            sample_types=self.sample_types,
            samples=samples,
            locations=locations,
            functions=tuple(self._function_list),
            mappings=tuple(self._mappings),
            period_type=self.period_type,
            period=self.period,
            time_nanos=self.time_nanos,
            duration_nanos=self.duration_nanos,
            default_sample_type=self.default_sample_type,
            comments=tuple(self.comments),
            drop_frames=self.drop_frames,
            keep_frames=self.keep_frames,
        )
