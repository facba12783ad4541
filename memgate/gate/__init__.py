"""The gate: a pure function from a comparison and a policy to findings and a verdict.

No I/O happens here (coverage.py's ``should_fail_under`` is the model): everything the gate
needs is in :class:`~memgate.compare.Comparison` and :class:`~memgate.policy.Policy`, and it is
tested with a truth table. The policy is resolved once, before the tests run, into a plan
(:mod:`memgate.gate.plan`); the data flows one way: comparison -> plan -> crossings
(:mod:`~memgate.gate.crossings`) -> significance (:mod:`~memgate.gate.critical`) -> culprits
(:mod:`~memgate.gate.culprits`) -> findings (:mod:`~memgate.gate.findings`) -> verdict
(:mod:`~memgate.gate.verdict`), with the detection floor (:mod:`~memgate.gate.floor`) and the
warnings about the policy (:mod:`~memgate.gate.rule_warnings`) beside them.

For every gated (function, sample type) the first matching rule gives the severity and limits.
Every function's flat and cum, and the total, are tested, so that a leak spread over several
leaves is still seen in their common caller's cum. How the decision is made (docs/noise.md):

1. **Crossings.** A value whose growth crosses its rule's limits (relative and absolute; levels
   in amounts, flows in rates scaled to the comparison's basis) is a crossing.
2. **Significance, family-wise.** A crossing counts when its standardized growth exceeds the
   max-T critical value of all the crossings of that sample type: the 1-alpha quantile of the
   maximum of correlated normals, the correlation coming from the samples the tests share
   (:mod:`memgate.tree`), so that nested cum tests are not counted as independent. With five
   runs or more a side, a rank test of the runs decides instead (Holm-corrected).
3. **Culprits.** Of the significant crossings, the deepest functions (recursion collapsed into
   one) whose growth is not explained by a significant function below them are the findings,
   with the leaves that carry their growth as evidence. A function whose flat grew while its
   cum did not (allocation moved between it and its callees) is reported as moved, never as a
   regression.

Crossings that are not significant are reported as ``~`` (no real change) and never fail.
Every result also states the detection floor: the smallest growth this comparison could have
seen (:class:`DetectionFloor`).
"""

from __future__ import annotations

from memgate.gate.critical import min_rank_p
from memgate.gate.crossings import MIN_RUNS_FOR_RANK_TEST
from memgate.gate.floor import POWER, critical_value, growth_floor
from memgate.gate.plan import Plan, build_plan, gated_type_indices
from memgate.gate.results import (
    TOTAL_FUNCTION,
    DetectionFloor,
    Finding,
    GateResult,
    Kind,
    Verdict,
    verdict_of,
)
from memgate.gate.verdict import evaluate, run_plan

__all__ = [
    "MIN_RUNS_FOR_RANK_TEST",
    "POWER",
    "TOTAL_FUNCTION",
    "DetectionFloor",
    "Finding",
    "GateResult",
    "Kind",
    "Plan",
    "Verdict",
    "build_plan",
    "critical_value",
    "evaluate",
    "gated_type_indices",
    "growth_floor",
    "min_rank_p",
    "run_plan",
    "verdict_of",
]
