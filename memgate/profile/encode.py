"""Encode pprof profiles: the difference of two profiles, as ``go tool pprof -diff_base`` sees it.

``memgate diff BASE NEW --output diff.pb.gz`` writes a profile that any pprof tool opens
(``go tool pprof -top``, ``-http``, speedscope, ...) so that a reviewer can explore the change
with the tools they already know. It is built the way pprof's own ``-diff_base`` builds its
merged profile (internal/driver ``fetchProfiles``): NEW's samples, plus BASE's samples with
every value negated and the string label ``pprof::base=true``, headers combined as
``profile.Merge`` combines them.

The label matters: pprof computes the percentages of a diff against the base's total only
(report ``computeTotal``), and it recognises base samples by that label. With it, ``go tool
pprof -top diff.pb.gz`` prints not only the same per-function numbers as ``-diff_base`` but the
same total and percentages too.

Raw values are kept, never rates: the point of the file is that pprof's numbers match
``-diff_base`` exactly. Samples whose values are all zero are dropped (pprof's Merge does the
same); identical stacks are not merged, which changes no number pprof prints.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from memgate.errors import CompareError
from memgate.profile import profile_pb2
from memgate.profile.model import Profile, describe_types, num_label_unit, type_mismatch

#: The label pprof puts on the samples of a -diff_base profile (profile.go DiffBaseSample).
BASE_LABEL = ("pprof::base", "true")


class _StringTable:
    """Interning string table; index 0 is "" as pprof requires."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.index)
        return i

    def encoded(self) -> list[bytes]:
        # Decoded names with invalid UTF-8 carry backslash escapes (decode.py); re-encoding
        # them as UTF-8 keeps them distinct and readable.
        return [s.encode("utf-8", "surrogateescape") for s in self.index]


def _check(profiles: Sequence[Profile]) -> None:
    """pprof's merge: the same sample types and period type (periods may differ)."""
    first = profiles[0]
    mismatch = type_mismatch(profiles)
    if mismatch is not None:
        raise CompareError(f"cannot diff: {first.source} has sample types "
                           f"[{describe_types(first)}] but {mismatch.source} has "
                           f"[{describe_types(mismatch)}]", source=mismatch.source)
    for other in profiles[1:]:
        if other.period_type != first.period_type:
            raise CompareError(
                f"cannot diff: period types {first.period_type} and {other.period_type} differ",
                source=other.source,
            )


def diff_profile(base: Profile, new: Profile) -> profile_pb2.Profile:
    """The pprof message of NEW minus BASE, as ``pprof -diff_base=BASE NEW`` merges them."""
    return weighted_diff_profile([(base, 1.0)], [(new, 1.0)])


def weighted_diff_profile(base: Sequence[tuple[Profile, Any]],
                          new: Sequence[tuple[Profile, Any]],
                          duration_nanos: int | None = None) -> profile_pb2.Profile:
    """NEW minus BASE for several profiles per side, each profile's values multiplied by its
    weight (and rounded to integers, as pprof values are). A weight is a number, or one per
    sample type (an array), since levels and flows are weighed differently.

    ``memgate check --output`` writes what the gate judged: the mean rate of each side's
    runs. With weights ``D / (runs * duration)`` both sides become amounts over the same
    ``D`` seconds (``duration_nanos``), so pprof's numbers are the gate's rate deltas times D.
    With one profile per side and weight 1 this is exactly :func:`diff_profile`.
    """
    news = [p for p, _ in new]
    bases = [p for p, _ in base]
    _check([*news, *bases])
    msg = profile_pb2.Profile()
    s = _StringTable()
    _merged_header(msg, s, news, bases, duration_nanos)
    # NEW's mappings come first, so that its main binary stays mapping 1 (pprof's "Build ID:"
    # header line); BASE's samples are negated and labelled.
    tables = _SharedTables(msg, s)
    label = (s(BASE_LABEL[0]), s(BASE_LABEL[1]))
    for side, prof, weight in [(0, p, w) for p, w in new] + [(1, p, w) for p, w in base]:
        loc_ids = tables.add_locations(prof)
        _add_samples(msg, s, prof, loc_ids, weight, label if side == 1 else None)
    msg.string_table.extend(s.encoded())
    return msg


def _merged_header(msg: profile_pb2.Profile, s: _StringTable, news: Sequence[Profile],
                   bases: Sequence[Profile], duration_nanos: int | None) -> None:
    """profile.Merge's combineHeaders: the earliest time, summed durations (unless given),
    the larger period, comments and the first non-empty default type / doc URL, frames from
    the first source."""
    first_new, first_base = news[0], bases[0]
    everything = (*news, *bases)
    for st in first_new.sample_types:
        vt = msg.sample_type.add()
        vt.type, vt.unit = s(st.type), s(st.unit)
    msg.period_type.type = s(first_new.period_type.type)
    msg.period_type.unit = s(first_new.period_type.unit)
    time_nanos = 0
    comments: list[str] = []
    for p in everything:
        if time_nanos == 0 or p.time_nanos < time_nanos:
            time_nanos = p.time_nanos
        comments += [c for c in p.comments if c not in comments]
    msg.time_nanos = time_nanos
    msg.duration_nanos = (duration_nanos if duration_nanos is not None else
                          sum(p.duration_nanos for p in everything))
    msg.period = max(p.period for p in everything)
    msg.comment.extend(s(c) for c in comments)
    msg.default_sample_type = s(first_new.default_sample_type or first_base.default_sample_type)
    msg.doc_url = s(first_new.doc_url or first_base.doc_url)
    msg.drop_frames = s(first_new.drop_frames)
    msg.keep_frames = s(first_new.keep_frames)


class _SharedTables:
    """Mappings and functions of several profiles in one message: identical ones are shared
    (they are few); every profile's locations get ids of their own."""

    def __init__(self, msg: profile_pb2.Profile, s: _StringTable) -> None:
        self.msg, self.s = msg, s
        self.mapping_ids: dict[tuple[object, ...], int] = {}
        self.function_ids: dict[tuple[object, ...], int] = {}
        self.next_location = 1

    def _mappings(self, prof: Profile) -> NDArray[np.int64]:
        map_new = np.zeros(len(prof.mappings) + 1, dtype=np.int64)  # index -1 -> id 0
        for i, m in enumerate(prof.mappings):
            key: tuple[object, ...] = (m.file, m.build_id, m.memory_start, m.memory_limit,
                                       m.file_offset, m.has_functions)
            mid = self.mapping_ids.get(key)
            if mid is None:
                mid = self.mapping_ids[key] = len(self.mapping_ids) + 1
                pm = self.msg.mapping.add()
                pm.id = mid
                pm.memory_start, pm.memory_limit = m.memory_start, m.memory_limit
                pm.file_offset = m.file_offset
                pm.filename, pm.build_id = self.s(m.file), self.s(m.build_id)
                pm.has_functions = m.has_functions
            map_new[i] = mid
        return map_new

    def _functions(self, prof: Profile) -> list[int]:
        fn_new: list[int] = []
        for f in prof.functions:
            fkey: tuple[object, ...] = (f.name, f.system_name, f.filename, f.start_line)
            fid = self.function_ids.get(fkey)
            if fid is None:
                fid = self.function_ids[fkey] = len(self.function_ids) + 1
                pf = self.msg.function.add()
                pf.id = fid
                pf.name, pf.system_name = self.s(f.name), self.s(f.system_name)
                pf.filename, pf.start_line = self.s(f.filename), f.start_line
            fn_new.append(fid)
        return fn_new

    def add_locations(self, prof: Profile) -> NDArray[np.int64]:
        """Write ``prof``'s locations (and the mappings and functions they use); return the
        new id of each (ids never collide across profiles)."""
        map_new = self._mappings(prof)
        fn_new = self._functions(prof)
        locs = prof.locations
        nloc = len(locs)
        loc_ids = np.arange(self.next_location, self.next_location + nloc, dtype=np.int64)
        self.next_location += nloc
        addresses = locs.address.tolist()
        mappings = map_new[locs.mapping.astype(np.int64)].tolist()
        line_off = locs.line_offsets.tolist()
        line_fn = locs.line_function.tolist()
        line_no = locs.line_number.tolist()
        line_col = locs.line_column.tolist()
        for i in range(nloc):
            pl = self.msg.location.add()
            pl.id = int(loc_ids[i])
            pl.mapping_id = mappings[i]
            pl.address = addresses[i]
            for j in range(line_off[i], line_off[i + 1]):
                ln = pl.line.add()
                ln.function_id = fn_new[line_fn[j]] if line_fn[j] >= 0 else 0
                ln.line = line_no[j]
                ln.column = line_col[j]
        return loc_ids


def _add_samples(msg: profile_pb2.Profile, s: _StringTable, prof: Profile,
                 loc_ids: NDArray[np.int64], weight: Any,
                 negate_with: tuple[int, int] | None) -> None:
    """``prof``'s non-zero samples times ``weight`` (rounded), with their numeric labels;
    negated and labelled ``negate_with`` (key, value string ids) for the base side."""
    samp = prof.samples
    values = samp.values
    if np.any(np.asarray(weight) != 1.0):
        values = np.rint(values * weight).astype(np.int64)
    if negate_with is not None:
        values = -values
    keep = np.flatnonzero((values != 0).any(axis=1))
    offsets = samp.offsets.tolist()
    stack_ids = loc_ids[samp.locations.astype(np.int64)].tolist()
    value_rows = values.tolist()
    num_keys = [(s(k), samp.num_labels[k].tolist(), samp.num_label_units.get(k, ""), k)
                for k in sorted(samp.num_labels)]
    units = {k: s(u) if u != num_label_unit(k, "") else 0 for _, _, u, k in num_keys}
    for i in keep.tolist():
        ps = msg.sample.add()
        ps.location_id.extend(stack_ids[offsets[i]:offsets[i + 1]])
        ps.value.extend(value_rows[i])
        for kidx, nums, _, kname in num_keys:
            if nums[i]:
                lab = ps.label.add()
                lab.key, lab.num = kidx, nums[i]
                if units[kname]:
                    lab.num_unit = units[kname]
        if negate_with is not None:
            lab = ps.label.add()
            lab.key, lab.str = negate_with


def encode_gzip(msg: profile_pb2.Profile) -> bytes:
    """Serialize and gzip a profile the way Go writes them (``.pb.gz``)."""
    return gzip.compress(msg.SerializeToString(), compresslevel=6, mtime=0)
