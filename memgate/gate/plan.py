"""The policy resolved once for one comparison: the plan the gate runs on.

The data flows one way: profiles -> table -> comparison -> plan(policy, comparison) ->
findings -> report. Building the plan is the only place the gate asks the policy anything:
for each gated sample type, which rule decides each function (as index arrays into
``comparison.names``), with its settings, and its limits converted to the profile's units and
the comparison's basis (a level's amounts as written; a flow's rates per second scaled to per
op or per run by ``comparison.scale``). The tests that follow work on arrays of functions and
never see a rate string or an inheritance rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from memgate.compare import Comparison
from memgate.errors import CompareError
from memgate.gate.results import Kind
from memgate.policy import (
    NEW_FUNCTIONS_RULE,
    Effective,
    Metric,
    Policy,
    Rule,
    Severity,
    increase_crossed,
    sample_type_matches,
)
from memgate.quantities import Dimension, Quantity, count_noun, dimension_of_unit, format_value

F64 = NDArray[np.float64]
Int64 = NDArray[np.int64]
Bools = NDArray[np.bool_]

#: Codes of :meth:`PlannedRule.crossings`; :data:`KINDS` names them.
NONE, INCREASE, CEILING, NEW = 0, 1, 2, 3
KINDS: Final[tuple[Kind | None, ...]] = (None, "increase", "ceiling", "new")
_NO_FUNCTIONS: Final[Int64] = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Basis:
    """One gated sample type of the comparison, and the basis its values are compared on."""

    t: int
    sample_type: str
    dim: Dimension
    level: bool
    #: The values' denominator: "" for a level, "s", "op", "run" or "profile".
    per: str
    #: Seconds of the baseline's workload per basis unit (:attr:`Comparison.scale`).
    scale: float | None
    #: Growth: an in-use type of delta profiles (divided by their own duration).
    growth: bool = False
    #: A flow judged on what was freed (allocation minus what is still held): see
    #: :attr:`memgate.compare.SideRates.held_flat`.
    freed: bool = False

    @property
    def quantity(self) -> str:
        return "level" if self.level else ("growth" if self.growth else "flow")

    @property
    def rates_apply(self) -> bool:
        """Whether the policy's rate limits and floors can be put in this type's units: levels
        have their own, and flows per op need the workload's duration to convert a rate."""
        return self.level or self.per in ("s", "profile") or self.scale is not None

    def absolute(self, q: Quantity | None) -> float | None:
        """An absolute limit in this type's units, or None if there is none (or a rate limit
        cannot be scaled to a per-op basis without a duration)."""
        if q is None:
            return None
        if self.level or self.per in ("s", "profile"):
            return q.value
        return None if self.scale is None else q.value * self.scale


@dataclass(frozen=True, eq=False)
class PlannedRule:
    """One rule's settings for one sample type, and the functions it decides there.

    Limits are in the comparison's units and basis; None means "no such limit".
    """

    #: The rule's name, or "defaults", "total", "new_functions".
    name: str
    metric: Metric
    severity: Severity
    confidence: float
    #: Indices into ``comparison.names`` of the functions this rule decides (none: the total).
    functions: Int64
    ceiling: float | None
    increase_pct: float | None
    increase: float | None
    #: Values below it on both sides are ignored; None: no floor (or it cannot apply).
    noise_floor: float | None
    #: A ceiling crossed by a function the baseline never had is a "new" finding.
    new_rule: bool
    #: The limits as the policy wrote them, and what they amount to here.
    ceiling_text: str
    increase_text: str

    def limit_text(self, kind: Kind) -> str:
        return self.ceiling_text if kind in ("ceiling", "new") else self.increase_text

    def crossings(self, b: F64, c: F64, is_new: Bools) -> NDArray[np.int8]:
        """Which limit growth from ``b`` to ``c`` crosses, as codes (:data:`KINDS`).

        A ceiling crossed ("crossed" is strictly greater) wins over an increase crossed
        (:func:`memgate.policy.increase_crossed`: the policy's semantics).
        """
        out = np.zeros(b.shape, dtype=np.int8)
        out[increase_crossed(b, c, self.increase_pct, self.increase)] = INCREASE
        if self.ceiling is not None:
            over = c > self.ceiling
            out[over] = CEILING
            if self.new_rule:
                out[over & is_new] = NEW
        return out

    def crosses(self, b: float, c: float) -> bool:
        """Whether growth from ``b`` to ``c`` of a function the baseline had crosses a limit."""
        code = self.crossings(np.array([b]), np.array([c]), np.zeros(1, dtype=bool))
        return bool(code[0] != NONE)


@dataclass(frozen=True, eq=False)
class TypePlan:
    """Everything the gate applies to one gated sample type."""

    basis: Basis
    #: Every rule that covers the type, in policy order, then new_functions and the defaults
    #: (each once, with the functions it decides: a function is in one of them, or in none
    #: when no rule and no defaults cover the type).
    rules: tuple[PlannedRule, ...]
    total: PlannedRule | None
    #: The absolute increase limit a detection floor is compared with (None: none).
    floor_limit: float | None


@dataclass(frozen=True)
class RuleUse:
    """What one of the policy's rules does in this comparison (for the warnings)."""

    rule: Rule
    #: Its ``match`` selects some function of either profile.
    matched: bool
    #: The comparison's sample types that are levels and that it covers.
    levels: tuple[str, ...]
    #: Some of its sample types are not levels here.
    flows_too: bool


@dataclass(frozen=True, eq=False)
class Plan:
    """The policy resolved for one comparison."""

    gated: tuple[int, ...]
    #: Per gated sample type, in the order of ``gated``.
    types: tuple[TypePlan, ...]
    #: Per function: the baseline has nothing of it at all (a new function).
    absent: Bools
    rules: tuple[RuleUse, ...]
    #: The policy's default confidence (the family's, and the detection floor's).
    confidence: float


def gated_type_indices(comparison: Comparison, policy: Policy) -> tuple[int, ...]:
    """Which sample types of the profiles the policy gates; an error if none or non-memory."""
    names = policy.gated_sample_types()
    gated: list[int] = []
    for t, st in enumerate(comparison.sample_types):
        if any(sample_type_matches(n, st.type) for n in names):
            if dimension_of_unit(st.unit) is None:
                raise CompareError(
                    f"sample type {st.type} ({st.unit}) is not a memory sample type: memgate "
                    "gates allocations (bytes or object counts), not CPU or time profiles",
                    source=policy.source,
                )
            gated.append(t)
    if not gated:
        have = ", ".join(str(st) for st in comparison.sample_types)
        raise CompareError(
            f"the profiles have none of the sample types the policy gates "
            f"({', '.join(names)}); they have {have}. Is this a memory profile? "
            "(CPU and other profiles cannot be gated by memory rules)",
            source=policy.source,
        )
    return tuple(gated)


def build_plan(comparison: Comparison, policy: Policy) -> Plan:
    """Resolve ``policy`` for ``comparison``: every rule's ``match`` is tried on every
    function once, and each gated type's functions go to the first rule covering the type
    that matches them, as :meth:`Policy.rule_for` decides one function."""
    gated = gated_type_indices(comparison, policy)
    names = comparison.names
    base = comparison.baseline
    absent = np.asarray(~((base.flat != 0).any(axis=1) | (base.cum != 0).any(axis=1)),
                        dtype=bool)
    matches = {id(rule): np.fromiter((rule.match.matches(n) for n in names), dtype=bool,
                                     count=len(names))
               for rule in policy.rules}
    types = tuple(_type_plan(comparison, policy, _basis(comparison, t), absent, matches)
                  for t in gated)
    levels = [st.type for t, st in enumerate(comparison.sample_types)
              if comparison.quantity(t) == "level"]
    uses = []
    for rule in policy.rules:
        covered = tuple(st for st in levels if rule.covers(st, policy.defaults))
        own = rule.sample_types or policy.defaults.sample_types
        flows_too = any(not any(sample_type_matches(n, lv) for lv in levels) for n in own)
        uses.append(RuleUse(rule, bool(matches[id(rule)].any()), covered, flows_too))
    return Plan(gated, types, absent, tuple(uses), policy.defaults.confidence)


def _basis(comparison: Comparison, t: int) -> Basis:
    st = comparison.sample_types[t]
    dim = dimension_of_unit(st.unit)
    assert dim is not None
    base, cand = comparison.baseline, comparison.candidate
    q = comparison.quantity(t)
    freed = base.held_flat is not None and bool(
        (base.held_flat[:, t] != 0).any() or (cand.held_flat is not None
                                              and (cand.held_flat[:, t] != 0).any()))
    return Basis(t, st.type, dim, q == "level", comparison.per(t), comparison.scale,
                 q == "growth", freed)


def _type_plan(comparison: Comparison, policy: Policy, basis: Basis, absent: Bools,
               matches: dict[int, Bools]) -> TypePlan:
    st = basis.sample_type
    owner = np.full(len(comparison.names), -1, dtype=np.int64)
    settings: list[Effective] = []
    for rule in policy.rules_for(st):
        owner[(owner < 0) & matches[id(rule)]] = len(settings)
        settings.append(policy.effective(rule, st))
    # Functions no rule matches: new_functions for those the baseline never had, else (and
    # for the rest) the defaults; one entry each, shared when they are the same settings.
    first_fallback = len(settings)
    rest = owner < 0
    for new, which in ((True, rest & absent), (False, rest & ~absent)):
        eff = policy.unmatched(st, new)
        if eff is None:
            continue
        k = next((k for k in range(first_fallback, len(settings)) if settings[k] == eff),
                 len(settings))
        if k == len(settings):
            settings.append(eff)
        owner[which] = k
    rules = tuple(_planned(eff, np.flatnonzero(owner == k), basis)
                  for k, eff in enumerate(settings))
    teff = policy.resolve_total(st)
    total = None if teff is None else _planned(teff, _NO_FUNCTIONS, basis)
    floor_eff = policy.resolve("", st) or teff
    floor_limit = None if floor_eff is None else basis.absolute(
        floor_eff.limits.absolute_increase(basis.dim, basis.level))
    return TypePlan(basis, rules, total, floor_limit)


def _planned(eff: Effective, functions: Int64, basis: Basis) -> PlannedRule:
    """``eff`` in ``basis``'s units, with the texts of its limits."""
    lim = eff.limits
    dim, level = basis.dim, basis.level
    ceiling_q = lim.ceiling(dim, level)
    increase_q = lim.absolute_increase(dim, level)
    ceiling, increase = basis.absolute(ceiling_q), basis.absolute(increase_q)
    floor_q = eff.noise_floor_for(dim, level)
    noise_floor = None
    if basis.rates_apply and floor_q is not None:
        noise_floor = floor_q.value * (1.0 if level else (basis.scale or 1.0))
    noun = count_noun(basis.sample_type)

    def text(q: Quantity, value: float | None) -> str:
        if level or basis.per == "s" or value is None:
            return q.text
        return f"{format_value(value, dim, basis.per, 's', noun)} ({q.text})"

    ceiling_text = ""
    if ceiling_q is not None:
        ceiling_text = f"{'max level' if level else 'max rate'} {text(ceiling_q, ceiling)}"
    parts = []
    if lim.max_increase_pct is not None:
        parts.append(f"{lim.max_increase_pct:g}%")
    if increase_q is not None and basis.rates_apply:
        parts.append(text(increase_q, increase))
    return PlannedRule(
        name=eff.rule_name, metric=eff.metric, severity=eff.severity,
        confidence=eff.confidence, functions=np.asarray(functions, dtype=np.int64),
        ceiling=ceiling, increase_pct=lim.max_increase_pct, increase=increase,
        noise_floor=noise_floor, new_rule=eff.rule_name == NEW_FUNCTIONS_RULE,
        ceiling_text=ceiling_text, increase_text=" and ".join(parts))

