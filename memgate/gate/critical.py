"""Significance, family-wise: max-T critical values, the rank test's Holm procedure, p-values.

A crossing counts when its standardized growth exceeds the max-T critical value of all the
crossings of its sample type: the 1-alpha quantile of the maximum of correlated normals, the
correlation coming from the samples the tests share (:mod:`memgate.tree`), so that nested cum
tests are not counted as independent. With five runs or more a side, a rank test of the runs
decides instead (Holm-corrected).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from memgate.compare import Comparison
from memgate.gate.crossings import Draft
from memgate.quantities import dimension_of_unit
from memgate.stats import normal_sf
from memgate.tree import Overlap, max_t_critical, sidak_critical


def position(ov: Overlap | None, i: int | None) -> int | None:
    """Where function ``i`` is among the overlap's functions; None if it was not followed."""
    if ov is None or i is None:
        return None
    try:
        return ov.functions.index(i)
    except ValueError:
        return None


def _test_index(ov: Overlap, d: Draft) -> int | None:
    m = len(ov.functions)
    if d.i is None:
        return 2 * m
    p = position(ov, d.i)
    if p is None:
        return None
    return p if d.metric == "cum" else m + p


def critical(drafts: Sequence[Draft], ov: Overlap | None, alphas: Sequence[float]
             ) -> dict[float, float]:
    """Max-T critical values for the drafts that have a noise model (Šidák without the
    overlap: tests treated as independent, which is conservative)."""
    tested = [d for d in drafts if d.se is not None and d.se > 0]
    if not tested:
        return {a: 0.0 for a in alphas}
    if ov is not None:
        idx = [_test_index(ov, d) for d in tested]
        if all(x is not None for x in idx):
            sel = np.array(sorted(set(x for x in idx if x is not None)))
            cov = ov.cov[np.ix_(sel, sel)]
            sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
            ok = sd > 0
            if ok.all():
                corr = cov / np.outer(sd, sd)
                return max_t_critical(corr, alphas)
    # Without the samples: a function's flat lies inside its cum (one test's worth); distinct
    # functions count as independent.
    m = len({d.i for d in tested})
    return {a: sidak_critical(m, a) for a in alphas}


def min_rank_p(kb: int, kc: int) -> float:
    """The smallest one-sided p-value a rank test of kb against kc runs can give."""
    return 1.0 / math.comb(kb + kc, kb)


def holm_rank(drafts: Sequence[Draft], kb: int, kc: int) -> dict[int, bool] | None:
    """Holm over rank-test p-values when every tested draft has one and the rank test can
    reach the levels the family needs (with ``m`` tests, a rank test of kb vs kc runs must
    be able to give p < alpha/m); None otherwise. Keyed by ``id`` of the draft."""
    tested = [d for d in drafts if d.se is not None or d.rank_p is not None]
    if not tested or any(d.rank_p is None for d in tested):
        return None
    m = len(tested)
    alpha = min(1 - d.rule.confidence for d in tested)
    if not min_rank_p(kb, kc) < alpha / m:
        return None
    order = sorted(tested, key=lambda d: d.rank_p or 0.0)
    out: dict[int, bool] = {id(d): False for d in tested}
    for j, d in enumerate(order):
        assert d.rank_p is not None
        if d.rank_p < (1 - d.rule.confidence) / (m - j):
            out[id(d)] = True
        else:
            break
    return out


def share(comparison: Comparison, gated: Sequence[int] | None = None) -> float:
    """How many measurements the family's alpha is split between (see
    :func:`memgate.gate.verdict.evaluate`)."""
    types = comparison.sample_types
    idx = range(len(types)) if gated is None else gated
    return float(len({_measurement(types[t].type) for t in idx
                      if dimension_of_unit(types[t].unit) is not None}) or 1)


def _measurement(sample_type: str) -> str:
    """``inuse_space`` and ``inuse_objects`` -> ``inuse``; ``space``/``objects`` -> ``""``."""
    for suffix in ("space", "objects"):
        if sample_type.endswith(suffix):
            return sample_type[: -len(suffix)].rstrip("_")
    return sample_type


def p_value(d: Draft, rank: dict[int, bool] | None) -> float | None:
    """The rank test's p-value when it decided, else the normal test's; None when exact."""
    if rank is not None and d.rank_p is not None:
        return d.rank_p
    if d.se is None:
        return None
    return normal_sf(d.z) if math.isfinite(d.z) else (0.0 if d.z > 0 else 1.0)
