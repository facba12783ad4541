"""The one formula for the per-function values the gate compares: value × unit scale ÷ divisor.

A profile's values are in its sample type's unit (``kilobytes`` is 1024 bytes), so they are
first scaled to base units (bytes, objects; :func:`value_scale`). What they are then divided
by depends on the kind of quantity (:mod:`memgate.compare`'s module docstring): a *level*
(in-use values of a snapshot) never, a *flow* by the run's duration, its amount of work or
nothing (the comparison's basis), *growth* (in-use values of a delta profile) by the
profile's own duration. :func:`divisors` decides that for every run and sample type, and
:func:`base_divisors` folds the unit scale in; the gate (:func:`memgate.compare.compare`), the
flame graph (:mod:`memgate.report.flame`) and the manifest summary
(:func:`memgate.baseline.manifest.summarize`) all divide by what these return, so that a
baseline's manifest says what the gate sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from memgate.profile.model import ValueType
from memgate.quantities import unit_scale

__all__ = ["Basis", "QuantityKind", "base_divisors", "divisors", "unit_scales", "value_scale"]

F64 = NDArray[np.float64]

QuantityKind = Literal["level", "flow", "growth"]
Basis = Literal["second", "op", "run"]


def value_scale(unit: str) -> float:
    """Factor from a sample type's unit to base units (kilobytes -> bytes); 1 for non-memory."""
    try:
        return unit_scale(unit)
    except ValueError:
        return 1.0


def unit_scales(types: Sequence[ValueType]) -> F64:
    """:func:`value_scale` of every sample type, in column order."""
    return np.array([value_scale(st.unit) for st in types], dtype=np.float64)


def divisors(
    kinds: Sequence[QuantityKind],
    basis: Basis,
    *,
    durations: Sequence[float | None],
    own_durations: Sequence[float | None],
    works: Sequence[float | None] | None = None,
    normalized: bool = True,
) -> F64:
    """What each run's values of each sample type are divided by, in the profile's own units:
    an array (runs, types).

    ``durations``: each run's resolved duration (flag, store, profile, policy), which flows
    per second are divided by; ``own_durations``: each profile's own ``duration_nanos`` (in
    seconds), which growth is divided by; ``works``: each run's amount of work, which flows
    per op are divided by. Levels, flows per run, and everything when not ``normalized``
    (``--no-normalize``, or a manifest summary without durations) are divided by 1.
    """
    out = np.ones((len(durations), len(kinds)), dtype=np.float64)
    if not normalized:
        return out
    for r in range(len(durations)):
        for t, kind in enumerate(kinds):
            if kind == "growth":
                out[r, t] = own_durations[r] or 1.0
            elif kind == "flow" and basis == "second":
                out[r, t] = durations[r] or 1.0
            elif kind == "flow" and basis == "op":
                out[r, t] = (works[r] if works is not None else None) or 1.0
    return out


def base_divisors(divisors_: F64, scales: F64) -> F64:
    """The divisors of :func:`divisors` for values in the profile's units: a value divided
    by this is in base units per second, per op, per run, or a level in base units."""
    return np.asarray(divisors_ / scales)
