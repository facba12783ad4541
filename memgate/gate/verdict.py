"""The gate's run: from a comparison and its plan to findings and a verdict.

The family is every test of every gated sample type: each type's max-T critical value is
taken at alpha / (number of measurements) (Bonferroni across them, whose tests are correlated
too, so this is on the safe side). The bytes and the objects of one kind (inuse_space and
inuse_objects) are one measurement: every sample's bytes are its object size times its count,
so their tests move together.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from memgate.compare import Comparison
from memgate.gate.critical import critical, holm_rank, p_value, share
from memgate.gate.crossings import Draft, crossings
from memgate.gate.culprits import culprits
from memgate.gate.findings import make_finding, rank_note
from memgate.gate.floor import critical_value, detection_floor
from memgate.gate.plan import Basis, Plan, TypePlan, build_plan
from memgate.gate.results import (
    TOTAL_FUNCTION,
    DetectionFloor,
    Finding,
    GateResult,
    finding_order,
    verdict_of,
)
from memgate.gate.rule_warnings import plan_warnings
from memgate.policy import Policy
from memgate.tree import Overlap, overlaps

#: A function's flat growth is "moved" when its cum grew by less than this share of it:
#: the allocation came from its callees (or went to them), the subtree did not grow.
MOVED_SHARE = 0.5
#: At most this many crossing functions are followed through the stacks (see :func:`_track`).
MAX_TRACKED = 160
#: Under this many leaves with positive flat growth are tracked as evidence per type.
EVIDENCE_TRACKED = 24


@dataclass
class _Outcome:
    findings: list[Finding] = field(default_factory=list)
    noise: list[Finding] = field(default_factory=list)
    moved: list[Finding] = field(default_factory=list)
    floors: list[DetectionFloor] = field(default_factory=list)


@dataclass(frozen=True)
class _Decision:
    """One type's significance: critical values by alpha, the rank test's decisions (by
    ``id`` of the draft; None when the normal test decides), and which drafts count."""

    crit: dict[float, float]
    rank: dict[int, bool] | None
    sig: dict[int, bool]


def evaluate(comparison: Comparison, policy: Policy, time_unit: str = "s") -> GateResult:
    """Apply ``policy`` to ``comparison``. Pure: same inputs, same result, no I/O."""
    return run_plan(comparison, build_plan(comparison, policy), time_unit)


def run_plan(comparison: Comparison, plan: Plan, time_unit: str = "s") -> GateResult:
    """Judge ``comparison`` by ``plan`` (built from it by :func:`build_plan`)."""
    drafts = {tp.basis.t: crossings(comparison, tp, plan.absent) for tp in plan.types}
    ovs = _track(comparison, plan, drafts)
    outcome = _Outcome()
    fam_share = share(comparison, plan.gated)
    for tp in plan.types:
        t = tp.basis.t
        _judge(comparison, plan, tp, drafts[t], None if ovs is None else ovs.get(t),
               fam_share, time_unit, outcome)
    first: dict[str, int] = {}
    for t, st in enumerate(comparison.sample_types):
        first.setdefault(st.type, t)
    position = {t: k for k, t in enumerate(plan.gated)}
    order = {name: position.get(t, 0) for name, t in first.items()}
    for found in (outcome.findings, outcome.noise, outcome.moved):
        found.sort(key=lambda f: finding_order(f, order))
    warnings = [*comparison.notes, *plan_warnings(plan, comparison.names)]
    return GateResult(verdict=verdict_of(outcome.findings), findings=tuple(outcome.findings),
                      within_noise=tuple(outcome.noise), gated=plan.gated,
                      moved=tuple(outcome.moved), floors=tuple(outcome.floors),
                      warnings=tuple(warnings))


def _track(comparison: Comparison, plan: Plan, drafts: dict[int, list[Draft]]
           ) -> dict[int, Overlap] | None:
    """One walk over the stacks for every type that has function crossings: the crossings
    and the leaves that may be their evidence. Without any, there is nothing to correlate
    (a total is one test) and the walk is skipped.

    Bounded: at most MAX_TRACKED functions, the crossings most likely to be real first
    (largest standardized growth); tests left out make their type fall back to Šidák.
    """
    base, cand = comparison.baseline, comparison.candidate
    ranked: list[tuple[float, int]] = []
    leaves: list[int] = []
    for t in plan.gated:
        crossing = [d for d in drafts[t] if d.i is not None]
        if not crossing:
            continue
        ranked += [(d.z, d.i) for d in crossing if d.i is not None]
        growth = cand.flat[:, t] - base.flat[:, t]
        leaves += [i for i in np.argsort(-growth, kind="stable")[:EVIDENCE_TRACKED].tolist()
                   if growth[i] > 0]
    tracked = list(dict.fromkeys(i for _, i in sorted(ranked, key=lambda r: -r[0])))
    tracked = list(dict.fromkeys([*tracked[:MAX_TRACKED], *leaves]))[:MAX_TRACKED + len(leaves)]
    return overlaps(comparison, plan.gated, tracked) if tracked else None


def _decide(ds: list[Draft], ov: Overlap | None, fam_share: float, confidence: float,
            kb: int, kc: int) -> _Decision:
    alphas = sorted({1 - d.rule.confidence for d in ds} | {1 - confidence})
    crit = dict(zip(alphas, critical(ds, ov, [a / fam_share for a in alphas]).values()))
    rank = holm_rank(ds, kb, kc)
    sig: dict[int, bool] = {}
    for d in ds:
        if rank is not None and id(d) in rank:
            sig[id(d)] = rank[id(d)]
        else:
            sig[id(d)] = d.se is None or d.z > crit[1 - d.rule.confidence]
    return _Decision(crit, rank, sig)


def _judge(comparison: Comparison, plan: Plan, tp: TypePlan, ds: list[Draft],
           ov: Overlap | None, fam_share: float, time_unit: str, out: _Outcome) -> None:
    """One gated type's findings, moved allocation, crossings within noise and floor."""
    names, basis, t = comparison.names, tp.basis, tp.basis.t
    base, cand = comparison.baseline, comparison.candidate
    kb, kc = base.flat_runs.shape[0], cand.flat_runs.shape[0]
    confidence = plan.confidence
    dec = _decide(ds, ov, fam_share, confidence, kb, kc)
    sig, rank = dec.sig, dec.rank
    # A growth worth finding makes a family of its own (the function, its callers' cum):
    # the floor assumes at least FLOOR_FAMILY independent tests' worth of correction.
    fam_crit = critical_value(comparison, confidence, dec.crit[1 - confidence], plan.gated)
    floor = detection_floor(comparison, tp, fam_crit, confidence)
    if floor is not None:
        out.floors.append(floor)
    # Moved: flat grew significantly, the subtree did not.
    cum_sig = {d.i for d in ds if d.metric == "cum" and sig[id(d)] and d.i is not None
               and d.kind in ("increase", "new")}
    culprit_drafts: list[Draft] = []
    for d in ds:
        if d.i is None or d.kind not in ("increase", "new") or not sig[id(d)]:
            continue
        if d.metric == "flat" and d.i not in cum_sig:
            dcum = float(cand.cum[d.i, t] - base.cum[d.i, t])
            if dcum < MOVED_SHARE * d.delta:
                out.moved.append(make_finding(names, d, basis, time_unit, True, "moved"))
                continue
        culprit_drafts.append(d)
    for c in culprits(comparison, culprit_drafts, ov, dec.crit, basis):
        d = c.draft
        f = make_finding(names, d, basis, time_unit, True, None, c.members, c.evidence,
                         c.note + rank_note(d, rank, kb, kc))
        out.findings.append(replace(f, p_value=p_value(d, rank), remainder=c.remainder))
    for d in ds:
        if (d.i is None or d.kind == "ceiling") and sig[id(d)]:
            out.findings.append(replace(make_finding(names, d, basis, time_unit, True),
                                        p_value=p_value(d, rank)))
    _within_noise(names, ds, dec, basis, time_unit, out)


def _within_noise(names: tuple[str, ...], ds: list[Draft], dec: _Decision, basis: Basis,
                  time_unit: str, out: _Outcome) -> None:
    """One line per function (its cum crossing if it has one) for the crossings that are not
    significant, unless the function has a finding or moved (of any type so far)."""
    seen: set[int | None] = set()
    flagged = {f.function for f in out.findings} | {f.function for f in out.moved}
    for d in sorted(ds, key=lambda d: d.metric != "cum"):
        if dec.sig[id(d)] or d.i in seen:
            continue
        name = TOTAL_FUNCTION if d.i is None else names[d.i]
        if name in flagged:
            continue
        seen.add(d.i)
        f = make_finding(names, d, basis, time_unit, False)
        out.noise.append(replace(f, p_value=p_value(d, dec.rank), message=f.message +
                                 f" — within sampling noise at {d.rule.confidence:.0%} "
                                 "confidence (~)"))
