"""From validated policy data to values, with the checks JSON Schema cannot express."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from memgate.policy.matching import Matcher, sample_type_dimension
from memgate.policy.model import (
    INHERIT,
    RESERVED_NAMES,
    ComponentPolicy,
    Defaults,
    DefaultsOverride,
    Inherit,
    LimitOverrides,
    Limits,
    Metric,
    NewFunctionsRule,
    Policy,
    Rule,
    Severity,
    TotalRule,
    frozen_map,
)
from memgate.quantities import (
    AMOUNT_PATTERN,
    DURATION_PATTERN,
    PERCENT_PATTERN,
    RATE_PATTERN,
    Quantity,
    parse_amount,
    parse_duration,
    parse_percent,
    parse_rate,
)

#: A location in a policy document: keys and list indices from the top.
DocPath = tuple[str | int, ...]
_R = TypeVar("_R")


@dataclass(frozen=True)
class Base:
    """What a policy file's left-out parts fall back to."""

    defaults: Defaults
    total: TotalRule | None
    new_functions: NewFunctionsRule | None


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


_METRICS: Final[dict[str, Metric]] = {"flat": "flat", "cum": "cum"}
_SEVERITIES: Final[dict[str, Severity]] = {"fail": "fail", "warn": "warn", "ignore": "ignore"}


class Parser:
    """Builds the values and adds the checks JSON Schema cannot express.

    Written defensively: it runs even when the schema found errors (so that one run reports a
    bad regex *and* a misspelt key), silently skipping anything of the wrong shape, which the
    schema has already reported.
    """

    def __init__(self, errors: list[tuple[DocPath, str]]) -> None:
        self.errors = errors

    def error(self, path: DocPath, message: str) -> None:
        self.errors.append((path, message))

    # -- scalars ---------------------------------------------------------------------------

    def percent(self, obj: Mapping[str, Any], key: str, path: DocPath) -> float | None | Inherit:
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
        self, obj: Mapping[str, Any], key: str, path: DocPath
    ) -> tuple[Quantity, ...] | Inherit:
        """Like :meth:`rates`, for amounts (limits on levels)."""
        return self.rates(obj, key, path, parse=parse_amount, pattern=AMOUNT_PATTERN,
                          what="amount")

    def rates(
        self, obj: Mapping[str, Any], key: str, path: DocPath,
        parse: Callable[[str], Quantity] = parse_rate, pattern: str = RATE_PATTERN,
        what: str = "rate",
    ) -> tuple[Quantity, ...] | Inherit:
        if key not in obj:
            return INHERIT
        value = obj[key]
        if value is None:
            return ()
        items: list[tuple[DocPath, object]]
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

    def confidence(self, obj: Mapping[str, Any], path: DocPath) -> float | None:
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

    def limit_overrides(self, obj: Mapping[str, Any], path: DocPath) -> LimitOverrides:
        return LimitOverrides(
            max_increase_pct=self.percent(obj, "max_increase", path),
            max_increase_rate=self.rates(obj, "max_increase_rate", path),
            max_rate=self.rates(obj, "max_rate", path),
            max_increase_level=self.amounts(obj, "max_increase_level", path),
            max_level=self.amounts(obj, "max_level", path),
        )

    def defaults_override(self, obj: object, path: DocPath) -> DefaultsOverride:
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

    def rule(self, obj: object, path: DocPath) -> Rule | None:
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
        self, obj: object, path: DocPath, defaults: Defaults, taken: dict[str, DocPath]
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
            self.check_dimensions(rule.sample_types or defaults.sample_types, rule_path,
                                  **rule.limits.quantities())
            rules.append(rule)
        return tuple(rules)

    def check_name(self, name: str, path: DocPath, taken: dict[str, DocPath]) -> None:
        """Rule names identify findings in reports, so they must be unambiguous."""
        if name in RESERVED_NAMES:
            self.error(path, f"{name!r} is reserved, choose another rule name")
        elif name in taken:
            self.error(path, f"duplicate rule name {name!r} (also at {format_path(taken[name])})")
        else:
            taken[name] = path

    def check_dimensions(
        self, sample_types: Sequence[str], path: DocPath, **limits: tuple[Quantity, ...] | Inherit
    ) -> None:
        """Reject rate limits that can never apply: no rate of any gated sample type's dimension."""
        dimensions = {sample_type_dimension(name) for name in sample_types}
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

    def section(
        self, data: Mapping[str, Any], key: str, base: _R | None,
        parse: Callable[[dict[str, Any], DocPath], _R],
    ) -> _R | None:
        """An optional top-level section (``total``, ``new_functions``): one given replaces
        ``base`` whole; one that is not a mapping (the schema has said so) gives None."""
        if key not in data:
            return base
        obj = data[key]
        if not isinstance(obj, dict):
            return None
        return parse(obj, (key,))

    def total(self, obj: dict[str, Any], path: DocPath, defaults: Defaults) -> TotalRule:
        sample_types = self.sample_types(obj)
        overrides = self.limit_overrides(obj, path)
        self.check_dimensions(sample_types or defaults.sample_types, path,
                              **overrides.quantities())
        return TotalRule(
            sample_types=sample_types,
            limits=Limits().with_overrides(overrides),
            severity=self.severity(obj),
        )

    def new_functions(
        self, obj: dict[str, Any], path: DocPath, defaults: Defaults
    ) -> NewFunctionsRule:
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

    def check_defaults(self, override: DefaultsOverride, merged: Defaults, path: DocPath) -> None:
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
        self, name: str, obj: object, defaults: Defaults, taken: dict[str, DocPath]
    ) -> ComponentPolicy:
        path: DocPath = ("components", name)
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

    def policy(self, data: Mapping[str, Any], source: str, base: Base) -> Policy:
        override = self.defaults_override(data.get("defaults"), ("defaults",))
        defaults = override.apply(base.defaults)
        self.check_defaults(override, defaults, ("defaults",))
        taken: dict[str, DocPath] = {}
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
            total=self.section(data, "total", base.total,
                               lambda obj, path: self.total(obj, path, defaults)),
            new_functions=self.section(data, "new_functions", base.new_functions,
                                       lambda obj, path: self.new_functions(obj, path, defaults)),
            components=frozen_map(components),
        )

