"""The detection floor: the smallest growth one comparison could have told from noise.

Every result states it (:class:`~memgate.gate.results.DetectionFloor`), so that a PASS does
not imply that the gate saw everything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from memgate.compare import Comparison
from memgate.gate.critical import share
from memgate.gate.plan import TypePlan
from memgate.gate.results import DetectionFloor
from memgate.stats import normal_quantile
from memgate.tree import sidak_critical

#: The power at which the detection floor is stated.
POWER = 0.8
#: How many of the largest functions the detection floor names.
FLOOR_TOP = 3
#: The detection floor's critical value is at least that of this many independent tests:
#: max-T over the ~10-20 strongly correlated tests (a function's flat, its callers' cum) that
#: a real growth brings into the family comes to about this.
FLOOR_FAMILY = 4


def _solve_floor(k: float, v0: float, rho: float) -> float:
    """The smallest growth x with x = k * sqrt(v0 + rho * x): the variance of a growth grows
    with it (more samples of the new objects)."""
    a = k * k * rho
    return (a + math.sqrt(a * a + 4 * k * k * v0)) / 2


def critical_value(comparison: Comparison, confidence: float, crit: float = 0.0,
                   gated: Sequence[int] | None = None) -> float:
    """The critical value a detection floor is stated at: the family's (``crit``), and at
    least that of FLOOR_FAMILY independent tests per measurement (of the ``gated`` types;
    default: every memory type)."""
    return max(crit, sidak_critical(FLOOR_FAMILY, (1 - confidence) / share(comparison, gated)))


def _new_growth_variance(comparison: Comparison, t: int) -> float | None:
    """The variance one unit (byte, object) of new growth adds to the candidate's mean:
    the baseline's per-run variance over its total, shared by the candidate's runs."""
    base = comparison.baseline
    vbt = base.mean_variance("total")
    if vbt is None:
        return None
    kb, kc = base.flat_runs.shape[0], comparison.candidate.flat_runs.shape[0]
    btot = float(base.total[t])
    return float(vbt[t]) * kb / kc / btot if btot > 0 else 0.0


def growth_floor(comparison: Comparison, i: int | None, t: int, metric: str, crit: float
                 ) -> float | None:
    """The smallest growth of function ``i``'s ``metric`` (the total when ``i`` is None) in
    sample type ``t`` that this comparison detects with :data:`POWER` at critical value
    ``crit``; None without a noise model. The growth's own sampling noise counts: a function
    that holds more after a leak is measured less precisely."""
    base, cand = comparison.baseline, comparison.candidate
    key = "total" if i is None else metric
    vb = base.mean_variance(key)
    if vb is None:
        return None
    # From the baseline's noise, not the candidate's: what the comparison could see had the
    # candidate been the baseline's build plus a growth (a leak in the candidate must not
    # raise the floor it is measured against). The candidate's runs are as noisy as the
    # baseline's; the growth adds its own sampling noise.
    rho = _new_growth_variance(comparison, t)
    if rho is None:
        return None
    kb, kc = base.flat_runs.shape[0], cand.flat_runs.shape[0]
    own = float(vb[t]) if i is None else float(vb[i, t])
    return _solve_floor(crit + normal_quantile(POWER), own * (1 + kb / kc), rho)


def detection_floor(comparison: Comparison, plan: TypePlan, crit: float, confidence: float
                    ) -> DetectionFloor | None:
    """The detection floor of one gated sample type at critical value ``crit``; None without
    a noise model."""
    basis = plan.basis
    t = basis.t
    base, cand = comparison.baseline, comparison.candidate
    total = growth_floor(comparison, None, t, "flat", crit)
    rho = _new_growth_variance(comparison, t)
    if total is None or rho is None:
        return None
    new = _solve_floor(crit + normal_quantile(POWER), 0.0, rho)
    size = (base.flat[:, t] + cand.flat[:, t]) / 2
    top = []
    for i in np.argsort(-size, kind="stable")[:FLOOR_TOP].tolist():
        if size[i] <= 0:
            break
        value = growth_floor(comparison, i, t, "flat", crit)
        if value is not None:
            top.append((comparison.names[i], value))
    return DetectionFloor(
        sample_type=basis.sample_type, dimension=basis.dim, quantity=basis.quantity,
        per=basis.per, confidence=confidence, power=POWER, new_function=new,
        total=total, top=tuple(top), limit=plan.floor_limit)
