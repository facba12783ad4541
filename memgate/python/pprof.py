"""Write Python stacks as a pprof profile that ``go tool pprof`` and ``memgate`` read.

Every frame's name and file come from the profiled program, which in CI is a pull request's
code: names are made printable (control characters escaped, lone surrogates of undecodable
file names escaped) and bounded in length, and the number of samples is bounded, before
anything is written.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from memgate.compare import SNAPSHOT_COMMENT
from memgate.profile import profile_pb2

#: Longest function or file name written; longer ones are cut with a marker.
MAX_NAME = 1024
#: Most samples (distinct stacks) one profile may hold; more is an error, not a truncation.
MAX_SAMPLES = 5_000_000

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str, limit: int = MAX_NAME) -> str:
    """A name as it may be written: printable, valid UTF-8, at most ``limit`` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


@dataclass(frozen=True)
class PyFrame:
    """One Python frame: the function's profile name, its file, the line, its first line."""

    function: str
    filename: str
    line: int
    start_line: int = 0


@dataclass
class StackProfile:
    """Samples keyed by stack (frames leaf first) and string labels; values summed per key.

    Mutable on purpose: a builder that readers feed record by record.
    """

    sample_types: Sequence[tuple[str, str]]
    period_type: tuple[str, str] = ("space", "bytes")
    period: int = 1
    default_sample_type: str = ""
    time_nanos: int = 0
    duration_nanos: int = 0
    comments: list[str] = field(default_factory=list)
    _samples: dict[tuple[tuple[PyFrame, ...], tuple[tuple[str, str], ...]], list[int]] = field(
        default_factory=dict)

    def add(self, frames: Sequence[PyFrame], values: Sequence[int],
            labels: Sequence[tuple[str, str]] = ()) -> None:
        """Add ``values`` (one per sample type) to the sample of this stack and labels."""
        key = (tuple(frames), tuple(labels))
        row = self._samples.get(key)
        if row is None:
            if len(self._samples) >= MAX_SAMPLES:
                raise ValueError(f"more than {MAX_SAMPLES} distinct stacks")
            row = self._samples[key] = [0] * len(self.sample_types)
        for i, v in enumerate(values):
            row[i] += int(v)

    def __len__(self) -> int:
        return len(self._samples)

    def totals(self) -> list[int]:
        out = [0] * len(self.sample_types)
        for row in self._samples.values():
            for i, v in enumerate(row):
                out[i] += v
        return out

    def to_message(self) -> profile_pb2.Profile:
        msg = profile_pb2.Profile()
        strings: dict[str, int] = {"": 0}

        def s(text: str) -> int:
            i = strings.get(text)
            if i is None:
                i = strings[text] = len(strings)
            return i

        for t, u in self.sample_types:
            vt = msg.sample_type.add()
            vt.type, vt.unit = s(t), s(u)
        msg.period_type.type, msg.period_type.unit = s(self.period_type[0]), s(self.period_type[1])
        msg.period = self.period
        msg.time_nanos = self.time_nanos
        msg.duration_nanos = self.duration_nanos
        if self.default_sample_type:
            msg.default_sample_type = s(self.default_sample_type)
        msg.comment.extend(s(clean(c, 4 * MAX_NAME)) for c in self.comments)
        # The run's wall time is its duration, but what is in use is what was live at the
        # end (or at a mark): a level, not growth over the run (memgate.compare).
        msg.comment.append(s(SNAPSHOT_COMMENT))
        functions: dict[tuple[str, str, int], int] = {}
        locations: dict[tuple[int, int], int] = {}
        for (frames, labels), values in self._samples.items():
            if not any(values):
                continue
            ids = []
            for fr in frames:
                fkey = (clean(fr.function), clean(fr.filename, 4 * MAX_NAME), fr.start_line)
                fid = functions.get(fkey)
                if fid is None:
                    fid = functions[fkey] = len(functions) + 1
                    pf = msg.function.add()
                    pf.id = fid
                    pf.name = pf.system_name = s(fkey[0])
                    pf.filename = s(fkey[1])
                    pf.start_line = max(0, fkey[2])
                lkey = (fid, max(0, fr.line))
                lid = locations.get(lkey)
                if lid is None:
                    lid = locations[lkey] = len(locations) + 1
                    pl = msg.location.add()
                    pl.id = lid
                    ln = pl.line.add()
                    ln.function_id, ln.line = lkey
                ids.append(lid)
            ps = msg.sample.add()
            ps.location_id.extend(ids)
            ps.value.extend(values)
            for k, v in labels:
                lab = ps.label.add()
                lab.key, lab.str = s(clean(k)), s(clean(v, 4 * MAX_NAME))
        msg.string_table.extend(t.encode("utf-8") for t in strings)
        return msg

    def encode(self) -> bytes:
        """The gzip-compressed protobuf (``.pb.gz``), as Go writes it."""
        return gzip.compress(self.to_message().SerializeToString(), compresslevel=6, mtime=0)
