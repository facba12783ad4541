"""Sampling noise of heap profiles, and the tests that tell noise from change.

Go (and Node, tcmalloc, ...) sample allocations with a Poisson process over allocated bytes:
an object of size ``s`` is recorded with probability ``p = 1 - exp(-s/R)`` (``R`` the profile's
period, 512 KiB by default) and the runtime scales the recorded count back up by ``1/p``. A
function's numbers are therefore estimates with a known variance (binomial thinning, see
``docs/noise.md``):

* objects: ``Var(N) = N (1 - p) / p``;
* bytes:   ``Var(B) = s * B * (1 - p) / p``  (every object of one sample has size ``s``).

Variances of independent samples add, so a function's variance is the sum over the samples
that make up its flat or cum, computed by the same aggregation as the values
(:func:`memgate.table.aggregate` with ``extra``). Unsampled profiles (period <= 1) have
variance 0, and the model then reduces to exact comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Final

import numpy as np
from numpy.typing import NDArray

from memgate.profile.model import Profile

F64 = NDArray[np.float64]

#: Count/byte sample-type pairs whose ratio is the object size of a sample.
_PAIRS = {
    "alloc_objects": "alloc_space",
    "inuse_objects": "inuse_space",
    "objects": "space",
    "alloc-samples": "alloc-space",
}


def _is_bytes(unit: str) -> bool:
    return unit.lower() in ("bytes", "byte", "b")


def sampling_model_applies(prof: Profile) -> bool:
    """The byte-sampling model describes profiles sampled by allocated bytes."""
    return prof.period > 1 and _is_bytes(prof.period_type.unit)


def sampling_variance(prof: Profile) -> F64 | None:
    """Per-sample variance of each value (n_samples, n_types), or None without a model.

    None means: this profile is not sampled by bytes (a CPU profile, a count profile), so
    memgate has no sampling model for it and compares its numbers as exact.
    """
    values = prof.samples.values
    n, nt = values.shape
    if prof.period <= 1:
        return np.zeros((n, nt), dtype=np.float64)
    if not sampling_model_applies(prof):
        return None
    rate = float(prof.period)
    names = prof.sample_type_names()
    units = [st.unit for st in prof.sample_types]
    v = np.abs(values.astype(np.float64))
    label = prof.samples.num_labels.get("bytes")
    out = np.zeros((n, nt), dtype=np.float64)
    index = {name: i for i, name in enumerate(names)}
    size_by_pair: dict[int, F64] = {}
    for count_name, bytes_name in _PAIRS.items():
        ci, bi = index.get(count_name), index.get(bytes_name)
        if ci is None or bi is None:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            size = np.where(v[:, ci] > 0, v[:, bi] / np.maximum(v[:, ci], 1.0), 0.0)
        if label is not None:
            size = np.where(label > 0, label.astype(np.float64), size)
        size_by_pair[ci] = size
        size_by_pair[bi] = size
    for t in range(nt):
        pair_size = size_by_pair.get(t)
        if pair_size is None:
            if _is_bytes(units[t]):
                # No object size known: the small-object limit, Var(B) ~ B * R, an upper
                # bound of s * B * (1 - p) / p.
                out[:, t] = v[:, t] * rate
            continue
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            p = -np.expm1(-pair_size / rate)
            odds = np.where(p > 0, (1.0 - p) / p, 0.0)
        if _is_bytes(units[t]):
            out[:, t] = pair_size * v[:, t] * odds
        else:
            out[:, t] = v[:, t] * odds
    return out


#: The standard normal distribution (the standard library's; exact to double precision).
STANDARD_NORMAL: Final = NormalDist()


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z.

    ``math.erfc`` rather than ``NormalDist().cdf(-z)``: Python 3.11's ``cdf`` computes
    ``0.5 * (1 + erf(x))``, which cancels in the far tail where the gate's p-values live
    (``cdf(-7.6)`` is off by 0.1%); ``erfc`` keeps full relative precision there.
    """
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def normal_quantile(q: float) -> float:
    """The z with P(Z <= z) = q; :class:`ValueError` (``StatisticsError``) outside (0, 1)."""
    return STANDARD_NORMAL.inv_cdf(q)


def mann_whitney_p(xs: Sequence[float], ys: Sequence[float]) -> float:
    """One-sided p-value that ``ys`` tend to be larger than ``xs`` (Mann-Whitney U).

    Exact by enumeration of the U distribution for small samples (the sizes memgate sees:
    a handful of runs per side), with ties given half weight, as benchstat does.
    """
    m, n = len(xs), len(ys)
    if m == 0 or n == 0:
        return 1.0
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)[:, None]
    u = float(np.count_nonzero(y > x)) + 0.5 * float(np.count_nonzero(y == x))
    # Distribution of U under H0 without ties: count permutations by DP.
    # f[i][j][k]: number of arrangements of i xs and j ys with U = k.
    maxu = m * n
    prev = [[0] * (maxu + 1) for _ in range(n + 1)]
    prev[0][0] = 1
    for j in range(1, n + 1):
        prev[j][0] = 1
    for i in range(1, m + 1):
        cur = [[0] * (maxu + 1) for _ in range(n + 1)]
        cur[0][0] = 1
        for j in range(1, n + 1):
            for k in range(maxu + 1):
                # the largest element is an x (adds nothing) or a y (adds i to U)
                total = cur[j - 1][k - i] if k >= i else 0
                total += prev[j][k]
                cur[j][k] = total
        prev = cur
    counts = prev[n]
    denom = float(sum(counts))
    threshold = u - 1e-9
    return sum(c for k, c in enumerate(counts) if k >= threshold) / denom
