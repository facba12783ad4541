"""Where the tests of one comparison overlap: the call tree, seen through shared samples.

Every number the gate tests is a sum over samples: a function's flat sums the samples it is
the leaf of, its cum the samples whose stack contains it, the total all of them. Two tests
that share samples share their sampling noise, and nested cum tests (``main.main`` over
``json.Unmarshal`` over ``literalStore``) share most of it. Two facts follow from the shared
samples, and the gate needs both:

* the **covariance** of the tests' deltas under the sampling model (the sum of the shared
  samples' variances), from which the max-T critical value of the whole family comes
  (:func:`max_t_critical`): tests that move together count as fewer than their number;
* the **containment** of one function's cum in another's (the value of the shared samples):
  ``g`` lies under ``f`` when nearly all of ``g``'s cum is also ``f``'s. Mutual containment is
  recursion (``objectInterface`` ↔ ``valueInterface`` ↔ ``arrayInterface``), which the gate
  treats as one function.

Only the functions the gate asks about are followed, and samples are grouped by which of them
their stacks contain, so the work is one pass over the stacks plus small dense matrices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from memgate.compare import Comparison
from memgate.parallel import parallel_map
from memgate.profile.model import Profile
from memgate.rates import value_scale
from memgate.stats import normal_quantile, sampling_variance
from memgate.table import function_frames

F64 = NDArray[np.float64]

#: Past this many (group x test) cells the dense matrices would cost more than they help; the
#: gate then treats the tests as independent (Šidák), which is conservative.
MAX_CELLS = 20_000_000
#: Past this many tracked frames in one profile's stacks (a huge profile with many crossing
#: functions) the walk stops and the gate treats the tests as independent (Šidák).
MAX_FRAMES = 6_000_000
#: Draws of the null distribution of the maximum. The 99th percentile of a maximum from
#: 20,000 draws is within about ±0.03 of its value in z units.
DRAWS = 20_000
#: ``g`` lies under ``f`` when at least this share of ``g``'s cum is in ``f``'s.
CONTAINED = 0.95


@dataclass(frozen=True, eq=False)
class Overlap:
    """The tests of ``functions`` (indices into the comparison's names) for one sample type.

    Test order: cum of each function, flat of each function, then the total.
    """

    functions: tuple[int, ...]
    #: (2m+1, 2m+1) covariance of the deltas (candidate mean minus baseline mean).
    cov: F64
    #: (m, m) shared cum value of each side's mean: ``[f, g]`` is the value in both f's and
    #: g's cum, ``[g, g]`` g's own cum.
    shared_b: F64
    shared_c: F64
    #: (m, m) ``reach[f, g]``: f calls g, directly or through other functions, in some stack.
    reach: NDArray[np.bool_]

    @property
    def shared(self) -> F64:
        return np.asarray(self.shared_b + self.shared_c)

    def contains(self, a: int, b: int) -> bool:
        """Whether the cum of function ``b`` (a position in ``functions``) lies in ``a``'s."""
        own = self.shared[b, b]
        return bool(own > 0 and self.shared[a, b] >= CONTAINED * own)

    def recursive(self, a: int, b: int) -> bool:
        """Whether ``a`` and ``b`` call each other (one strongly connected component)."""
        return bool(self.reach[a, b] and self.reach[b, a])

    def shared_growth(self, a: int, b: int) -> float:
        """How much of ``b``'s cum growth happened inside ``a``'s cum."""
        return float(self.shared_c[a, b] - self.shared_b[a, b])


@dataclass(frozen=True, eq=False)
class _Groups:
    """One profile's samples grouped by which tracked functions their stacks hold."""

    #: (G, m) the group's samples have the function in their stack / as their leaf.
    cum: NDArray[np.bool_]
    flat: NDArray[np.bool_]
    #: Group of every sample.
    inverse: NDArray[np.int64]
    #: (m, m) caller -> callee edges between tracked functions (through untracked frames).
    calls: NDArray[np.bool_]


def _groups(prof: Profile, positions: dict[str, int]) -> _Groups | None:
    """Group one profile's samples by the tracked functions their stacks hold.

    Only locations with a tracked frame are expanded into frames, so the work is one gather
    over the stacks plus the tracked frames, however deep or inlined the rest is.
    """
    m = max(len(positions), 1)
    frame_node, nodes, offsets, stack, start, count = function_frames(prof)
    pos_of_node = np.full(len(nodes), -1, dtype=np.int64)
    for k, nd in enumerate(nodes):
        p = positions.get(nd.printable_name())
        if p is not None:
            pos_of_node[k] = p
    # Per location: its tracked frames, innermost first (most locations have none).
    frame_loc = np.repeat(np.arange(len(count), dtype=np.int64), count)
    frame_idx = np.arange(int(count.sum()), dtype=np.int64) + np.repeat(
        start - np.concatenate(([0], np.cumsum(count)[:-1])), count)
    frame_pos = pos_of_node[frame_node[frame_idx]] if frame_idx.size else frame_idx
    keep = frame_pos >= 0
    tracked_loc, tracked_pos = frame_loc[keep], frame_pos[keep]
    per_loc = np.bincount(tracked_loc, minlength=len(count))
    loc_first = np.zeros(len(count) + 1, dtype=np.int64)
    np.cumsum(per_loc, out=loc_first[1:])
    n = len(offsets) - 1
    st = stack[offsets[0]:offsets[-1]].astype(np.int64)
    entry_sample = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
    hit = per_loc[st] > 0
    hs, hl = entry_sample[hit], st[hit]
    reps = per_loc[hl]
    fs = np.repeat(hs, reps)
    within = np.arange(int(reps.sum()), dtype=np.int64) - np.repeat(
        np.concatenate(([0], np.cumsum(reps)[:-1])), reps)
    fpos = tracked_pos[np.repeat(loc_first[hl], reps) + within]
    if fs.size > MAX_FRAMES:
        return None  # bounded work: the gate falls back to independent tests
    pairs = np.sort(fs * m + fpos)
    if pairs.size:
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    ps, pf = pairs // m, pairs % m
    # The leaf: the innermost frame of each sample's first location, if it is tracked.
    leaf = np.full(n, -1, dtype=np.int64)
    nonempty = np.flatnonzero(np.diff(offsets) > 0)
    first_loc = st[offsets[nonempty] - offsets[0]] if nonempty.size else nonempty
    leaf[nonempty] = pos_of_node[frame_node[start[first_loc]]] if nonempty.size else -1
    # A set hash per sample: XOR of random keys of the distinct tracked functions it holds.
    rng = np.random.default_rng(0x6D656D67)
    kc = rng.integers(1, 2**63 - 1, size=m, dtype=np.int64).view(np.uint64)
    kl = rng.integers(1, 2**63 - 1, size=m, dtype=np.int64).view(np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    if ps.size:
        # The pairs are sorted by sample: one XOR reduction per sample.
        starts = np.flatnonzero(np.concatenate(([True], ps[1:] != ps[:-1])))
        h[ps[starts]] = np.bitwise_xor.reduceat(kc[pf], starts)
    lf = leaf >= 0
    h[lf] ^= kl[leaf[lf]]
    inv, g = _group_ids(h)
    if g * (2 * m + 1) > MAX_CELLS:
        return None  # bounded work: the gate falls back to independent tests
    cum = np.zeros((g, m), dtype=bool)
    cum[inv[ps], pf] = True
    flat = np.zeros((g, m), dtype=bool)
    flat[inv[lf], leaf[lf]] = True
    # Calls: consecutive tracked frames of one stack, the outer one calling the inner one.
    same = fs[1:] == fs[:-1]
    callee, caller = fpos[:-1][same], fpos[1:][same]
    calls = np.zeros((m, m), dtype=bool)
    calls[caller, callee] = True
    np.fill_diagonal(calls, False)
    k = len(positions)
    return _Groups(cum[:, :k], flat[:, :k], inv.astype(np.int64), calls[:k, :k])


def _group_ids(h: NDArray[np.uint64]) -> tuple[NDArray[np.int64], int]:
    """Dense ids of equal values (by sorting: numpy's hash-based unique is slow here)."""
    if h.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    order = np.argsort(h, kind="stable")
    sorted_h = h[order]
    new = np.concatenate(([True], sorted_h[1:] != sorted_h[:-1]))
    ids = np.cumsum(new) - 1
    inv = np.empty(h.size, dtype=np.int64)
    inv[order] = ids
    return inv, int(ids[-1]) + 1


def overlaps(comparison: Comparison, types: Sequence[int], functions: Sequence[int]
             ) -> dict[int, Overlap] | None:
    """The covariance and containment of ``functions``' tests for each sample type in
    ``types``; None when the comparison does not carry its profiles (values built by hand)
    or the work would be unbounded. One walk over each profile's stacks serves every type."""
    functions = tuple(dict.fromkeys(functions))
    m = len(functions)
    positions = {comparison.names[i]: p for p, i in enumerate(functions)}
    out = {t: (np.zeros((2 * m + 1, 2 * m + 1)), np.zeros((m, m)), np.zeros((m, m)))
           for t in types}
    calls = np.zeros((m, m), dtype=bool)
    sides = (comparison.baseline, comparison.candidate)
    if any(len(side.runs) == 0 or len(side.runs) != side.flat_runs.shape[0]
           or side.divisors is None for side in sides):
        return None
    # The profiles' stacks are walked in parallel (numpy releases the GIL).
    walked = iter(parallel_map(lambda run: _groups(run.profile, positions),
                               [run for side in sides for run in side.runs]))
    for which, side in enumerate(sides):
        k = len(side.runs)
        for r, run in enumerate(side.runs):
            prof = run.profile
            groups = next(walked)
            if groups is None:
                return None
            g = groups.cum.shape[0]
            calls |= groups.calls
            a = np.concatenate([groups.cum, groups.flat, np.ones((g, 1), dtype=bool)],
                               axis=1).astype(np.float64)
            cf = groups.cum.astype(np.float64)
            var_all = sampling_variance(prof)
            for t in types:
                scale = value_scale(comparison.sample_types[t].unit)
                raw = np.abs(prof.samples.values[:, t].astype(np.float64)) * scale
                # The comparison's own divisor of this run and type (duration, work, 1).
                assert side.divisors is not None
                divisor = float(side.divisors[r, t])
                value = np.bincount(groups.inverse, weights=raw, minlength=g)
                cov, shared_b, shared_c = out[t]
                shared = shared_c if which else shared_b
                if var_all is not None:
                    var = np.bincount(groups.inverse, weights=var_all[:, t] * scale * scale,
                                      minlength=g)
                    w = var / (divisor * divisor * k * k)
                    cov += (a * w[:, None]).T @ a
                shared += (cf * (value / (divisor * k))[:, None]).T @ cf
    reach = calls.copy()
    for _ in range(max(1, int(math.ceil(math.log2(max(m, 2))))) + 1):
        nxt = reach | ((reach.astype(np.int32) @ reach.astype(np.int32)) > 0)
        if (nxt == reach).all():
            break
        reach = nxt
    return {t: Overlap(functions, cov, sb, sc, reach) for t, (cov, sb, sc) in out.items()}


def max_t_critical(corr: F64, alphas: Sequence[float]) -> dict[float, float]:
    """The one-sided critical values of the maximum of standard normals with correlation
    ``corr``: P(max Z > c) = alpha for each alpha. Simulated with a fixed seed, so the same
    comparison always gets the same verdict."""
    m = corr.shape[0]
    if m == 0:
        return {a: math.inf for a in alphas}
    vals, vecs = np.linalg.eigh((corr + corr.T) / 2)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    rng = np.random.default_rng(0x4D617854)
    maxima = np.empty(DRAWS, dtype=np.float64)
    step = max(1, 4_000_000 // max(m, 1))
    for lo in range(0, DRAWS, step):
        hi = min(DRAWS, lo + step)
        z = rng.standard_normal((hi - lo, m)) @ root.T
        maxima[lo:hi] = z.max(axis=1)
    return {a: float(np.quantile(maxima, 1.0 - a)) for a in alphas}


def sidak_critical(m: int, alpha: float) -> float:
    """The critical value for ``m`` independent one-sided tests at family-wise ``alpha``."""
    if m <= 0:
        return math.inf
    per_test = 1.0 - (1.0 - alpha) ** (1.0 / m)
    return normal_quantile(1.0 - per_test)
