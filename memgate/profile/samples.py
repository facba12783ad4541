"""The samples of a protobuf profile, decoded in bulk: stacks, values and numeric labels.

Samples are most of a profile's bytes; the protobuf runtime would build one Python-visible
message per sample. Their raw bytes are decoded here instead, chunk by chunk and in parallel,
with the optional C loop or the numpy wire decoder (:mod:`memgate.profile.wire`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import numpy as np

from memgate import speedups
from memgate.errors import ProfileError
from memgate.parallel import parallel_map
from memgate.profile import profile_pb2
from memgate.profile.model import Locations, Samples, num_label_unit
from memgate.profile.wire import (
    Fields,
    NotTokenizable,
    TokenFields,
    Tokens,
    WireError,
    repeated_varints,
    token_field_values,
    tokenize,
    walk_messages,
    walk_tokens,
)


class Strings:
    """The string table, decoded leniently, with checked lookups."""

    def __init__(self, raw: Iterable[bytes], source: str) -> None:
        # pprof accepts invalid UTF-8; a backslash escape keeps distinct names distinct and
        # printable (and pprof's own output, decoded the same way, compares equal).
        self.table = [b.decode("utf-8", "backslashreplace") for b in raw]
        self.source = source

    def __len__(self) -> int:
        return len(self.table)

    def get(self, index: int, what: str) -> str:
        if index < 0 or index >= len(self.table):
            raise ProfileError(
                f"{what} refers to string index {index}, but the string table has "
                f"{len(self.table)} entries",
                source=self.source,
                slug="bad-string-index",
            )
        return self.table[index]


#: Sample bytes decoded per chunk. Every temporary array of a chunk stays below glibc's mmap
#: threshold (32 MiB), so memory freed by one chunk is reused by the next instead of being
#: returned to the kernel and faulted in again: on a VM a page fault costs more than the
#: arithmetic. It also bounds the decoder's memory by the chunk, not by the profile.
CHUNK_BYTES = 2 << 20


def decode_samples(
    msg: profile_pb2.ProfileRaw,
    n_types: int,
    locations: Locations,
    strings: Strings,
    source: str,
    on_progress: Callable[[float], None] | None = None,
) -> Samples:
    """Decode every sample, chunk by chunk; ``on_progress`` hears the fraction done."""
    raw = msg.sample
    n = len(raw)
    if n == 0:
        return Samples(
            values=np.zeros((0, n_types), dtype=np.int64),
            offsets=np.zeros(1, dtype=np.int64),
            locations=np.zeros(0, dtype=np.int32),
        )
    lengths = np.fromiter(map(len, raw), dtype=np.int64, count=n)
    csum = np.cumsum(lengths)
    resolve = _LocationResolver(locations.ids, source)
    # Chunk boundaries fall between samples: each chunk holds about CHUNK_BYTES of samples.
    bounds = [0]
    while bounds[-1] < n:
        lo = bounds[-1]
        base = int(csum[lo - 1]) if lo else 0
        bounds.append(max(int(np.searchsorted(csum, base + CHUNK_BYTES, side="right")), lo + 1))

    done = [0]
    done_lock = threading.Lock()

    def chunk(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Labels | None]:
        lo, hi = bounds[k], bounds[k + 1]
        loc_ids, loc_off, vals, val_off, labels = _decode_chunk(
            b"".join(raw[lo:hi]), lengths[lo:hi], source, lo, n_types
        )
        bad = np.flatnonzero(np.diff(val_off) != n_types)
        if bad.size:
            i = int(bad[0])
            raise ProfileError(
                f"sample {lo + i} has {int(val_off[i + 1] - val_off[i])} values but the "
                f"profile has {n_types} sample types",
                source=source,
                slug="value-count",
            )
        if labels is not None:
            labels = (labels[0] + lo, labels[1])
        if on_progress is not None:
            with done_lock:
                done[0] += hi - lo
                on_progress(done[0] / n)
        return (vals.view(np.int64).reshape(hi - lo, n_types), resolve(loc_ids),
                np.diff(loc_off), labels)

    # Chunks are independent: decode them on all cores (numpy releases the GIL).
    parts = parallel_map(chunk, range(len(bounds) - 1))
    values = [pt[0] for pt in parts]
    stacks = [pt[1] for pt in parts]
    counts = [pt[2] for pt in parts]
    label_parts = [pt[3] for pt in parts if pt[3] is not None]
    del parts
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=offsets[1:])
    labels_all = None
    if label_parts:
        labels_all = (
            np.concatenate([o for o, _ in label_parts]),
            {f: np.concatenate([c[f] for _, c in label_parts]) for f in (1, 2, 3, 4)},
        )
    num_labels, num_units = _num_labels(labels_all, n, strings)
    return Samples(
        values=np.concatenate(values) if len(values) > 1 else values[0],
        offsets=offsets,
        locations=np.concatenate(stacks) if len(stacks) > 1 else stacks[0],
        num_labels=num_labels,
        num_label_units=num_units,
    )


_Labels = tuple[np.ndarray, dict[int, np.ndarray]]


def _decode_chunk_c(
    joined: bytes, lengths: np.ndarray, n_types: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, _Labels | None] | None:
    """The chunk decoded by the optional C loop, or None (no extension, or anything unusual:
    the numpy paths then decode it and name any problem precisely)."""
    c = speedups.module()
    if c is None:
        return None
    n = lengths.size
    loc_ids = np.empty(len(joined), dtype=np.uint64)  # each id takes at least one byte
    counts = np.empty(n, dtype=np.int64)
    vals = np.empty(n * n_types, dtype=np.uint64)
    labels = np.empty((len(joined) // 4 + 1, 5), dtype=np.int64)  # a label takes >= 4 bytes
    nlab = c.decode_samples(joined, np.ascontiguousarray(lengths, dtype=np.int64), n_types,
                            loc_ids, counts, vals, labels)
    if nlab < 0:
        return None
    loc_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=loc_off[1:])
    val_off = np.arange(n + 1, dtype=np.int64) * n_types
    cols = None
    if nlab:
        lab = labels[:nlab]
        cols = (lab[:, 0].copy(), {f: lab[:, f].copy() for f in (1, 2, 3, 4)})
    return loc_ids[: loc_off[-1]].copy(), loc_off, vals, val_off, cols


def _decode_chunk(
    joined: bytes, lengths: np.ndarray, source: str, first_sample: int, n_types: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, _Labels | None]:
    """Decode the concatenated bodies of a run of samples: locations, values, labels (CSR)."""
    n = lengths.size
    fast = _decode_chunk_c(joined, lengths, n_types)
    if fast is not None:
        return fast
    ends = np.cumsum(lengths)
    starts = ends - lengths
    try:
        # Fast path: every byte of a Sample is part of a varint (Go, pprof and most producers).
        buf = np.frombuffer(joined, dtype=np.uint8)
        tok = tokenize(buf, len(joined))
        if not tok.ends_at(ends[lengths > 0]).all():
            raise NotTokenizable("a sample does not end on a varint")
        first = tok.before[starts].astype(np.int64)
        stop = tok.before[ends].astype(np.int64)
        tf = walk_tokens(tok, first, stop, ends)
        loc_ids, loc_off = token_field_values(tok, tf, 1, n)
        vals, val_off = token_field_values(tok, tf, 2, n)
        labels = _label_columns_tokens(tok, tf)
    except NotTokenizable:
        # General path: walk the bytes field by field (fixed-width or bytes fields, damage).
        buf = np.frombuffer(joined + bytes(16), dtype=np.uint8)
        try:
            fields = walk_messages(buf, starts, ends)
            loc_ids, loc_off = repeated_varints(buf, fields, 1, n)
            vals, val_off = repeated_varints(buf, fields, 2, n)
        except WireError as e:
            raise ProfileError(
                f"malformed sample (in samples {first_sample}..{first_sample + n - 1}): {e}",
                source=source,
                slug="protobuf-invalid",
            ) from None
        labels = _label_columns_generic(buf, fields, source)
    return loc_ids, loc_off, vals, val_off, labels


class _LocationResolver:
    """Maps location ids of the file to indices, refusing ids that do not exist."""

    def __init__(self, known: np.ndarray, source: str) -> None:
        self.source = source
        self.known = known
        self.table: np.ndarray | None = None
        if known.size:
            max_id = int(known.max())
            if max_id <= 4 * known.size + 1024:
                # Ids are small (Go numbers them 1..n): one table lookup per stack entry.
                self.table = np.full(max_id + 2, -1, dtype=np.int32)
                self.table[known.astype(np.int64)] = np.arange(known.size, dtype=np.int32)
            else:
                self.order = np.argsort(known)
                self.sorted_ids = known[self.order]

    def _missing(self, loc_id: int) -> ProfileError:
        where = ", which does not exist" if self.known.size else \
            ", but the profile has no locations"
        return ProfileError(
            f"a sample references location id {loc_id}{where}",
            source=self.source,
            slug="unresolved-location",
        )

    def __call__(self, loc_ids: np.ndarray) -> np.ndarray:
        if loc_ids.size == 0:
            return np.zeros(0, dtype=np.int32)
        if not self.known.size:
            raise self._missing(int(loc_ids[0]))
        if self.table is not None:
            limit = np.uint64(self.table.size - 1)
            idx: np.ndarray = self.table[np.minimum(loc_ids, limit).astype(np.intp)]
            if (idx < 0).any():
                raise self._missing(int(loc_ids[idx < 0][0]))
            return idx
        pos = np.searchsorted(self.sorted_ids, loc_ids)
        pos_c = np.minimum(pos, self.sorted_ids.size - 1)
        ok = self.sorted_ids[pos_c] == loc_ids
        if not ok.all():
            raise self._missing(int(loc_ids[~ok][0]))
        return np.asarray(self.order[pos_c], dtype=np.int32)


def _label_columns_generic(
    buf: np.ndarray, fields: Fields, source: str
) -> tuple[np.ndarray, dict[int, np.ndarray]] | None:
    """(owner sample, {field number: column}) of every label, from the byte-level walk."""
    sel = fields.field == 3
    if not sel.any():
        return None
    if (fields.wire_type[sel] != 2).any():
        raise ProfileError(
            "malformed sample: label is not a message", source=source, slug="protobuf-invalid"
        )
    owner = fields.msg[sel]
    try:
        lf = walk_messages(buf, fields.value[sel].astype(np.int64), fields.end[sel])
    except WireError as e:
        raise ProfileError(
            f"malformed label: {e}", source=source, slug="protobuf-invalid"
        ) from None
    cols = {}
    for fno in (1, 2, 3, 4):
        m = lf.field == fno
        if ((lf.wire_type[m]) != 0).any():
            raise ProfileError("malformed label field", source=source, slug="protobuf-invalid")
        col = np.zeros(owner.size, dtype=np.int64)
        # Singular proto3 fields: the last occurrence wins; fields are in wire order.
        col[lf.msg[m]] = lf.value[m].view(np.int64)
        cols[fno] = col
    return owner, cols


def _label_columns_tokens(
    tok: Tokens, tf: TokenFields
) -> tuple[np.ndarray, dict[int, np.ndarray]] | None:
    """The same from the token walk (raises NotTokenizable where the fast path ends)."""
    sel = np.flatnonzero(tf.field == 3)
    if not sel.size:
        return None
    if (tf.wire_type[sel] != 2).any():
        raise NotTokenizable("label is not a message")
    owner = tf.msg[sel]
    lo, hi = tf.lo[sel], tf.hi[sel]
    byte_end = np.where(hi > lo, tok.ends[np.maximum(hi - 1, 0)] + 1, 0)
    lf = walk_tokens(tok, lo, hi, byte_end)
    cols = {}
    for fno in (1, 2, 3, 4):
        m = lf.field == fno
        if (lf.wire_type[m] != 0).any():
            raise NotTokenizable("label field is not a varint")
        col = np.zeros(owner.size, dtype=np.int64)
        col[lf.msg[m]] = tok.values[lf.lo[m]].view(np.int64)
        cols[fno] = col
    return owner, cols


def _first_per_owner(owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(owners, return_index=True)``, in linear time when ``owners`` is sorted.

    Labels are decoded in sample order, so it is; a sort (n log n) would cost more than the
    rest of the label handling on a profile of millions of samples.
    """
    if owners.size and not bool(np.all(owners[1:] >= owners[:-1])):
        return np.unique(owners, return_index=True)
    starts = np.flatnonzero(np.diff(owners, prepend=-1))
    return owners[starts], starts


def _num_labels(
    labels: tuple[np.ndarray, dict[int, np.ndarray]] | None, n: int, strings: Strings
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Numeric labels by key: the first value per sample, and pprof's unit for each key."""
    if labels is None:
        return {}, {}
    owner, cols = labels
    key, sval, num, unit = cols[1], cols[2], cols[3], cols[4]
    nstr = len(strings)
    for arr, what in ((key, "label key"), (sval, "label value"), (unit, "label unit")):
        bad = (arr < 0) | (arr >= nstr)
        if bad.any():
            strings.get(int(arr[bad][0]), what)
    # pprof: a string label if str != 0; numeric only if num != 0 or num_unit != 0.
    numeric = (sval == 0) & ((num != 0) | (unit != 0))
    out: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for k in np.unique(key[numeric]):
        m = numeric & (key == k)
        name = strings.table[int(k)]
        first_samples, first_idx = _first_per_owner(owner[m])
        arr = np.zeros(n, dtype=np.int64)
        arr[first_samples] = num[m][first_idx]
        out[name] = arr
        unit_codes = unit[m]
        nz = unit_codes[unit_codes != 0]
        explicit = strings.table[int(nz[0])] if nz.size else ""
        units[name] = num_label_unit(name, explicit)
    return out, units
