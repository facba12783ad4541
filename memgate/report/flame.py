"""The call tree behind the HTML diff flame graph: both sides' stacks merged, as rates.

A reviewer asks *where* new allocations come from; a function table answers *which function*,
a call tree answers *on which path*. This module merges the stacks of every baseline and
candidate profile into one tree keyed by the path of function names from the root to the
frame, with a baseline and a candidate rate per sample type in every node.

The rules are the table's (:mod:`memgate.table`), so the tree and the report cannot disagree on
what a frame is: every line of a location is a frame (inlined calls expanded), frames are
functions by name, ``drop_frames`` prunes stacks first. Values are compare.py's: each run's
values in base units, levels as they are, flows per second (or per op, per run) through
:mod:`memgate.rates`, averaged over the runs of a side.

Big profiles stay small in the browser: frames narrower than :data:`MIN_FRACTION` of the root
on both sides and in every sample type are folded into one "other" child of their parent, and
the tree is cut to :data:`MAX_NODES` nodes. Building is vectorized: the tree grows one depth
level at a time, and each level is one ``np.unique`` over the samples that reach it, never a
Python loop over samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from memgate.compare import RunInput, quantity_kinds, side_divisors
from memgate.profile.model import Profile, ValueType
from memgate.rates import base_divisors, unit_scales
from memgate.table import _expand, function_frames

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

#: Frames below this fraction of the root (both sides, every sample type) become "other".
MIN_FRACTION = 0.001
#: Most nodes sent to the browser (frames plus "other" nodes): about 2 MB of JSON.
MAX_NODES = 20_000
#: Name index of "other" nodes (and of the root, which has its own flag).
OTHER = -1


@dataclass(frozen=True, eq=False)
class FlameTree:
    """A pruned call tree in preorder (children sorted by name, "other" last).

    ``parent[i] < i`` for every node but the root (node 0, parent -1). ``name[i]`` indexes
    :attr:`names`; :data:`OTHER` marks a node that merges a parent's small children.
    ``baseline`` and ``candidate`` are (n_nodes, n_types) rates: a node's whole width (the
    sum over the samples whose path passes through it).
    """

    sample_types: tuple[ValueType, ...]
    names: tuple[str, ...]
    parent: I64
    name: I64
    baseline: F64
    candidate: F64
    normalized: bool

    def __len__(self) -> int:
        return int(self.parent.shape[0])


def _paths(prof: Profile, name_ids: dict[str, int]) -> tuple[I64, I64]:
    """Every sample's frames as global name ids, leaf first, and per-sample frame offsets."""
    frame_node, nodes, offsets, stack, start, count = function_frames(prof)
    node_name = np.fromiter(
        (name_ids.setdefault(nd.printable_name(), len(name_ids)) for nd in nodes),
        dtype=np.int64, count=len(nodes),
    )
    stack_len = np.diff(offsets).astype(np.int64)
    if (count == 1).all():
        fnode, sample_frames = frame_node[start][stack], stack_len
    else:
        fnode, sample_frames = _expand(stack, stack_len, count, start, frame_node)
    first = np.zeros(sample_frames.size + 1, dtype=np.int64)
    np.cumsum(sample_frames, out=first[1:])
    return node_name[fnode] if fnode.size else np.zeros(0, dtype=np.int64), first


def build_tree(baseline: Sequence[RunInput], candidate: Sequence[RunInput], *,
               normalized: bool = True, min_fraction: float = MIN_FRACTION,
               max_nodes: int = MAX_NODES,
               divisors: tuple[F64 | None, F64 | None] = (None, None)) -> FlameTree:
    """Merge both sides' stacks into one pruned tree of per-second rates (per profile when
    ``normalized`` is False). A side may be empty (a check without baseline): its rates are 0.
    ``divisors`` (baseline, candidate): the comparison's own per-run, per-type divisors
    (:attr:`memgate.compare.SideRates.divisors`), so that levels, flows per second and flows
    per op are the report's numbers; without them each side's are the gate's rule for it
    (:func:`memgate.rates.divisors`: levels as levels, flows and growth per second).
    """
    runs = [*candidate, *baseline]
    if not runs:
        raise ValueError("no profiles")
    types = runs[0].profile.sample_types
    name_ids: dict[str, int] = {}
    stacks = _stacks((baseline, candidate), types, name_ids, normalized, divisors)
    parent, name, value = _grow(stacks, len(name_ids) + 1, min_fraction)
    is_other = name == OTHER
    is_other[0] = False
    keep, other_parent, other_value = _prune_tree(parent, value, is_other, max_nodes)
    return _preorder(
        types, name_ids, parent, name, value, keep, other_parent, other_value, normalized,
    )


@dataclass(frozen=True, eq=False)
class _Stacks:
    """Every sample of both sides in one flat list: sample ``i``'s frames (global name ids,
    leaf first) are ``frames[first[i]:first[i] + depth[i]]``; ``weights`` holds its share of
    each side's mean rate, baseline columns then candidate columns."""

    frames: I64
    first: I64
    depth: I64
    weights: F64


def _stacks(
    sides: tuple[Sequence[RunInput], Sequence[RunInput]],
    types: tuple[ValueType, ...],
    name_ids: dict[str, int],
    normalized: bool,
    divisors: tuple[F64 | None, F64 | None],
) -> _Stacks:
    """The samples of every run of both sides, named through ``name_ids`` (which grows)."""
    nt = len(types)
    scale = unit_scales(types)
    frames: list[I64] = []
    firsts: list[I64] = []
    weights: list[F64] = []
    for side, group in enumerate(sides):
        given = divisors[side]
        if given is None and group:
            # No comparison to take them from (a check without a baseline): the gate's rule
            # for one side, levels as levels, flows and growth per second (memgate.rates).
            given = side_divisors(group, quantity_kinds(group, strict=False),
                                  normalized=normalized)
        for r, run in enumerate(group):
            divisor = given[r] if given is not None else np.ones(nt)
            f, first = _paths(run.profile, name_ids)
            w = np.zeros((first.size - 1, 2 * nt), dtype=np.float64)
            # Each run's share of its side's mean, in base units per divisor.
            w[:, side * nt:(side + 1) * nt] = (
                run.profile.samples.values / (base_divisors(divisor, scale) * len(group))
            )
            frames.append(f)
            firsts.append(first)
            weights.append(w)
    shift = np.cumsum([0] + [f.size for f in frames[:-1]])
    return _Stacks(
        frames=np.concatenate(frames) if frames else np.zeros(0, dtype=np.int64),
        first=np.concatenate([fs[:-1] + s for fs, s in zip(firsts, shift)]),
        depth=np.concatenate([np.diff(fs) for fs in firsts]),
        weights=np.concatenate(weights),
    )


def _grow(stacks: _Stacks, nnames: int, min_fraction: float) -> tuple[I64, I64, F64]:
    """The unpruned tree (parent, name, value per node; node 0 the root), one depth level at
    a time from the root. Frames under ``min_fraction`` of the root fold into an "other" node
    of their parent at once: their samples stop descending, so a profile of a million distinct
    paths costs a few levels of work, not a tree of millions of nodes."""
    fr, wt, depth = stacks.frames, stacks.weights, stacks.depth
    last = stacks.first + depth - 1  # index of each sample's root frame
    root = wt.sum(axis=0)
    denom = np.where(np.abs(root) > 0, np.abs(root), 1.0)
    parents = [np.array([-1], dtype=np.int64)]
    names = [np.array([OTHER], dtype=np.int64)]
    values = [root[None, :]]
    node = np.zeros(depth.size, dtype=np.int64)  # each sample's node at the current level
    active = np.flatnonzero(depth > 0)
    next_id = 1
    level = 0
    while active.size:
        key = node[active] * nnames + fr[last[active] - level]
        uniq, inv = np.unique(key, return_inverse=True)
        inv = inv.reshape(-1)
        vals = _sums(inv, wt[active], uniq.size)
        small = (np.abs(vals) / denom).max(axis=1) < min_fraction if vals.shape[1] else \
            np.zeros(uniq.size, dtype=bool)
        big = ~small
        ids = np.full(uniq.size, -1, dtype=np.int64)
        ids[big] = next_id + np.arange(int(big.sum()))
        next_id += int(big.sum())
        parents.append(uniq[big] // nnames)
        names.append(uniq[big] % nnames)
        values.append(vals[big])
        if small.any():
            other_parent, other_value = _fold(uniq[small] // nnames, vals[small])
            parents.append(other_parent)
            names.append(np.full(other_parent.size, OTHER, dtype=np.int64))
            values.append(other_value)
            next_id += other_parent.size
        node[active] = ids[inv]
        level += 1
        active = active[(ids[inv] >= 0) & (depth[active] > level)]
    return np.concatenate(parents), np.concatenate(names), np.concatenate(values)


def _sums(group: I64, weights: F64, n_groups: int) -> F64:
    """The weights summed by group (``group`` indexes 0..n_groups-1), column by column."""
    out = np.empty((n_groups, weights.shape[1]), dtype=np.float64)
    for c in range(weights.shape[1]):
        out[:, c] = np.bincount(group, weights=weights[:, c], minlength=n_groups)
    return out


def _fold(parent: I64, value: F64) -> tuple[I64, F64]:
    """One "other" node per distinct parent: (its parent, the sum of its frames' values)."""
    other_parent, inv = np.unique(parent, return_inverse=True)
    other_value = np.zeros((other_parent.size, value.shape[1]), dtype=np.float64)
    np.add.at(other_value, inv.reshape(-1), value)
    return other_parent, other_value


def _prune_tree(
    parent: I64, value: F64, is_other: NDArray[np.bool_], max_nodes: int
) -> tuple[NDArray[np.bool_], I64, F64]:
    """Which frames to keep, and the one "other" node (parent, values) of each kept parent.

    A frame's score is its largest share of the root over both sides and all sample types;
    children never outscore their parents, so keeping the top scores keeps the tops of
    subtrees. The lowest-scoring frames are dropped until kept frames plus "other" nodes fit
    ``max_nodes``. The "other" nodes of the build are never kept as such: they merge with any
    newly dropped siblings, so that a parent has at most one.
    """
    n = parent.size
    root = np.abs(value[0])
    share = np.abs(value) / np.where(root > 0, root, 1.0)
    score = share.max(axis=1) if value.shape[1] else np.zeros(n)
    score[0] = np.inf
    score[is_other] = -np.inf
    order = np.argsort(-score, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)

    def select(k: int) -> NDArray[np.bool_]:
        keep = (rank < k) & ~is_other
        keep[0] = True
        while True:  # close the set upwards (ties may rank a child above its parent)
            closed = keep.copy()
            closed[1:] &= keep[parent[1:]]
            if np.array_equal(closed, keep):
                return keep
            keep = closed

    def dropped(keep: NDArray[np.bool_]) -> I64:
        d = np.flatnonzero(~keep)
        return d[keep[parent[d]]]

    def size(keep: NDArray[np.bool_]) -> int:
        return int(keep.sum()) + int(np.unique(parent[dropped(keep)]).size)

    keep = select(n)
    if size(keep) > max_nodes:
        lo, hi = 1, n
        while lo < hi:  # the largest k whose kept frames plus "other" nodes fit
            mid = (lo + hi + 1) // 2
            if size(select(mid)) <= max_nodes:
                lo = mid
            else:
                hi = mid - 1
        keep = select(lo)
    d = dropped(keep)
    other_parent, other_value = _fold(parent[d], value[d])
    return keep, other_parent, other_value


def _preorder(
    types: tuple[ValueType, ...],
    name_ids: dict[str, int],
    parent: I64,
    name: I64,
    value: F64,
    keep: NDArray[np.bool_],
    other_parent: I64,
    other_value: F64,
    normalized: bool,
) -> FlameTree:
    """Lay the kept nodes and "other" nodes out in preorder, children sorted by name."""
    names = tuple(name_ids)
    kept = np.flatnonzero(keep)
    nk = kept.size
    # Working arrays over kept frames (0..nk-1) then "other" nodes (nk..).
    new_of_old = np.full(parent.size, -1, dtype=np.int64)
    new_of_old[kept] = np.arange(nk)
    w_parent = np.concatenate([new_of_old[parent[kept]], new_of_old[other_parent]])
    w_parent[0] = -1  # the root (parent -1 would index the last node)
    w_name = np.concatenate([name[kept], np.full(other_parent.size, OTHER, dtype=np.int64)])
    w_value = np.concatenate([value[kept], other_value])
    children: list[list[int]] = [[] for _ in range(w_parent.size)]
    for i, p in enumerate(w_parent.tolist()):
        if p >= 0:
            children[p].append(i)
    w_names = w_name.tolist()

    def sort_key(i: int) -> tuple[int, str]:
        nm = w_names[i]
        return (1, "") if nm == OTHER else (0, names[nm])

    order: list[int] = []
    stack = [0]
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend(sorted(children[i], key=sort_key, reverse=True))
    idx = np.array(order, dtype=np.int64)
    pos = np.empty(idx.size, dtype=np.int64)
    pos[idx] = np.arange(idx.size)
    out_parent = np.where(w_parent[idx] >= 0, pos[np.maximum(w_parent[idx], 0)], -1)
    nt = len(types)
    v = w_value[idx]
    return FlameTree(
        sample_types=types,
        names=names,
        parent=out_parent.astype(np.int64),
        name=w_name[idx],
        baseline=np.ascontiguousarray(v[:, :nt]),
        candidate=np.ascontiguousarray(v[:, nt:]),
        normalized=normalized,
    )
