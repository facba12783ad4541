"""What the gate decides: findings, detection floors, the verdict, and their order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from memgate.quantities import Dimension

Verdict = Literal["pass", "warn", "fail"]
Kind = Literal["increase", "ceiling", "new", "moved"]

TOTAL_FUNCTION = "<total>"


@dataclass(frozen=True)
class Finding:
    """One limit crossing for one function (or the total) and sample type."""

    rule: str
    function: str
    sample_type: str
    dimension: Dimension
    metric: Literal["flat", "cum"]
    severity: Literal["fail", "warn"]
    kind: Kind
    baseline_rate: float
    candidate_rate: float
    delta_rate: float
    delta_pct: float | None
    #: The limits that were crossed, as written in the policy ("20% and 1MiB/min").
    limit: str
    #: False: the crossing is within sampling noise at the rule's confidence; shown as "~".
    significant: bool
    p_value: float | None
    #: Half-width of the two-sided confidence interval of ``delta_rate`` (None: exact).
    interval: float | None
    confidence: float
    message: str
    #: level, flow or growth (:func:`memgate.compare.quantity_kind`).
    quantity: str = "flow"
    #: The values' denominator (:meth:`Comparison.per`): "" for a level, "s", "op", "run".
    per: str = "s"
    #: Functions collapsed into this one because they call each other (recursion).
    members: tuple[str, ...] = ()
    #: The leaves under this function that carry its growth: (name, share of the delta).
    evidence: tuple[tuple[str, float], ...] = ()
    #: For a function with findings below it: the part of its growth they do not explain.
    remainder: float | None = None


@dataclass(frozen=True)
class DetectionFloor:
    """The smallest growth one comparison could have told from sampling noise.

    At the policy's confidence (family-wise, the same critical value the gate used) and
    :data:`memgate.gate.floor.POWER`, in the sample type's units (``per`` as in
    :class:`Finding`). A growth below it may pass unseen: the report says so rather than
    implying that a PASS saw everything.
    """

    sample_type: str
    dimension: Dimension
    quantity: str
    per: str
    confidence: float
    power: float
    #: A function that holds (or allocates) nothing on the baseline grows by this much.
    new_function: float
    #: The whole profile's total.
    total: float
    #: The largest functions: (name, smallest growth of its flat value).
    top: tuple[tuple[str, float], ...]
    #: The policy's smallest absolute limit for this sample type (None: no absolute limit).
    limit: float | None


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    #: Significant crossings (these decide the verdict).
    findings: tuple[Finding, ...]
    #: Crossings within noise: reported as "~", never failing.
    within_noise: tuple[Finding, ...]
    #: Indices (into Comparison.sample_types) of the sample types the policy gates.
    gated: tuple[int, ...]
    #: Allocation that moved between a function and its callees: shown, never failing.
    moved: tuple[Finding, ...] = ()
    #: Per gated sample type with a noise model: what this comparison could have seen.
    floors: tuple[DetectionFloor, ...] = ()
    #: What the user should know about the comparison itself (dead rules, fixed work).
    warnings: tuple[str, ...] = field(default=())


def verdict_of(findings: Sequence[Finding]) -> Verdict:
    """fail if any fail finding; warn if any warn finding; else pass."""
    if any(f.severity == "fail" for f in findings):
        return "fail"
    if findings:
        return "warn"
    return "pass"


def finding_order(f: Finding, order: dict[str, int]
                  ) -> tuple[int, int, int, int, int, int, float, str]:
    """Failing first, totals first, then memory (bytes) before counts, what is held (levels,
    growth) before what flows, the gated sample types in ``order`` (by name), the functions
    that explain their growth before their callers with a remainder, the largest growth
    first."""
    return (
        0 if f.severity == "fail" else 1,
        0 if f.function == TOTAL_FUNCTION else 1,
        0 if f.dimension == "bytes" else 1,
        1 if f.quantity == "flow" else 0,
        order.get(f.sample_type, 0),
        0 if f.remainder is None else 1,
        -f.delta_rate,
        f.function,
    )
