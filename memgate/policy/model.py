"""The values of a loaded policy, and how a function finds its settings.

Loading (:mod:`memgate.policy.load`) turns a file into these frozen values; nothing downstream
sees raw dictionaries. :meth:`Policy.resolve` gives an :class:`Effective` with every setting
filled in, so that inheritance (rule -> component defaults -> policy defaults -> built-in
defaults) is decided here, once, and not re-implemented by every caller. :class:`Limits`
implements the semantics of the limits (the package docstring, docs/policy.md).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from memgate.errors import PolicyError
from memgate.policy.matching import Matcher, sample_type_matches
from memgate.quantities import Dimension, Quantity

F64 = NDArray[np.float64]

Metric = Literal["flat", "cum"]
Severity = Literal["fail", "warn", "ignore"]

#: Rule names used by :class:`Effective` for settings that do not come from a named rule;
#: reserved so that a report's "rule" column is never ambiguous.
DEFAULTS_RULE: Final = "defaults"
TOTAL_RULE: Final = "total"
NEW_FUNCTIONS_RULE: Final = "new_functions"
RESERVED_NAMES: Final = frozenset({DEFAULTS_RULE, TOTAL_RULE, NEW_FUNCTIONS_RULE})


class Inherit(enum.Enum):
    """Marks a setting a rule or component does not give: the value comes from the defaults.

    Distinct from ``None``, which on a limit means "explicitly no limit" (``null`` in the file),
    so that a rule can switch off an inherited limit.
    """

    INHERIT = "inherit"


INHERIT: Final = Inherit.INHERIT

# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------


def limit_for(quantities: Iterable[Quantity], dimension: Dimension) -> Quantity | None:
    """The quantity of the given dimension in a limit list, or None if the list has none.

    A list holds at most one quantity per dimension (the loader rejects two), so "the" one is
    well defined.
    """
    for quantity in quantities:
        if quantity.dimension == dimension:
            return quantity
    return None


def increase_crossed(baseline: F64, candidate: F64, pct_limit: float | None,
                     absolute: float | None) -> NDArray[np.bool_]:
    """Where growth from ``baseline`` to ``candidate`` crosses the increase limits: the
    percentage ``pct_limit`` and the ``absolute`` limit on the delta (both in the values'
    units), over arrays, so that the gate tests a rule's functions at once.

    Both must be crossed when both are set; one alone decides otherwise; no limit means
    never. "Crossed" is strictly greater: growth of exactly 20% passes a 20% limit. A
    baseline of 0 with a positive candidate is an infinite relative increase.
    """
    delta = candidate - baseline
    if pct_limit is None and absolute is None:
        return np.zeros(delta.shape, dtype=bool)
    crossed = np.asarray(delta > 0)
    if pct_limit is not None:
        positive = baseline > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(positive, delta / np.where(positive, baseline, 1.0) * 100.0, np.inf)
        crossed &= pct > pct_limit
    if absolute is not None:
        crossed &= delta > absolute
    return crossed


@dataclass(frozen=True)
class Limits:
    """Fully resolved limits for one rule. Empty tuples and None mean "no such limit".

    Rates are per second, in base units (bytes or objects). The methods pick the limit that
    applies to a dimension (bytes or counts) of a level or a flow; the gate's plan
    (:mod:`memgate.gate.plan`) puts them in a comparison's units and applies them with
    :func:`increase_crossed`, the one statement of the increase semantics.
    """

    max_increase_pct: float | None = None
    max_increase_rate: tuple[Quantity, ...] = ()
    max_rate: tuple[Quantity, ...] = ()
    #: Limits on levels (in-use bytes/objects of snapshots): amounts, not rates.
    max_increase_level: tuple[Quantity, ...] = ()
    max_level: tuple[Quantity, ...] = ()

    def absolute_increase(self, dimension: Dimension, level: bool) -> Quantity | None:
        """The absolute-increase limit for a level (an amount) or a flow (a rate)."""
        return limit_for(self.max_increase_level if level else self.max_increase_rate,
                         dimension)

    def ceiling(self, dimension: Dimension, level: bool) -> Quantity | None:
        """The ceiling for a level (an amount) or a flow (a rate)."""
        return limit_for(self.max_level if level else self.max_rate, dimension)

    def increase_rate_for(self, dimension: Dimension) -> Quantity | None:
        """The absolute-increase limit that applies to sample types of this dimension."""
        return limit_for(self.max_increase_rate, dimension)

    def max_rate_for(self, dimension: Dimension) -> Quantity | None:
        """The ceiling that applies to sample types of this dimension."""
        return limit_for(self.max_rate, dimension)

    def with_overrides(self, overrides: LimitOverrides) -> Limits:
        """These limits with every setting the overrides give replaced (``None`` clears)."""
        return Limits(
            max_increase_pct=(
                self.max_increase_pct
                if overrides.max_increase_pct is INHERIT
                else overrides.max_increase_pct
            ),
            max_increase_rate=(
                self.max_increase_rate
                if overrides.max_increase_rate is INHERIT
                else overrides.max_increase_rate
            ),
            max_rate=self.max_rate if overrides.max_rate is INHERIT else overrides.max_rate,
            max_increase_level=(
                self.max_increase_level
                if overrides.max_increase_level is INHERIT
                else overrides.max_increase_level
            ),
            max_level=self.max_level if overrides.max_level is INHERIT else overrides.max_level,
        )


@dataclass(frozen=True)
class LimitOverrides:
    """Limits as written on a rule or in a component's defaults.

    :data:`INHERIT` = not written (take the inherited value); ``None`` / ``()`` = written as
    ``null`` (no limit, even if one is inherited).
    """

    max_increase_pct: float | None | Inherit = INHERIT
    max_increase_rate: tuple[Quantity, ...] | Inherit = INHERIT
    max_rate: tuple[Quantity, ...] | Inherit = INHERIT
    max_increase_level: tuple[Quantity, ...] | Inherit = INHERIT
    max_level: tuple[Quantity, ...] | Inherit = INHERIT

    def quantities(self) -> dict[str, tuple[Quantity, ...] | Inherit]:
        """The limits that are quantities (all but ``max_increase_pct``), by key: each must be
        of a gated sample type's dimension to ever apply."""
        return {"max_increase_rate": self.max_increase_rate, "max_rate": self.max_rate,
                "max_increase_level": self.max_increase_level, "max_level": self.max_level}


# ---------------------------------------------------------------------------------------------
# Policy values
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One entry of ``rules``. ``None``/:data:`INHERIT` fields come from the defaults."""

    name: str
    match: Matcher
    sample_types: tuple[str, ...] | None = None
    metric: Metric | None = None
    limits: LimitOverrides = LimitOverrides()
    severity: Severity | None = None
    confidence: float | None = None
    description: str = ""

    def covers(self, sample_type: str, defaults: Defaults) -> bool:
        """Whether this rule speaks about ``sample_type`` (a profile's sample-type name)."""
        names = self.sample_types if self.sample_types is not None else defaults.sample_types
        return any(sample_type_matches(name, sample_type) for name in names)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What decides a function's values: the defaults give every one, and a resolved
    :class:`Effective` has every one, from its rule or else from the defaults."""

    metric: Metric
    limits: Limits
    noise_floor: tuple[Quantity, ...]
    severity: Severity
    confidence: float
    noise_floor_level: tuple[Quantity, ...] = ()


@dataclass(frozen=True)
class Defaults(Settings):
    """Settings for unmatched functions, and the values rules inherit."""

    sample_types: tuple[str, ...]


@dataclass(frozen=True)
class DefaultsOverride:
    """A partial ``defaults`` (a component's, or a file's over the built-in one)."""

    sample_types: tuple[str, ...] | Inherit = INHERIT
    metric: Metric | Inherit = INHERIT
    limits: LimitOverrides = LimitOverrides()
    noise_floor: tuple[Quantity, ...] | Inherit = INHERIT
    severity: Severity | Inherit = INHERIT
    confidence: float | Inherit = INHERIT
    noise_floor_level: tuple[Quantity, ...] | Inherit = INHERIT

    def apply(self, base: Defaults) -> Defaults:
        """``base`` with every key given here replaced, key by key."""
        return Defaults(
            sample_types=base.sample_types if self.sample_types is INHERIT else self.sample_types,
            metric=base.metric if self.metric is INHERIT else self.metric,
            limits=base.limits.with_overrides(self.limits),
            noise_floor=base.noise_floor if self.noise_floor is INHERIT else self.noise_floor,
            severity=base.severity if self.severity is INHERIT else self.severity,
            confidence=base.confidence if self.confidence is INHERIT else self.confidence,
            noise_floor_level=(base.noise_floor_level if self.noise_floor_level is INHERIT
                               else self.noise_floor_level),
        )


@dataclass(frozen=True)
class TotalRule:
    """Limits on whole-profile totals. ``None`` fields come from the defaults."""

    sample_types: tuple[str, ...] | None
    limits: Limits
    severity: Severity | None


@dataclass(frozen=True)
class NewFunctionsRule:
    """Limits for functions absent from the baseline. ``None`` fields come from the defaults."""

    sample_types: tuple[str, ...] | None
    max_rate: tuple[Quantity, ...]
    severity: Severity | None
    max_level: tuple[Quantity, ...] = ()


@dataclass(frozen=True)
class ComponentPolicy:
    """One entry of ``components``: applied by :meth:`Policy.for_component`."""

    name: str
    duration_seconds: float | None
    defaults: DefaultsOverride
    rules: tuple[Rule, ...]
    #: Units of work each run does (fixed-work workloads); None: not set.
    work: float | None = None


@dataclass(frozen=True)
class Effective(Settings):
    """Everything the gate needs for one (function or total, sample type): no inheritance left.

    ``rule_name`` is the matching rule's name, or ``"defaults"``, ``"total"`` or
    ``"new_functions"``. A ``severity`` of ``"ignore"`` means: do not report.
    """

    rule_name: str
    sample_type: str

    @classmethod
    def inherit(cls, defaults: Settings, rule_name: str, sample_type: str) -> Effective:
        """Every setting as ``defaults`` give it: where each resolution starts."""
        given = {f.name: getattr(defaults, f.name) for f in fields(Settings)}
        return cls(rule_name=rule_name, sample_type=sample_type, **given)

    def noise_floor_for(self, dimension: Dimension, level: bool = False) -> Quantity | None:
        """The noise floor that applies to this dimension (of a level or a flow), if any."""
        return limit_for(self.noise_floor_level if level else self.noise_floor, dimension)



def frozen_map(
    items: Mapping[str, ComponentPolicy] | None = None,
) -> Mapping[str, ComponentPolicy]:
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy.

    ``component`` and ``duration_seconds`` are set only on the result of
    :meth:`for_component`; such a policy has no ``components`` left, so that component rules
    cannot be applied twice.
    """

    version: int
    source: str
    defaults: Defaults
    rules: tuple[Rule, ...] = ()
    total: TotalRule | None = None
    new_functions: NewFunctionsRule | None = None
    components: Mapping[str, ComponentPolicy] = field(default_factory=frozen_map, hash=False)
    component: str | None = None
    duration_seconds: float | None = None
    work: float | None = None

    def for_component(self, name: str | None) -> Policy:
        """The policy as seen by one component; ``None`` returns this policy unchanged.

        The component's rules come first, then the global rules (so a component can make an
        exception to a global rule); the component's defaults override the global defaults
        key by key; its ``duration`` becomes :attr:`duration_seconds`. An unknown name is a
        :class:`PolicyError` rather than a silent fallback, because a typo in ``--component``
        would otherwise gate with the wrong limits.
        """
        if name is None:
            return self
        component = self.components.get(name)
        if component is None:
            known = ", ".join(sorted(self.components)) or "none"
            raise PolicyError(
                f"unknown component {name!r} (components in this policy: {known})",
                source=self.source,
            )
        return replace(
            self,
            defaults=component.defaults.apply(self.defaults),
            rules=component.rules + self.rules,
            components=frozen_map(),
            component=name,
            duration_seconds=component.duration_seconds,
            work=component.work,
        )

    def resolve(self, function: str, sample_type: str) -> Effective | None:
        """The settings for ``function``'s values of ``sample_type`` (a profile type name).

        The first rule that matches the function AND covers the sample type (its own
        ``sample_types``, or the defaults' when it has none) wins; settings it does not give
        come from the defaults. Without a matching rule the defaults apply, as rule
        ``"defaults"``, if they cover the sample type; otherwise the sample type is not gated
        for this function and the result is None.
        """
        rule = self.rule_for(function, sample_type)
        if rule is not None:
            return self.effective(rule, sample_type)
        return self.unmatched(sample_type, new=False)

    def resolve_new_function(self, function: str, sample_type: str) -> Effective | None:
        """The settings for a function absent from the baseline.

        An explicit rule that matches is the most specific statement and wins (so an
        ``ignore`` rule keeps a function ignored when it is new). Otherwise ``new_functions``
        applies if it covers the sample type; otherwise the same as :meth:`resolve` (the
        baseline then counts as 0: an infinite relative increase, so the absolute limits
        decide).
        """
        rule = self.rule_for(function, sample_type)
        if rule is not None:
            return self.effective(rule, sample_type)
        return self.unmatched(sample_type, new=True)

    def rules_for(self, sample_type: str) -> tuple[Rule, ...]:
        """The rules that cover ``sample_type``, in order: of these, the first whose ``match``
        selects a function decides that function's settings."""
        return tuple(rule for rule in self.rules if rule.covers(sample_type, self.defaults))

    def rule_for(self, function: str, sample_type: str) -> Rule | None:
        """The rule that decides ``function``'s values of ``sample_type``, if any."""
        return next((rule for rule in self.rules_for(sample_type)
                     if rule.match.matches(function)), None)

    def unmatched(self, sample_type: str, new: bool) -> Effective | None:
        """The settings for a function no rule matches: ``new_functions`` for a function the
        baseline never had (``new``) if it covers the sample type, else the defaults if they
        do; None when neither covers it (not gated)."""
        if new and self.new_functions is not None:
            nf = self.new_functions
            names = nf.sample_types if nf.sample_types is not None else self.defaults.sample_types
            if any(sample_type_matches(n, sample_type) for n in names):
                return replace(
                    Effective.inherit(self.defaults, NEW_FUNCTIONS_RULE, sample_type),
                    limits=Limits(max_rate=nf.max_rate, max_level=nf.max_level),
                    severity=nf.severity or self.defaults.severity,
                )
        if self._defaults_cover(sample_type):
            return Effective.inherit(self.defaults, DEFAULTS_RULE, sample_type)
        return None

    def resolve_total(self, sample_type: str) -> Effective | None:
        """The settings for the whole-profile total of ``sample_type``; None if not gated.

        Totals have no noise floor: they aggregate every sample and are what the floor would
        be measured against.
        """
        total = self.total
        if total is None:
            return None
        names = total.sample_types if total.sample_types is not None else self.defaults.sample_types
        if not any(sample_type_matches(n, sample_type) for n in names):
            return None
        return replace(
            Effective.inherit(self.defaults, TOTAL_RULE, sample_type),
            limits=total.limits,
            noise_floor=(),
            noise_floor_level=(),
            severity=total.severity or self.defaults.severity,
        )

    def gated_sample_types(self) -> tuple[str, ...]:
        """Every sample-type name the policy mentions, in order of first mention, deduplicated.

        Lets the gate tell "this profile has nothing the policy gates" (likely a wrong file,
        e.g. a CPU profile) from "nothing regressed".
        """
        names: list[str] = list(self.defaults.sample_types)
        for rule in self.rules:
            names.extend(rule.sample_types or ())
        if self.total is not None:
            names.extend(self.total.sample_types or ())
        if self.new_functions is not None:
            names.extend(self.new_functions.sample_types or ())
        return tuple(dict.fromkeys(names))

    def _defaults_cover(self, sample_type: str) -> bool:
        return any(sample_type_matches(n, sample_type) for n in self.defaults.sample_types)

    def effective(self, rule: Rule, sample_type: str) -> Effective:
        """The settings of ``rule`` for ``sample_type``, what it does not give from the
        defaults."""
        d = self.defaults
        return replace(
            Effective.inherit(d, rule.name, sample_type),
            metric=rule.metric or d.metric,
            limits=d.limits.with_overrides(rule.limits),
            severity=rule.severity or d.severity,
            confidence=rule.confidence if rule.confidence is not None else d.confidence,
        )


