"""Per-node flat and cum for every sample type at once, computed as ``go tool pprof`` does.

The numbers must be the ones people already trust, so the rules are pprof's
(internal/graph ``newGraph`` and ``CreateNodes``, profile ``Aggregate`` and ``Prune``):

* every line of a location is a frame; ``line[0]`` is the innermost (inlined) one, and a
  location without lines is one frame named after its binary (or ``<unknown>``);
* the node of a frame is its ``NodeInfo`` after aggregation to the chosen granularity, so at
  function granularity all functions with the same name are one node;
* flat goes to the leaf frame of a sample (``location_id[0]``, its ``line[0]``);
* cum goes to every node in the stack, once per sample however often it appears (recursion);
* the total is the sum of |value| over all samples;
* ``drop_frames``/``keep_frames`` prune stacks first (``RemoveUninteresting``).

Everything is vectorized with numpy: the only Python loops run over distinct locations, lines
and depth classes, never over samples.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from memgate import regex, speedups
from memgate.parallel import parallel_map
from memgate.profile.model import Profile, ValueType

I64 = NDArray[np.int64]

GRANULARITIES = ("functions", "filefunctions", "lines", "addresses")

#: float64 sums are exact below 2**53; above it the slower integer path is used.
_EXACT_FLOAT = float(2**53)


@dataclass(frozen=True)
class NodeInfo:
    """What identifies a node, as pprof's graph.NodeInfo."""

    name: str = ""
    address: int = 0
    file: str = ""
    start_line: int = 0
    line: int = 0
    column: int = 0
    objfile: str = ""

    def printable_name(self) -> str:
        """pprof's ``NodeInfo.PrintableName``."""
        parts: list[str] = []
        if self.address:
            parts.append(f"{self.address:016x}")
        if self.name:
            parts.append(self.name)
        if self.line:
            s = f"{self.file}:{self.line}"
            if self.column:
                s += f":{self.column}"
            parts.append(s)
        elif self.file:
            parts.append(self.file)
        elif self.name:
            pass
        elif self.objfile:
            parts.append("[" + posixpath.basename(self.objfile) + "]")
        else:
            parts.append("<unknown>")
        return " ".join(parts)


@dataclass(frozen=True, eq=False)
class Table:
    """Per-node flat and cum values, one column per sample type.

    ``flat[i, t]`` and ``cum[i, t]`` belong to ``nodes[i]``; only nodes with a non-zero value in
    some sample type are present. ``total[t]`` is pprof's total (sum of |value| of all samples).
    """

    source: str
    granularity: str
    sample_types: tuple[ValueType, ...]
    nodes: tuple[NodeInfo, ...]
    names: tuple[str, ...]
    flat: I64
    cum: I64
    total: I64
    #: Sums of the optional per-sample ``extra`` weights given to :func:`aggregate` (float64,
    #: one column per extra weight), aggregated exactly like the values; None if not asked.
    flat_extra: NDArray[np.float64] | None = None
    cum_extra: NDArray[np.float64] | None = None

    def type_index(self, name: str) -> int:
        for i, st in enumerate(self.sample_types):
            if st.type == name:
                return i
        raise KeyError(name)


def _go_clean(path: str) -> str:
    """Go's filepath.Clean for slash paths."""
    if path == "":
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _frames(prof: Profile, granularity: str) -> tuple[I64, I64, list[NodeInfo]]:
    """Frames of every location and their node ids.

    Returns ``(frame_offsets, frame_node, nodes)``: location i's frames (innermost first) are
    ``frame_node[frame_offsets[i]:frame_offsets[i+1]]``.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}")
    frame_offsets, raw = _frame_keys(prof, granularity)
    uniq, inverse = np.unique(raw, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    uniq_node, nodes = _node_infos(prof, uniq.tolist(), granularity)
    frame_node = uniq_node[inverse] if raw.shape[0] else np.zeros(0, dtype=np.int64)
    return frame_offsets, frame_node, nodes


def _frame_keys(prof: Profile, granularity: str) -> tuple[I64, I64]:
    """Per frame, what identifies its node at ``granularity`` (function index or -1, line,
    column, address, mapping index) as rows of one int64 matrix, and the per-location frame
    offsets. A location without lines is one frame with function -1."""
    locs = prof.locations
    nloc = len(locs)
    nlines = np.diff(locs.line_offsets)
    nframes = np.maximum(nlines, 1)
    frame_offsets = np.zeros(nloc + 1, dtype=np.int64)
    np.cumsum(nframes, out=frame_offsets[1:])
    nf = int(frame_offsets[-1])

    loc_of_frame = np.repeat(np.arange(nloc, dtype=np.int64), nframes)
    has_lines = nlines[loc_of_frame] > 0
    # index into the line arrays for frames that are real lines
    line_idx = (
        np.arange(nf, dtype=np.int64)
        - frame_offsets[loc_of_frame]
        + locs.line_offsets[loc_of_frame]
    )
    func = np.full(nf, -1, dtype=np.int64)
    lineno = np.zeros(nf, dtype=np.int64)
    column = np.zeros(nf, dtype=np.int64)
    if locs.line_function.size:
        li = line_idx[has_lines]
        func[has_lines] = locs.line_function[li]
        lineno[has_lines] = locs.line_number[li]
        column[has_lines] = locs.line_column[li]

    keep_addr = granularity == "addresses"
    if granularity not in ("lines", "addresses"):
        lineno[:] = 0
    if not keep_addr:
        column[:] = 0  # pprof shows columns only with -show_columns or at address granularity
    address = (
        locs.address.astype(np.int64)[loc_of_frame] if keep_addr else np.zeros(nf, dtype=np.int64)
    )
    mapping = locs.mapping.astype(np.int64)[loc_of_frame]
    return frame_offsets, np.stack([func, lineno, column, address, mapping], axis=1)


def _node_infos(prof: Profile, keys: list[list[int]], granularity: str
                ) -> tuple[I64, list[NodeInfo]]:
    """The node of each distinct frame key (``_frame_keys`` rows), as pprof's ``NodeInfo``;
    keys that give the same NodeInfo (same function name) share one node."""
    keep_file = granularity in ("filefunctions", "lines", "addresses")
    funcs = prof.functions
    maps = prof.mappings
    node_ids: dict[NodeInfo, int] = {}
    nodes: list[NodeInfo] = []
    uniq_node = np.empty(len(keys), dtype=np.int64)
    for k, (fi, ln, col, addr, mi) in enumerate(keys):
        objfile = maps[mi].file if mi >= 0 else ""
        addr_u = addr & 0xFFFFFFFFFFFFFFFF
        if fi < 0:
            info = NodeInfo(address=addr_u, objfile=objfile)
        else:
            f = funcs[fi]
            fname = f.filename if keep_file else ""
            file = _go_clean(fname) if fname else ""
            if f.name:
                info = NodeInfo(name=f.name, address=addr_u, file=file, line=ln, column=col)
            else:
                info = NodeInfo(name="", address=addr_u, file=file, line=ln, column=col,
                                objfile=objfile, start_line=f.start_line)
        nid = node_ids.get(info)
        if nid is None:
            nid = len(nodes)
            node_ids[info] = nid
            nodes.append(info)
        uniq_node[k] = nid
    return uniq_node, nodes


def _frame_starts(frame_offsets: I64, skip: I64 | None) -> I64:
    """Where each location's frames start once ``skip`` leading (inner) lines are pruned."""
    start = frame_offsets[:-1]
    if skip is not None:
        start = start + np.minimum(skip, np.diff(frame_offsets) - 1)
    return start


def function_frames(prof: Profile) -> tuple[I64, list[NodeInfo], I64, NDArray[np.int32], I64, I64]:
    """Function-granularity frames after drop_frames/keep_frames, for walks over the stacks
    other than :func:`aggregate` (the call-tree overlap, the flame graph).

    Returns ``(frame_node, nodes, offsets, stack, start, count)``: sample ``s`` holds the
    locations ``stack[offsets[s]:offsets[s + 1]]`` (leaf first), and location ``i``'s frames
    are ``frame_node[start[i]:start[i] + count[i]]`` (innermost first).
    """
    frame_offsets, frame_node, nodes = _frames(prof, "functions")
    offsets, stack, skip = _prune(prof)
    start = _frame_starts(frame_offsets, skip)
    return frame_node, nodes, offsets, stack, start, frame_offsets[1:] - start


def _prune(prof: Profile) -> tuple[I64, NDArray[np.int32], I64 | None]:
    """Apply drop_frames/keep_frames like pprof's ``Profile.Prune``.

    Returns new sample (offsets, locations) and, when some locations lose inner lines, a
    per-location count of leading lines to skip (else None).
    """
    s = prof.samples
    if not prof.drop_frames:
        return s.offsets, s.locations, None
    # RE2, as pprof (Go's regexp): linear time, whatever the profile's pattern (memgate/regex.py).
    try:
        drop = regex.compile("^(" + prof.drop_frames + ")$")
        keep = regex.compile("^(" + prof.keep_frames + ")$") if prof.keep_frames else None
    except regex.RegexError:
        # pprof ignores a drop_frames expression it cannot compile.
        return s.offsets, s.locations, None
    prune, beneath, skip = _marked_locations(prof, drop, keep)
    if not (prune.any() or beneath.any()):
        return s.offsets, s.locations, None
    offsets, stack = _cut_stacks(s.offsets, s.locations, prune, beneath)
    return offsets, stack, (skip if skip.any() else None)


def _marked_locations(prof: Profile, drop: regex.Pattern, keep: regex.Pattern | None
                      ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], I64]:
    """Per location: pruned entirely, pruned beneath it (it holds a dropped or kept line),
    and how many leading (inner) lines it loses; pprof's ``Prune`` location pass."""
    locs = prof.locations
    nloc = len(locs)
    prune = np.zeros(nloc, dtype=bool)
    beneath = np.zeros(nloc, dtype=bool)
    skip = np.zeros(nloc, dtype=np.int64)
    cache: dict[str, bool] = {}
    keep_cache: dict[str, bool] = {}
    for li in range(nloc):
        a, b = int(locs.line_offsets[li]), int(locs.line_offsets[li + 1])
        found = -1
        for i in range(b - 1, a - 1, -1):
            fi = int(locs.line_function[i])
            name = prof.functions[fi].name if fi >= 0 else ""
            if not name:
                continue
            fname = _simplify_func(name)
            if keep is not None:
                kept = keep_cache.get(fname)
                if kept is None:
                    kept = keep_cache[fname] = regex.fullmatch(keep, fname)
                if kept:
                    found = i
                    break
            hit = cache.get(fname)
            if hit is None:
                hit = cache[fname] = regex.fullmatch(drop, fname)
            if hit:
                prune[li] = True
                found = i
                break
        if found >= 0:
            beneath[li] = True
            if found == b - 1:
                prune[li] = True
            else:
                skip[li] = found + 1 - a
    return prune, beneath, skip


def _cut_stacks(offsets: I64, stack: NDArray[np.int32], prune: NDArray[np.bool_],
                beneath: NDArray[np.bool_]) -> tuple[I64, NDArray[np.int32]]:
    """Cut each sample's stack above its outermost user frame at the first pruned location
    (dropping it) or the first location pruned beneath (keeping it), as pprof's ``Prune``."""
    n = offsets.size - 1
    marked = prune | beneath
    hit_samples = np.unique(np.repeat(np.arange(n), np.diff(offsets))[marked[stack]])
    new_stacks: dict[int, NDArray[np.int32]] = {}
    for si in hit_samples.tolist():
        st = stack[offsets[si] : offsets[si + 1]]
        found_user = False
        for i in range(st.size - 1, -1, -1):
            lid = int(st[i])
            if not marked[lid]:
                found_user = True
                continue
            if not found_user:
                continue
            new_stacks[si] = st[i + 1 :] if prune[lid] else st[i:]
            break
    if not new_stacks:
        return offsets, stack
    lengths = np.diff(offsets).copy()
    for si, st in new_stacks.items():
        lengths[si] = st.size
    new_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    parts = []
    prev = 0
    for si in sorted(new_stacks):
        parts.append(stack[offsets[prev] : offsets[si]])
        parts.append(new_stacks[si])
        prev = si + 1
    parts.append(stack[offsets[prev] :])
    return new_offsets, np.concatenate(parts).astype(np.int32)


_RESERVED = ("(anonymous namespace)", "operator()")
_BRACKET_RX = re.compile("|".join(re.escape(x) for x in (*_RESERVED, "(")))


def _simplify_func(name: str) -> str:
    """pprof's ``simplifyFunc`` (prune.go): cut the argument list at the first '('."""
    name = name[1:] if name.startswith(".") else name
    for m in _BRACKET_RX.finditer(name):
        if m.group(0) not in _RESERVED:
            return name[: m.start()]
    return name


#: Stack entries aggregated per chunk of samples: temporaries stay small (below glibc's mmap
#: threshold) and are reused from chunk to chunk, so memory does not grow with the profile.
CHUNK_ENTRIES = 1 << 20


def aggregate(
    prof: Profile,
    granularity: str = "functions",
    extra: NDArray[np.float64] | None = None,
    types: Sequence[int] | None = None,
) -> Table:
    """Compute flat and cum per node for every sample type of ``prof`` (or only ``types``).

    ``extra`` (n_samples, k) are further per-sample weights summed the same way (the noise
    model passes per-sample sampling variances, which add up over the samples of a node).
    Samples are processed in chunks; flat and cum are sums over samples, so the chunks'
    partial sums add up to the whole.
    """
    frame_offsets, frame_node, nodes = _frames(prof, granularity)
    offsets, stack, skip = _prune(prof)
    values = prof.samples.values
    sample_types = prof.sample_types
    if types is not None:
        # `top` shows one sample type: aggregating only that one does a quarter of the work.
        values = values[:, list(types)]
        sample_types = tuple(sample_types[t] for t in types)
    start = _frame_starts(frame_offsets, skip)
    work = _Stacks(offsets=offsets, stack=stack, frame_start=start,
                   frame_count=frame_offsets[1:] - start, frame_node=frame_node,
                   values=values, extra=extra, nnodes=len(nodes))
    ntypes = values.shape[1]
    nextra = extra.shape[1] if extra is not None else 0
    flat = np.zeros((work.nnodes, ntypes), dtype=np.int64)
    cum = np.zeros((work.nnodes, ntypes), dtype=np.int64)
    flat_x = np.zeros((work.nnodes, nextra), dtype=np.float64)
    cum_x = np.zeros((work.nnodes, nextra), dtype=np.float64)
    bounds = _chunk_bounds(offsets, values.shape[0])
    # Partial sums of independent chunks, on all cores (numpy releases the GIL).
    for part_flat, part_cum, part_fx, part_cx in parallel_map(
            work.chunk, list(zip(bounds[:-1], bounds[1:]))):
        flat += part_flat
        cum += part_cum
        if part_fx is not None and part_cx is not None:
            flat_x += part_fx
            cum_x += part_cx

    total = np.abs(values).sum(axis=0) if values.shape[0] else np.zeros(ntypes, dtype=np.int64)
    kept = np.flatnonzero((flat != 0).any(axis=1) | (cum != 0).any(axis=1))
    kept_nodes = tuple(nodes[i] for i in kept.tolist())
    return Table(
        source=prof.source,
        granularity=granularity,
        sample_types=sample_types,
        nodes=kept_nodes,
        names=tuple(nd.printable_name() for nd in kept_nodes),
        flat=flat[kept],
        cum=cum[kept],
        total=total.astype(np.int64),
        flat_extra=flat_x[kept] if extra is not None else None,
        cum_extra=cum_x[kept] if extra is not None else None,
    )


def _chunk_bounds(offsets: I64, n: int) -> list[int]:
    """Sample indices that cut the samples into chunks of about CHUNK_ENTRIES stack entries
    (whole samples; a sample longer than that is a chunk of its own)."""
    bounds = [0]
    while bounds[-1] < n:
        lo = bounds[-1]
        hi = int(np.searchsorted(offsets, offsets[lo] + CHUNK_ENTRIES, side="right")) - 1
        bounds.append(min(max(hi, lo + 1), n))
    return bounds


_Sums = tuple[I64, I64, NDArray[np.float64] | None, NDArray[np.float64] | None]


@dataclass(frozen=True, eq=False)
class _Stacks:
    """The pruned stacks of a profile, resolved to nodes, and the weights to sum over them."""

    offsets: I64
    stack: NDArray[np.int32]
    frame_start: I64
    frame_count: I64
    frame_node: I64
    values: I64
    extra: NDArray[np.float64] | None
    nnodes: int

    @cached_property
    def loc_node(self) -> I64 | None:
        """Each location's node when every location is one frame (no inlining), so that a
        stack entry is a frame; else None. Computed once for all chunks."""
        if (self.frame_count == 1).all():
            return np.asarray(self.frame_node[self.frame_start])
        return None

    def chunk(self, bounds: tuple[int, int]) -> _Sums:
        """Flat and cum sums (and those of ``extra``) over the samples ``lo:hi``: by the
        optional C loop when it is built, else with numpy."""
        c_loops = speedups.module()
        if c_loops is not None:
            lo, hi = bounds
            ntypes = self.values.shape[1]
            nextra = self.extra.shape[1] if self.extra is not None else 0
            f = np.zeros((self.nnodes, ntypes), dtype=np.int64)
            c = np.zeros((self.nnodes, ntypes), dtype=np.int64)
            fx = np.zeros((self.nnodes, nextra), dtype=np.float64)
            cx = np.zeros((self.nnodes, nextra), dtype=np.float64)
            ex = (np.ascontiguousarray(self.extra[lo:hi]) if self.extra is not None
                  else np.zeros(0, dtype=np.float64))
            status = c_loops.aggregate(
                np.ascontiguousarray(self.offsets[lo:hi + 1], dtype=np.int64),
                np.ascontiguousarray(self.stack, dtype=np.int32),
                np.ascontiguousarray(self.frame_start, dtype=np.int64),
                np.ascontiguousarray(self.frame_count, dtype=np.int64),
                np.ascontiguousarray(self.frame_node, dtype=np.int64),
                np.ascontiguousarray(self.values[lo:hi], dtype=np.int64), ntypes, ex, nextra,
                self.nnodes, f, c, fx, cx)
            if status >= 0:
                has_x = self.extra is not None
                return f, c, (fx if has_x else None), (cx if has_x else None)
        return self._chunk_numpy(bounds)

    def _chunk_numpy(self, bounds: tuple[int, int]) -> _Sums:
        """The same sums with numpy: flat to each sample's leaf frame, cum once per distinct
        (sample, node) pair (pprof's per-sample dedupe)."""
        lo, hi = bounds
        offsets, nnodes = self.offsets, self.nnodes
        st = self.stack[offsets[lo]:offsets[hi]]
        stack_len = np.diff(offsets[lo:hi + 1])
        if self.loc_node is not None:
            fnode = self.loc_node[st]
            sample_frames = stack_len
        else:
            fnode, sample_frames = _expand(st, stack_len, self.frame_count, self.frame_start,
                                           self.frame_node)
        sample_first = np.zeros(hi - lo + 1, dtype=np.int64)
        np.cumsum(sample_frames, out=sample_first[1:])
        fsample = np.repeat(np.arange(hi - lo, dtype=np.int64), sample_frames)
        vals = self.values[lo:hi]
        # Flat: the first frame of the first location of each non-empty sample.
        nonempty = sample_frames > 0
        leaf = fnode[sample_first[:-1][nonempty]]
        # Cum: each (sample, node) pair once.
        usample, unode = _unique_pairs(fsample, fnode, sample_frames, sample_first, nnodes)
        fx = cx = None
        if self.extra is not None:
            ex = self.extra[lo:hi]
            fx = _fsum_by(leaf, ex[nonempty], nnodes)
            cx = _fsum_by(unode, ex[usample], nnodes)
        return (_sum_by(leaf, vals[nonempty], nnodes), _sum_by(unode, vals[usample], nnodes),
                fx, cx)


def _expand(
    st: NDArray[np.int32], stack_len: I64, frame_count: I64, frame_start: I64, frame_node: I64
) -> tuple[I64, I64]:
    """Every sample's frames (leaf first) when locations hold several (inlined) frames."""
    n = stack_len.size
    entry_sample = np.repeat(np.arange(n, dtype=np.int64), stack_len)
    per_entry = frame_count[st]
    total = int(per_entry.sum())
    entry_first = np.zeros(st.size + 1, dtype=np.int64)
    np.cumsum(per_entry, out=entry_first[1:])
    fidx = np.arange(total, dtype=np.int64) + np.repeat(
        frame_start[st] - entry_first[:-1], per_entry
    )
    sample_frames = np.bincount(entry_sample, weights=per_entry, minlength=n).astype(np.int64)
    return frame_node[fidx], sample_frames


def _fsum_by(keys: I64, weights: NDArray[np.float64], nbins: int) -> NDArray[np.float64]:
    out = np.zeros((nbins, weights.shape[1]), dtype=np.float64)
    for t in range(weights.shape[1]):
        if keys.size:
            out[:, t] = np.bincount(keys, weights=weights[:, t], minlength=nbins)
    return out


def _sum_by(keys: I64, weights: I64, nbins: int) -> I64:
    """Per-key sums of each weight column, exact in int64."""
    ncols = weights.shape[1]
    out = np.zeros((nbins, ncols), dtype=np.int64)
    if keys.size == 0:
        return out
    for t in range(ncols):
        w = weights[:, t]
        if float(np.abs(w).sum(dtype=np.float64)) < _EXACT_FLOAT:
            out[:, t] = np.rint(np.bincount(keys, weights=w, minlength=nbins)).astype(np.int64)
        else:
            np.add.at(out[:, t], keys, w)
    return out


def _unique_pairs(
    fsample: I64, fnode: I64, sample_frames: I64, sample_first: I64, nnodes: int
) -> tuple[I64, I64]:
    """The distinct (sample, node) pairs among all frames.

    Samples are grouped by stack depth class (powers of two); within a class each sample's
    nodes form one row of a matrix that is sorted row-wise, so duplicates are neighbours.
    """
    if fsample.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    depth_class = np.zeros(sample_frames.size, dtype=np.int64)
    nz = sample_frames > 0
    depth_class[nz] = np.ceil(np.log2(sample_frames[nz])).astype(np.int64)
    fclass = depth_class[fsample]
    col = np.arange(fsample.size, dtype=np.int64) - sample_first[fsample]
    out_s: list[I64] = []
    out_n: list[I64] = []
    sentinel = nnodes
    # The smallest integer type that holds every node id: row sorts on 2-byte values are
    # several times faster than on 8-byte ones.
    dtype = np.int16 if nnodes < 2**15 - 1 else np.int32
    any_duplicate = False
    for c in np.unique(depth_class[nz]).tolist():
        samples_c = np.flatnonzero(nz & (depth_class == c))
        width = int(sample_frames[samples_c].max())
        if width == 1:
            out_s.append(samples_c)
            out_n.append(fnode[sample_first[samples_c]])
            continue
        row_of = np.full(sample_frames.size, -1, dtype=np.int64)
        row_of[samples_c] = np.arange(samples_c.size)
        m = fclass == c
        mat = np.full((samples_c.size, width), sentinel, dtype=dtype)
        mat[row_of[fsample[m]], col[m]] = fnode[m]
        mat.sort(axis=1)
        valid = mat != sentinel
        valid[:, 1:] &= mat[:, 1:] != mat[:, :-1]
        rows, cols = np.nonzero(valid)
        any_duplicate |= rows.size != int(np.count_nonzero(m))
        out_s.append(samples_c[rows])
        out_n.append(mat[rows, cols].astype(np.int64))
    if not any_duplicate:
        # No stack repeats a node (no recursion): every frame is its own pair.
        return fsample, fnode
    return np.concatenate(out_s), np.concatenate(out_n)
