"""Policy files: which functions may grow how much, and how a function finds its rule.

A policy is a YAML or JSON file validated against ``memgate/schemas/policy.schema.json``
(reference: docs/policy.md). Loading turns it into frozen values; nothing downstream sees raw
dictionaries. The gate asks one question per (function, sample type) pair,
:meth:`Policy.resolve`, and gets an :class:`Effective` with every setting filled in, so that
inheritance (rule -> component defaults -> policy defaults -> built-in defaults) is decided
here, once, and not re-implemented by every caller.

Semantics of the limits (also documented in docs/policy.md; :class:`Limits` implements them so
that the gate and the docs cannot drift apart):

* ``max_increase`` (percent) and ``max_increase_rate`` (absolute rate) bound the growth of the
  candidate over the baseline. When both are set, a finding needs BOTH crossed: a change must
  be large in relative *and* absolute terms, so that tiny functions (+300% of nothing) and
  noise in big ones (+0.5 MiB/min on 1 GiB/min) do not fail builds. When only one is set it
  alone decides.
* ``max_rate`` is an absolute ceiling on the candidate's rate; the baseline plays no part.
* Rates have a dimension. A bytes rate applies only to byte sample types, a count rate only to
  count sample types; for a sample type whose dimension has no rate in the list, that limit is
  simply not set.
* ``noise_floor``: a function below the floor on BOTH sides is ignored.
* Rates are per second of profile duration; with ``--no-normalize`` each profile counts as
  one second, so the same rate strings then bound raw per-profile values ("1MiB/s" = 1 MiB).

A policy file starts from the built-in default policy (``memgate/data/default-policy.yml``):
keys left out of ``defaults`` keep the built-in values, and a left-out ``total`` or
``new_functions`` section is the built-in one (``null`` switches it off). ``null`` on a limit
key removes an inherited limit.
"""

from __future__ import annotations

import difflib
import enum
import fnmatch
import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

import yaml

# jsonschema ships no type information; types-jsonschema may or may not be installed.
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped, unused-ignore]

from memgate import regex, schemas
from memgate.errors import PolicyError
from memgate.quantities import (
    AMOUNT_PATTERN,
    DURATION_PATTERN,
    PERCENT_PATTERN,
    RATE_PATTERN,
    Dimension,
    Quantity,
    parse_amount,
    parse_duration,
    parse_percent,
    parse_rate,
)

__all__ = [
    "DEFAULTS_RULE",
    "INHERIT",
    "NEW_FUNCTIONS_RULE",
    "TOTAL_RULE",
    "ComponentPolicy",
    "Defaults",
    "DefaultsOverride",
    "Effective",
    "Inherit",
    "LimitOverrides",
    "Limits",
    "Matcher",
    "Metric",
    "NewFunctionsRule",
    "Policy",
    "Rule",
    "Severity",
    "TotalRule",
    "default_policy",
    "format_path",
    "limit_for",
    "load_policy",
    "load_policy_data",
    "policy_schema",
    "sample_type_index",
    "sample_type_matches",
]

Metric = Literal["flat", "cum"]
Severity = Literal["fail", "warn", "ignore"]
MatchKind = Literal["exact", "glob", "regex"]

#: Rule names used by :class:`Effective` for settings that do not come from a named rule;
#: reserved so that a report's "rule" column is never ambiguous.
DEFAULTS_RULE: Final = "defaults"
TOTAL_RULE: Final = "total"
NEW_FUNCTIONS_RULE: Final = "new_functions"
_RESERVED_NAMES: Final = frozenset({DEFAULTS_RULE, TOTAL_RULE, NEW_FUNCTIONS_RULE})

_PathPart = str | int
_Path = tuple[_PathPart, ...]


class Inherit(enum.Enum):
    """Marks a setting a rule or component does not give: the value comes from the defaults.

    Distinct from ``None``, which on a limit means "explicitly no limit" (``null`` in the file),
    so that a rule can switch off an inherited limit.
    """

    INHERIT = "inherit"


INHERIT: Final = Inherit.INHERIT


# ---------------------------------------------------------------------------------------------
# Sample types
# ---------------------------------------------------------------------------------------------


def sample_type_matches(policy_name: str, profile_type: str) -> bool:
    """Whether a sample-type name in a policy designates a sample type of a profile.

    Exact names match; as a fallback, as in pprof's ``-sample_index``, a name ``inuse_X``
    also matches a profile type ``X``, so that a policy written for Go's four-column heap
    profiles (``inuse_space``) also works on two-column profiles (``space``/``objects``).
    """
    if policy_name == profile_type:
        return True
    return policy_name.startswith("inuse_") and policy_name[len("inuse_") :] == profile_type


def sample_type_index(policy_name: str, profile_types: Sequence[str]) -> int | None:
    """Index of the profile sample type a policy name designates, pprof's way, or None.

    An exact name wins over the ``inuse_`` fallback, so that a profile that has both
    ``inuse_space`` and ``space`` resolves ``inuse_space`` to itself.
    """
    for i, name in enumerate(profile_types):
        if name == policy_name:
            return i
    for i, name in enumerate(profile_types):
        if sample_type_matches(policy_name, name):
            return i
    return None


def _sample_type_dimension(name: str) -> Dimension | None:
    """Dimension a sample type has by naming convention; None when the name does not say.

    Only used to reject policies whose rate limits could never apply (a count rate on a rule
    for ``inuse_space`` only); the gate uses the profile's real units.
    """
    lower = name.lower()
    if lower.endswith(("space", "bytes")):
        return "bytes"
    if lower.endswith(("objects", "count")):
        return "count"
    return None


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


@dataclass(frozen=True)
class Limits:
    """Fully resolved limits for one rule. Empty tuples and None mean "no such limit".

    The methods implement the policy semantics (module docstring) so that the gate does not
    re-derive them: rates are per second, in base units (bytes or objects).
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

    def has_increase_limit(self, dimension: Dimension) -> bool:
        """Whether any increase limit applies to this dimension at all."""
        return self.max_increase_pct is not None or self.increase_rate_for(dimension) is not None

    def increase_exceeded(self, baseline: float, candidate: float, dimension: Dimension) -> bool:
        """Whether growth from ``baseline`` to ``candidate`` (per-second rates) crosses the limits.

        Both the percentage and the absolute limit must be crossed when both are set; one
        alone decides otherwise; no limit means never. "Crossed" is strictly greater: growth
        of exactly 20% passes a 20% limit. A baseline of 0 with a positive candidate is an
        infinite relative increase.
        """
        rate_limit = self.increase_rate_for(dimension)
        if self.max_increase_pct is None and rate_limit is None:
            return False
        delta = candidate - baseline
        if delta <= 0:
            return False
        if self.max_increase_pct is not None:
            pct = math.inf if baseline <= 0 else delta / baseline * 100.0
            if not pct > self.max_increase_pct:
                return False
        return rate_limit is None or delta > rate_limit.value

    def rate_exceeded(self, candidate: float, dimension: Dimension) -> bool:
        """Whether the candidate's per-second rate is above the ``max_rate`` ceiling."""
        ceiling = self.max_rate_for(dimension)
        return ceiling is not None and candidate > ceiling.value

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


# ---------------------------------------------------------------------------------------------
# Matching function names
# ---------------------------------------------------------------------------------------------

#: A Go pointer receiver, ``(*T``: the star is part of the name, not a wildcard.
_GO_RECEIVER: Final = re.compile(r"\(\*(?=[A-Za-z_])")
#: Go's placeholder for type parameters in symbol names (``pkg.Map[...].Get``).
_GO_TYPE_PARAMS: Final = "[...]"


@dataclass(frozen=True)
class Matcher:
    """How a rule's ``match`` selects functions: exact name, glob, or ``re:`` regex.

    Globs use ``*``, ``?`` and ``[...]`` (``*`` also crosses ``/`` and ``.``). Because Go
    function names are full of glob characters, two Go spellings are taken literally: the
    star of a pointer receiver ``(*T)`` and the type-parameter placeholder ``[...]``. So
    ``encoding/json.(*decodeState).literalStore`` is an exact name, and
    ``encoding/json.(*decodeState).*`` a glob over that type's methods. Write ``[*]`` for a
    literal star elsewhere. Regexes (``re:`` prefix) must match the whole name, like globs,
    so that ``re:runtime\\.malg`` does not match ``runtime.malgX``; they are RE2 (Go's
    syntax, as pprof's own options), matched in linear time (memgate/regex.py), so no pattern
    can hang the gate whatever name it meets.
    """

    #: The ``match`` text as written, including any ``re:`` prefix.
    pattern: str
    kind: MatchKind
    _regex: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Build a matcher from a ``match`` string; :class:`ValueError` for a bad regex."""
        if text.startswith("re:"):
            try:
                compiled = regex.compile(text[3:])
            except regex.RegexError as exc:
                raise ValueError(f"invalid regular expression {text[3:]!r}: {exc} (RE2 "
                                 "syntax, as Go's regexp)") from None
            return cls(text, "regex", compiled)
        literal = _GO_RECEIVER.sub("(", text).replace(_GO_TYPE_PARAMS, "")
        if not any(c in literal for c in "*?["):
            return cls(text, "exact", None)
        protected = _GO_RECEIVER.sub("([*]", text).replace(_GO_TYPE_PARAMS, "[[]...[]]")
        return cls(text, "glob", re.compile(fnmatch.translate(protected)))

    def matches(self, function: str) -> bool:
        """Whether ``function`` (a pprof function name) is selected by this matcher."""
        if function == self.pattern and self.kind != "regex":
            return True
        if self._regex is None:
            return False
        if self.kind == "regex":
            return regex.fullmatch(self._regex, function)
        return self._regex.fullmatch(function) is not None


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


@dataclass(frozen=True)
class Defaults:
    """Settings for unmatched functions, and the values rules inherit."""

    sample_types: tuple[str, ...]
    metric: Metric
    limits: Limits
    noise_floor: tuple[Quantity, ...]
    severity: Severity
    confidence: float
    noise_floor_level: tuple[Quantity, ...] = ()


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
class Effective:
    """Everything the gate needs for one (function or total, sample type): no inheritance left.

    ``rule_name`` is the matching rule's name, or ``"defaults"``, ``"total"`` or
    ``"new_functions"``. A ``severity`` of ``"ignore"`` means: do not report.
    """

    rule_name: str
    sample_type: str
    metric: Metric
    limits: Limits
    noise_floor: tuple[Quantity, ...]
    severity: Severity
    confidence: float
    noise_floor_level: tuple[Quantity, ...] = ()

    def noise_floor_for(self, dimension: Dimension, level: bool = False) -> Quantity | None:
        """The noise floor that applies to this dimension (of a level or a flow), if any."""
        return limit_for(self.noise_floor_level if level else self.noise_floor, dimension)

    def is_noise(self, baseline: float, candidate: float, dimension: Dimension,
                 level: bool = False, scale: float = 1.0) -> bool:
        """Whether both values are below the noise floor (so the pair is ignored); a rate
        floor is first scaled to the comparison's basis (``scale`` seconds per unit)."""
        floor = self.noise_floor_for(dimension, level)
        value = None if floor is None else floor.value * (1.0 if level else scale)
        return value is not None and baseline < value and candidate < value


def _frozen_map(
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
    components: Mapping[str, ComponentPolicy] = field(default_factory=_frozen_map, hash=False)
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
            components=_frozen_map(),
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
        for rule in self.rules:
            if rule.covers(sample_type, self.defaults) and rule.match.matches(function):
                return self._effective_rule(rule, sample_type)
        if self._defaults_cover(sample_type):
            return self._effective_defaults(sample_type)
        return None

    def resolve_new_function(self, function: str, sample_type: str) -> Effective | None:
        """The settings for a function absent from the baseline.

        An explicit rule that matches is the most specific statement and wins (so an
        ``ignore`` rule keeps a function ignored when it is new). Otherwise ``new_functions``
        applies if it covers the sample type; otherwise the same as :meth:`resolve` (the
        baseline then counts as 0: an infinite relative increase, so the absolute limits
        decide).
        """
        for rule in self.rules:
            if rule.covers(sample_type, self.defaults) and rule.match.matches(function):
                return self._effective_rule(rule, sample_type)
        new = self.new_functions
        if new is not None:
            names = new.sample_types if new.sample_types is not None else self.defaults.sample_types
            if any(sample_type_matches(n, sample_type) for n in names):
                return Effective(
                    rule_name=NEW_FUNCTIONS_RULE,
                    sample_type=sample_type,
                    metric=self.defaults.metric,
                    limits=Limits(max_rate=new.max_rate, max_level=new.max_level),
                    noise_floor=self.defaults.noise_floor,
                    severity=new.severity or self.defaults.severity,
                    confidence=self.defaults.confidence,
                    noise_floor_level=self.defaults.noise_floor_level,
                )
        if self._defaults_cover(sample_type):
            return self._effective_defaults(sample_type)
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
        return Effective(
            rule_name=TOTAL_RULE,
            sample_type=sample_type,
            metric=self.defaults.metric,
            limits=total.limits,
            noise_floor=(),
            severity=total.severity or self.defaults.severity,
            confidence=self.defaults.confidence,
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

    def _effective_defaults(self, sample_type: str) -> Effective:
        d = self.defaults
        return Effective(
            rule_name=DEFAULTS_RULE,
            sample_type=sample_type,
            metric=d.metric,
            limits=d.limits,
            noise_floor=d.noise_floor,
            severity=d.severity,
            confidence=d.confidence,
            noise_floor_level=d.noise_floor_level,
        )

    def _effective_rule(self, rule: Rule, sample_type: str) -> Effective:
        d = self.defaults
        return Effective(
            rule_name=rule.name,
            sample_type=sample_type,
            metric=rule.metric or d.metric,
            limits=d.limits.with_overrides(rule.limits),
            noise_floor=d.noise_floor,
            severity=rule.severity or d.severity,
            confidence=rule.confidence if rule.confidence is not None else d.confidence,
            noise_floor_level=d.noise_floor_level,
        )


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

#: The base under the built-in policy file itself: neutral values, no limits. Every key is
#: set in default-policy.yml, so these only matter if that file is edited down.
_NEUTRAL_DEFAULTS: Final = Defaults(
    sample_types=("inuse_space", "inuse_objects", "alloc_space", "alloc_objects"),
    metric="flat",
    limits=Limits(),
    noise_floor=(),
    severity="fail",
    confidence=0.99,
)


@dataclass(frozen=True)
class _Base:
    """What a policy file's left-out parts fall back to."""

    defaults: Defaults
    total: TotalRule | None
    new_functions: NewFunctionsRule | None


def policy_schema() -> dict[str, Any]:
    """The policy JSON Schema (Draft 2020-12), as a fresh dict the caller may modify."""
    return schemas.schema("policy")


def load_policy(path: str | Path) -> Policy:
    """Read, validate and load a policy file (YAML or JSON; JSON is read as YAML).

    Every problem a user can cause becomes a one-line :class:`PolicyError` naming the file:
    missing or unreadable file, YAML syntax (with line and column), duplicate keys (which
    YAML would otherwise silently resolve to the last one), and all schema and semantic errors
    at once, each with its path (``rules[2].max_increase: ...``), so that one run shows
    everything to fix.
    """
    source = str(path)
    try:
        text = read_policy_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"policy file is not UTF-8 text (byte {exc.start})", source=source
        ) from None
    return load_policy_data(_parse_yaml(text, source), source)


#: The largest policy file read. A real one is a few kilobytes; YAML parsing costs about a
#: second per megabyte, so a bigger file is refused rather than parsed for minutes.
MAX_POLICY_BYTES: Final = 1 << 20


def read_policy_bytes(path: str | Path) -> bytes:
    """The bytes of a policy file, at most :data:`MAX_POLICY_BYTES` of any kind of file
    (a link to ``/dev/zero`` included); every problem is a one-line :class:`PolicyError`."""
    from memgate.fs import ReadLimitExceeded, read_limited

    source = str(path)
    try:
        return read_limited(path, MAX_POLICY_BYTES)
    except ReadLimitExceeded:
        raise PolicyError(f"policy file is larger than {MAX_POLICY_BYTES // 1024} KiB; a "
                          "policy is a few kilobytes of YAML", source=source) from None
    except FileNotFoundError:
        raise PolicyError("policy file not found", source=source) from None
    except IsADirectoryError:
        raise PolicyError("policy path is a directory, not a file", source=source) from None
    except OSError as exc:
        raise PolicyError(
            f"cannot read policy file: {exc.strerror or exc}", source=source
        ) from None


def load_policy_data(data: object, source: str) -> Policy:
    """Validate and load an already-parsed policy (the result of YAML/JSON parsing).

    Left-out parts fall back to the built-in default policy (see the module docstring).
    """
    return _load(data, source, _builtin_base())


@functools.cache
def default_policy() -> Policy:
    """The built-in policy shipped as ``memgate/data/default-policy.yml`` (cached)."""
    source = "<built-in default policy>"
    text = (resources.files("memgate") / "data" / "default-policy.yml").read_text("utf-8")
    return _load(_parse_yaml(text, source), source, _Base(_NEUTRAL_DEFAULTS, None, None))


def _builtin_base() -> _Base:
    builtin = default_policy()
    return _Base(builtin.defaults, builtin.total, builtin.new_functions)


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects duplicate mapping keys instead of keeping the last."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[object, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *anchor" keys may legitimately be overridden
        key = loader.construct_object(key_node, deep=True)
        try:
            previous = seen.setdefault(key, key_node)
        except TypeError:  # unhashable key: construct_mapping reports it
            continue
        if previous is not key_node:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first defined on line {previous.start_mark.line + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        if exc.problem and exc.context and exc.context_mark is not None:
            # "expected ']' ... (while parsing a flow sequence started at line 5, column 12)":
            # the problem is often found only at the end of the file, the cause is here.
            ctx = exc.context_mark
            problem += f" ({exc.context} started at line {ctx.line + 1}, column {ctx.column + 1})"
        kind = (
            "invalid YAML"
            if isinstance(exc, yaml.constructor.ConstructorError)
            else "YAML syntax error"
        )
        raise PolicyError(f"{kind}{where}: {problem}", source=source) from None
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise PolicyError(f"YAML syntax error: {message}", source=source) from None
    except RecursionError:
        raise PolicyError("invalid YAML: nested too deeply", source=source) from None


def format_path(path: Iterable[str | int]) -> str:
    """A location in a policy as users write it: ``rules[2].max_increase``, ``components.api``.

    Keys that are not plain identifiers are quoted (``components["a b"]``); the empty path is
    ``(top level)``.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "(top level)"


#: Values a policy may hold once YAML aliases are expanded. A real policy has hundreds; nine
#: nested aliases of nine items each ("billion laughs") have 9^9, which the schema validator
#: would walk one by one.
MAX_POLICY_NODES: Final = 100_000
#: How deep a policy may nest (the validator and the parser recurse).
MAX_POLICY_DEPTH: Final = 64


def _check_size(data: object, source: str) -> None:
    """Refuse documents too big or too deep once aliases are expanded, without expanding
    them: the walk stops at the first value past the budget."""
    stack: list[tuple[object, int]] = [(data, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_POLICY_NODES:
            raise PolicyError(f"policy too large: more than {MAX_POLICY_NODES} values (with "
                              "YAML aliases expanded)", source=source)
        if depth > MAX_POLICY_DEPTH:
            raise PolicyError(f"policy nested too deeply (more than {MAX_POLICY_DEPTH} levels)",
                              source=source)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _load(data: object, source: str, base: _Base) -> Policy:
    _check_size(data, source)
    if data is None:
        raise PolicyError(
            "policy is empty: expected a mapping with at least 'version: 1'", source=source
        )
    if not isinstance(data, dict):
        raise PolicyError(
            f"policy must be a mapping at the top level, not {_kind(data)}", source=source
        )
    key_errors = list(_non_string_keys(data, ()))
    if key_errors:
        raise PolicyError(_join(data, key_errors), source=source)
    errors = list(_schema_errors(data))
    parser = _Parser(errors)
    policy = parser.policy(data, source, base)
    if errors:
        raise PolicyError(_join(data, errors), source=source)
    return policy


def _join(data: object, errors: list[tuple[_Path, str]]) -> str:
    """All errors in document order, deduplicated, as one line."""
    unique = list(dict.fromkeys(errors))
    order = {err: i for i, err in enumerate(unique)}
    unique.sort(key=lambda err: (_document_position(data, err[0]), order[err]))
    return "; ".join(f"{format_path(path)}: {message}" for path, message in unique)


def _document_position(data: object, path: _Path) -> tuple[int, ...]:
    position: list[int] = []
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:
            position.append(list(node).index(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            position.append(part)
            node = node[part]
        else:
            position.append(1 << 30)
            break
    return tuple(position)


def _non_string_keys(node: object, path: _Path) -> Iterator[tuple[_Path, str]]:
    """YAML allows keys like ``1:`` or ``true:``; the schema (and JSON) does not."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                yield path, f"key {key!r} must be a string"
            else:
                yield from _non_string_keys(value, (*path, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _non_string_keys(item, (*path, i))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _yaml_bool_hint(value: object) -> str:
    """YAML 1.1 reads yes/no/on/off as booleans: ``severity: no`` arrives as False."""
    if isinstance(value, bool):
        return " (YAML reads yes/no/on/off/true/false as booleans: quote the word)"
    return ""


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_PATTERN_NAMES: Final = {
    RATE_PATTERN: "rate format (e.g. '1MiB/h', '100k/min', '10 objects/s')",
    AMOUNT_PATTERN: "amount format (e.g. '2MiB', '20k', '10 objects': a limit on a level, "
                    "what is in use, takes an amount, not a rate)",
    PERCENT_PATTERN: "percentage format (e.g. '10%' or 10)",
    DURATION_PATTERN: "duration format (e.g. '30s', '48h', '1h30m' or a number of seconds)",
}

_TYPE_NAMES: Final = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
    "boolean": "true or false",
}


_BOUNDS: Final = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}


def _suggest(key: str, allowed: Sequence[str]) -> list[str]:
    """The allowed key the user probably meant: same words in another order, else closest."""
    words = sorted(key.lower().replace("-", "_").split("_"))
    same_words = [a for a in allowed if sorted(a.split("_")) == words]
    return same_words[:1] or difflib.get_close_matches(key, allowed, n=1)


def _schema_errors(data: object) -> Iterator[tuple[_Path, str]]:
    for error in schemas.validator("policy").iter_errors(data):
        yield from _describe(error)


def _describe(error: ValidationError) -> Iterator[tuple[_Path, str]]:
    """Rephrase a jsonschema error for people who write YAML, not JSON Schema."""
    path: _Path = tuple(error.absolute_path)
    instance = error.instance
    kind = error.validator
    if kind == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        for key in instance:
            if key in allowed or any(re.search(p, key) for p in patterns):
                continue
            if patterns:
                message = f"invalid name {key!r}: use only letters, digits, '.', '_' and '-'"
            else:
                close = _suggest(key, allowed)
                hint = f"did you mean {close[0]!r}? " if close else ""
                message = f"unknown key ({hint}allowed: {', '.join(allowed)})"
            yield (*path, key), message
        return
    if kind == "pattern":
        name = _PATTERN_NAMES.get(str(error.validator_value), f"pattern {error.validator_value}")
        yield path, f"{_short(instance)} does not match the {name}"
    elif kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        got = "nothing (an empty value)" if instance is None else \
            f"{_kind(instance)} {_short(instance)}"
        yield path, f"expected {wanted}, got {got}{_yaml_bool_hint(instance)}"
    elif kind == "required":
        missing = [k for k in error.validator_value if k not in instance]
        for key in missing:
            yield path, f"missing required key {key!r}"
    elif kind == "const":
        yield path, f"must be {error.validator_value!r}, not {_short(instance)}"
    elif kind == "enum":
        choices = ", ".join(repr(v) for v in error.validator_value)
        yield path, f"{_short(instance)} is not one of {choices}{_yaml_bool_hint(instance)}"
    elif kind in ("minItems", "minLength") and len(instance) == 0:
        yield path, "must not be empty"
    elif kind == "maxItems":
        yield (
            path,
            (
                f"has {len(instance)} items, at most {error.validator_value} allowed "
                "(one rate per dimension: bytes and count)"
            ),
        )
    elif kind in _BOUNDS:
        yield path, f"must be {_BOUNDS[kind]} {error.validator_value!r}, not {_short(instance)}"
    elif kind == "uniqueItems":
        yield path, f"{_short(instance)} has duplicate items"
    else:
        yield path, error.message


# ---------------------------------------------------------------------------------------------
# From validated data to values
# ---------------------------------------------------------------------------------------------

_METRICS: Final[dict[str, Metric]] = {"flat": "flat", "cum": "cum"}
_SEVERITIES: Final[dict[str, Severity]] = {"fail": "fail", "warn": "warn", "ignore": "ignore"}


class _Parser:
    """Builds the values and adds the checks JSON Schema cannot express.

    Written defensively: it runs even when the schema found errors (so that one run reports a
    bad regex *and* a misspelt key), silently skipping anything of the wrong shape, which the
    schema has already reported.
    """

    def __init__(self, errors: list[tuple[_Path, str]]) -> None:
        self.errors = errors

    def error(self, path: _Path, message: str) -> None:
        self.errors.append((path, message))

    # -- scalars ---------------------------------------------------------------------------

    def percent(self, obj: Mapping[str, Any], key: str, path: _Path) -> float | None | Inherit:
        if key not in obj:
            return INHERIT
        value = obj[key]
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return INHERIT
        try:
            return parse_percent(value)
        except ValueError as exc:
            # Report only what the schema let through (NaN, overflow), not its own findings.
            schema_accepted = (
                re.fullmatch(PERCENT_PATTERN, value) is not None
                if isinstance(value, str)
                else not value < 0
            )
            if schema_accepted:
                self.error((*path, key), str(exc))
            return INHERIT

    def amounts(
        self, obj: Mapping[str, Any], key: str, path: _Path
    ) -> tuple[Quantity, ...] | Inherit:
        """Like :meth:`rates`, for amounts (limits on levels)."""
        return self.rates(obj, key, path, parse=parse_amount, pattern=AMOUNT_PATTERN,
                          what="amount")

    def rates(
        self, obj: Mapping[str, Any], key: str, path: _Path,
        parse: Callable[[str], Quantity] = parse_rate, pattern: str = RATE_PATTERN,
        what: str = "rate",
    ) -> tuple[Quantity, ...] | Inherit:
        if key not in obj:
            return INHERIT
        value = obj[key]
        if value is None:
            return ()
        items: list[tuple[_Path, object]]
        if isinstance(value, str):
            items = [((*path, key), value)]
        elif isinstance(value, list):
            items = [((*path, key, i), item) for i, item in enumerate(value)]
        else:
            return INHERIT
        quantities: list[Quantity] = []
        seen: set[str] = set()
        for item_path, item in items:
            if not isinstance(item, str):
                continue
            try:
                quantity = parse(item)
            except ValueError as exc:
                if re.fullmatch(pattern, item):  # else the schema already said so
                    self.error(item_path, str(exc))
                continue
            if quantity.dimension in seen:
                self.error(
                    item_path,
                    f"second {quantity.dimension} {what} {item!r}: give at most one {what} "
                    "per dimension (one for bytes, one for counts)",
                )
                continue
            seen.add(quantity.dimension)
            quantities.append(quantity)
        return tuple(quantities)

    def sample_types(
        self, obj: Mapping[str, Any], key: str = "sample_types"
    ) -> tuple[str, ...] | None:
        value = obj.get(key)
        if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return tuple(dict.fromkeys(value))
        return None

    def confidence(self, obj: Mapping[str, Any], path: _Path) -> float | None:
        value = obj.get("confidence")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if not 0 < value < 1:  # also catches NaN, which the schema's bounds let through
            if math.isnan(value):
                self.error((*path, "confidence"), "must be a number between 0 and 1, not NaN")
            return None
        return float(value)

    @staticmethod
    def metric(obj: Mapping[str, Any]) -> Metric | None:
        value = obj.get("metric")
        return _METRICS.get(value) if isinstance(value, str) else None

    @staticmethod
    def severity(obj: Mapping[str, Any]) -> Severity | None:
        value = obj.get("severity")
        return _SEVERITIES.get(value) if isinstance(value, str) else None

    # -- sections --------------------------------------------------------------------------

    def limit_overrides(self, obj: Mapping[str, Any], path: _Path) -> LimitOverrides:
        return LimitOverrides(
            max_increase_pct=self.percent(obj, "max_increase", path),
            max_increase_rate=self.rates(obj, "max_increase_rate", path),
            max_rate=self.rates(obj, "max_rate", path),
            max_increase_level=self.amounts(obj, "max_increase_level", path),
            max_level=self.amounts(obj, "max_level", path),
        )

    def defaults_override(self, obj: object, path: _Path) -> DefaultsOverride:
        if not isinstance(obj, dict):
            return DefaultsOverride()
        sample_types = self.sample_types(obj)
        metric = self.metric(obj)
        severity = self.severity(obj)
        confidence = self.confidence(obj, path)
        return DefaultsOverride(
            sample_types=INHERIT if sample_types is None else sample_types,
            metric=INHERIT if metric is None else metric,
            limits=self.limit_overrides(obj, path),
            noise_floor=self.rates(obj, "noise_floor", path),
            severity=INHERIT if severity is None else severity,
            confidence=INHERIT if confidence is None else confidence,
            noise_floor_level=self.amounts(obj, "noise_floor_level", path),
        )

    def rule(self, obj: object, path: _Path) -> Rule | None:
        if not isinstance(obj, dict):
            return None
        name, match = obj.get("name"), obj.get("match")
        limits = self.limit_overrides(obj, path)
        confidence = self.confidence(obj, path)
        if not isinstance(name, str) or not isinstance(match, str) or not match:
            return None
        try:
            matcher = Matcher.parse(match)
        except ValueError as exc:
            self.error((*path, "match"), str(exc))
            return None
        description = obj.get("description")
        return Rule(
            name=name,
            match=matcher,
            sample_types=self.sample_types(obj),
            metric=self.metric(obj),
            limits=limits,
            severity=self.severity(obj),
            confidence=confidence,
            description=description if isinstance(description, str) else "",
        )

    def rules(
        self, obj: object, path: _Path, defaults: Defaults, taken: dict[str, _Path]
    ) -> tuple[Rule, ...]:
        if not isinstance(obj, list):
            return ()
        rules: list[Rule] = []
        for i, item in enumerate(obj):
            rule_path = (*path, i)
            rule = self.rule(item, rule_path)
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                self.check_name(item["name"], (*rule_path, "name"), taken)
            if rule is None:
                continue
            self.check_dimensions(
                rule.sample_types or defaults.sample_types,
                rule_path,
                max_increase_rate=rule.limits.max_increase_rate,
                max_rate=rule.limits.max_rate,
                max_increase_level=rule.limits.max_increase_level,
                max_level=rule.limits.max_level,
            )
            rules.append(rule)
        return tuple(rules)

    def check_name(self, name: str, path: _Path, taken: dict[str, _Path]) -> None:
        """Rule names identify findings in reports, so they must be unambiguous."""
        if name in _RESERVED_NAMES:
            self.error(path, f"{name!r} is reserved, choose another rule name")
        elif name in taken:
            self.error(path, f"duplicate rule name {name!r} (also at {format_path(taken[name])})")
        else:
            taken[name] = path

    def check_dimensions(
        self, sample_types: Sequence[str], path: _Path, **limits: tuple[Quantity, ...] | Inherit
    ) -> None:
        """Reject rate limits that can never apply: no rate of any gated sample type's dimension."""
        dimensions = {_sample_type_dimension(name) for name in sample_types}
        if None in dimensions or not dimensions:
            return  # some sample type's dimension is unknown by name: cannot judge
        for key, quantities in limits.items():
            if isinstance(quantities, Inherit) or not quantities:
                continue
            if not any(q.dimension in dimensions for q in quantities):
                texts = ", ".join(repr(q.text) for q in quantities)
                rate_dims = " and ".join(sorted({q.dimension for q in quantities}))
                what = "amount" if "level" in key else "rate"
                self.error(
                    (*path, key),
                    f"{texts} is a {rate_dims} {what} but sample_types "
                    f"[{', '.join(sample_types)}] are all "
                    f"{' and '.join(sorted(str(d) for d in dimensions))}, so "
                    "the limit would never apply",
                )

    def total(
        self, data: Mapping[str, Any], defaults: Defaults, base: TotalRule | None
    ) -> TotalRule | None:
        if "total" not in data:
            return base
        obj = data["total"]
        if not isinstance(obj, dict):
            return None
        path: _Path = ("total",)
        sample_types = self.sample_types(obj)
        overrides = self.limit_overrides(obj, path)
        self.check_dimensions(
            sample_types or defaults.sample_types,
            path,
            max_increase_rate=overrides.max_increase_rate,
            max_rate=overrides.max_rate,
            max_increase_level=overrides.max_increase_level,
            max_level=overrides.max_level,
        )
        return TotalRule(
            sample_types=sample_types,
            limits=Limits().with_overrides(overrides),
            severity=self.severity(obj),
        )

    def new_functions(
        self, data: Mapping[str, Any], defaults: Defaults, base: NewFunctionsRule | None
    ) -> NewFunctionsRule | None:
        if "new_functions" not in data:
            return base
        obj = data["new_functions"]
        if not isinstance(obj, dict):
            return None
        path: _Path = ("new_functions",)
        sample_types = self.sample_types(obj)
        max_rate = self.rates(obj, "max_rate", path)
        max_level = self.amounts(obj, "max_level", path)
        self.check_dimensions(sample_types or defaults.sample_types, path, max_rate=max_rate,
                              max_level=max_level)
        return NewFunctionsRule(
            sample_types=sample_types,
            max_rate=() if isinstance(max_rate, Inherit) else max_rate,
            severity=self.severity(obj),
            max_level=() if isinstance(max_level, Inherit) else max_level,
        )

    def check_defaults(self, override: DefaultsOverride, merged: Defaults, path: _Path) -> None:
        """Check the rate keys written here against the sample types in effect here."""
        self.check_dimensions(
            merged.sample_types,
            path,
            max_increase_rate=override.limits.max_increase_rate,
            noise_floor=override.noise_floor,
            max_increase_level=override.limits.max_increase_level,
            noise_floor_level=override.noise_floor_level,
        )

    def component(
        self, name: str, obj: object, defaults: Defaults, taken: dict[str, _Path]
    ) -> ComponentPolicy:
        path: _Path = ("components", name)
        if not isinstance(obj, dict):
            return ComponentPolicy(name, None, DefaultsOverride(), ())
        duration: float | None = None
        raw = obj.get("duration")
        if isinstance(raw, str):
            try:
                duration = parse_duration(raw)
            except ValueError as exc:
                if re.fullmatch(DURATION_PATTERN, raw):
                    self.error((*path, "duration"), str(exc))
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
            if raw > 0 and math.isfinite(raw):
                duration = float(raw)
            elif raw > 0:
                self.error((*path, "duration"), f"{raw!r} is not a finite duration")
        work: float | None = None
        raw_work = obj.get("work")
        if isinstance(raw_work, (int, float)) and not isinstance(raw_work, bool):
            if raw_work > 0 and math.isfinite(raw_work):
                work = float(raw_work)
            elif raw_work > 0:
                self.error((*path, "work"), f"{raw_work!r} is not a finite amount of work")
        override = self.defaults_override(obj.get("defaults"), (*path, "defaults"))
        merged = override.apply(defaults)
        self.check_defaults(override, merged, (*path, "defaults"))
        # Names must be unique within the component and against the global rules, which the
        # component's rules are concatenated with.
        rules = self.rules(obj.get("rules"), (*path, "rules"), merged, dict(taken))
        return ComponentPolicy(name, duration, override, rules, work)

    def policy(self, data: Mapping[str, Any], source: str, base: _Base) -> Policy:
        override = self.defaults_override(data.get("defaults"), ("defaults",))
        defaults = override.apply(base.defaults)
        self.check_defaults(override, defaults, ("defaults",))
        taken: dict[str, _Path] = {}
        rules = self.rules(data.get("rules"), ("rules",), defaults, taken)
        components: dict[str, ComponentPolicy] = {}
        raw_components = data.get("components")
        if isinstance(raw_components, dict):
            for name, obj in raw_components.items():
                components[name] = self.component(name, obj, defaults, taken)
        version = data.get("version")
        return Policy(
            version=version if isinstance(version, int) and not isinstance(version, bool) else 1,
            source=source,
            defaults=defaults,
            rules=rules,
            total=self.total(data, defaults, base.total),
            new_functions=self.new_functions(data, defaults, base.new_functions),
            components=_frozen_map(components),
        )
