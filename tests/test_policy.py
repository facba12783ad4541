"""Policy loading, validation messages, and rule resolution."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

from memgate import quantities
from memgate.errors import PolicyError
from memgate.policy import (
    INHERIT,
    Limits,
    Matcher,
    Policy,
    default_policy,
    format_path,
    increase_crossed,
    limit_for,
    load_policy,
    load_policy_data,
    policy_schema,
    sample_type_index,
    sample_type_matches,
)
from memgate.quantities import parse_amount, parse_rate

POLICIES = Path(__file__).parent / "policies"
INVALID = sorted((POLICIES / "invalid").glob("*.yml"))
VALID = sorted((POLICIES / "valid").glob("*"))
LITERAL_STORE = "encoding/json.(*decodeState).literalStore"
MiB = 1024.0**2


def load(text: str, source: str = "inline.yml") -> Policy:
    return load_policy_data(yaml.safe_load(text), source)


def expectations(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect:").strip()
        for line in path.read_text().splitlines()
        if line.startswith("# expect:")
    ]


# ---------------------------------------------------------------------------------------------
# Invalid policies: one PolicyError naming the offending path
# ---------------------------------------------------------------------------------------------


def test_there_are_enough_invalid_policies() -> None:
    assert len(INVALID) >= 15
    assert all(expectations(p) for p in INVALID), "every invalid policy states what it expects"


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_policy_is_reported_with_its_path(path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    error = info.value
    assert error.source == str(path)
    assert error.slug == "policy-invalid"
    assert "\n" not in error.message, "one line, for the CLI"
    for expected in expectations(path):
        assert expected in error.message
    assert str(error).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Inline cases for shapes a file comment cannot describe as well.
        (
            '{"version": 1, "rules": [{"name": "a", "match": "a", "severity": 1}]}',
            "rules[0].severity",
        ),
        ("version: 1\ntotal: {max_increase: 10%, bogus: 1}", "total.bogus: unknown key"),
        (
            "version: 1\nnew_functions: {max_increase: 10%}",
            "new_functions.max_increase: unknown key",
        ),
        (
            "version: 1\ncomponents: {api: {rules: [{name: x, match: '', }]}}",
            "components.api.rules[0].match: must not be empty",
        ),
        (
            "version: 1\ncomponents: {api: {defaults: {noise_floor: 1KiB}}}",
            "components.api.defaults.noise_floor: '1KiB' does not match the rate format",
        ),
        (
            "version: 1\ncomponents: {a.b: {duration: -1}}",
            'components["a.b"].duration: must be greater than 0',
        ),
        (
            "version: 1\ndefaults: {sample_types: [inuse_space], noise_floor: 5k/min}",
            "defaults.noise_floor: '5k/min' is a count rate",
        ),
        ("version: true", "version: must be 1, not True"),
    ],
)
def test_invalid_inline_policy(text: str, expected: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(expected)):
        load(text)


def test_policy_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="policy file not found") as info:
        load_policy(tmp_path / "nope.yml")
    assert info.value.source == str(tmp_path / "nope.yml")


def test_policy_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="is a directory"):
        load_policy(tmp_path)


def test_policy_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes("version: 1 # caf\xe9\n".encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(path)


def test_yaml_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "tabs.yml"
    path.write_text("version: 1\ndefaults:\n\tmetric: flat\n")
    with pytest.raises(PolicyError, match=r"YAML syntax error at line 3, column 1"):
        load_policy(path)


@pytest.mark.parametrize("data", [None, [], "version: 1", 1])
def test_non_mapping_top_level(data: object) -> None:
    with pytest.raises(PolicyError, match="empty|must be a mapping"):
        load_policy_data(data, "x")


# ---------------------------------------------------------------------------------------------
# Valid policies
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_policy_loads(path: Path) -> None:
    policy = load_policy(path)
    assert policy.version == 1
    assert policy.source == str(path)
    assert policy.component is None
    assert policy.duration_seconds is None


def test_yaml_and_json_give_the_same_policy() -> None:
    from_yaml = load_policy(POLICIES / "valid" / "full.yml")
    from_json = load_policy(str(POLICIES / "valid" / "full.json"))
    assert dataclasses.replace(from_json, source=from_yaml.source) == from_yaml


def test_docs_example_is_the_full_test_policy() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "policy.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.DOTALL)
    example = next(b for b in blocks if "version: 1" in b)
    from_docs = load(example, source="docs")
    from_file = load_policy(POLICIES / "valid" / "full.yml")
    assert dataclasses.replace(from_docs, source=from_file.source) == from_file


def test_full_example_values() -> None:
    policy = load_policy(POLICIES / "valid" / "full.yml")
    first = policy.rules[0]
    assert first.name == "json-literal-store"
    assert first.match.kind == "exact"
    assert first.sample_types == ("inuse_objects",)
    assert first.limits.max_level == (parse_amount("100k"),)
    assert first.limits.max_increase_pct is INHERIT
    assert first.description.startswith("The JSON decoder")
    assert [r.match.kind for r in policy.rules] == ["exact", "glob", "regex"]
    assert policy.total is not None and policy.total.limits.max_increase_pct == 10.0
    assert policy.new_functions is not None and policy.new_functions.severity == "warn"
    assert list(policy.components) == ["ingest"]
    ingest = policy.components["ingest"]
    assert ingest.duration_seconds == 48 * 3600
    assert ingest.rules[0].limits.max_increase_pct is None  # explicit null
    assert policy.gated_sample_types() == (
        "inuse_space",
        "inuse_objects",
        "alloc_space",
        "alloc_objects",
    )


def test_policy_is_immutable() -> None:
    policy = default_policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.version = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.components["x"] = None  # type: ignore[index]


# ---------------------------------------------------------------------------------------------
# The default policy
# ---------------------------------------------------------------------------------------------


def test_default_policy_numbers() -> None:
    policy = default_policy()
    d = policy.defaults
    assert d.sample_types == ("inuse_space", "inuse_objects", "alloc_space", "alloc_objects")
    assert d.metric == "flat"
    assert d.severity == "fail"
    assert d.confidence == 0.99
    assert d.limits.max_increase_pct == 20.0
    assert d.limits.increase_rate_for("bytes") == parse_rate("1MiB/min")
    assert d.limits.increase_rate_for("count") == parse_rate("10k/min")
    assert d.limits.max_rate == ()
    assert policy.total is not None
    assert (policy.total.limits.max_increase_pct, policy.total.severity) == (10.0, "warn")
    assert policy.new_functions is not None
    assert policy.new_functions.severity == "warn"
    assert limit_for(policy.new_functions.max_rate, "bytes") == parse_rate("1MiB/min")


def test_default_noise_floor_is_below_the_absolute_limits() -> None:
    # Two rates both below the floor differ by less than the floor: the floor must never hide
    # a change the absolute limit would flag.
    d = default_policy().defaults
    for dimension in ("bytes", "count"):
        floor = limit_for(d.noise_floor, dimension)
        limit = d.limits.increase_rate_for(dimension)
        assert floor is not None and limit is not None
        assert floor.value < limit.value


def test_default_policy_file_validates_against_the_schema() -> None:
    import importlib.resources

    text = (importlib.resources.files("memgate") / "data" / "default-policy.yml").read_text()
    errors = list(Draft202012Validator(policy_schema()).iter_errors(yaml.safe_load(text)))
    assert errors == []


def test_default_policy_is_cached() -> None:
    assert default_policy() is default_policy()


def test_left_out_parts_come_from_the_default_policy() -> None:
    policy = load("version: 1\ndefaults: {max_increase: 5%}")
    builtin = default_policy()
    assert policy.defaults.limits.max_increase_pct == 5.0
    assert policy.defaults.limits.max_increase_rate == builtin.defaults.limits.max_increase_rate
    assert policy.defaults.noise_floor == builtin.defaults.noise_floor
    assert policy.total == builtin.total
    assert policy.new_functions == builtin.new_functions


def test_null_switches_off_sections_and_limits() -> None:
    policy = load(
        "version: 1\ndefaults: {max_increase_rate: null, noise_floor: null}\n"
        "total: null\nnew_functions: null"
    )
    assert policy.defaults.limits.max_increase_rate == ()
    assert policy.defaults.limits.max_increase_pct == 20.0
    assert policy.defaults.noise_floor == ()
    assert policy.total is None
    assert policy.new_functions is None
    assert policy.resolve_total("inuse_space") is None


# ---------------------------------------------------------------------------------------------
# The schema
# ---------------------------------------------------------------------------------------------


def test_schema_is_a_valid_2020_12_schema() -> None:
    schema = policy_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://memgate.dev/schemas/policy.schema.json"
    assert schema["title"] and schema["description"]


def _object_schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "properties" in node or node.get("type") == "object":
            yield node
        for value in node.values():
            yield from _object_schemas(value)
    elif isinstance(node, list):
        for item in node:
            yield from _object_schemas(item)


def test_schema_closes_every_object() -> None:
    objects = list(_object_schemas(policy_schema()))
    assert len(objects) >= 7
    for obj in objects:
        assert obj.get("additionalProperties") is False, obj.get("title")
        for name, prop in obj.get("properties", {}).items():
            if name not in ("$schema",):
                assert "description" in prop, name


def test_schema_patterns_are_the_parser_grammar() -> None:
    text = json.dumps(policy_schema())
    for pattern in (
        quantities.RATE_PATTERN,
        quantities.PERCENT_PATTERN,
        quantities.DURATION_PATTERN,
    ):
        assert json.dumps(pattern) in text


@pytest.mark.parametrize(
    "text", ["1MiB/h", "1 MiB/h", "100k/h", "10 objects/s", "1GB/d", "1MiB", "10k per min", "1mb/h"]
)
def test_schema_and_parser_agree_on_rates(text: str) -> None:
    try:
        parse_rate(text)
        parsed = True
    except ValueError:
        parsed = False
    assert (re.search(quantities.RATE_PATTERN, text) is not None) == parsed


def test_policy_schema_returns_a_copy() -> None:
    policy_schema()["title"] = "changed"
    assert policy_schema()["title"] == "memgate policy"


# ---------------------------------------------------------------------------------------------
# Matchers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "kind", "matching", "not_matching"),
    [
        (
            LITERAL_STORE,
            "exact",
            [LITERAL_STORE],
            [
                "encoding/json.(decodeState).literalStore",
                "encoding/json.(*decodeState).literalStoreX",
                "encoding/json.(*xdecodeState).literalStore",
            ],
        ),
        (
            "encoding/json.(*decodeState).*",
            "glob",
            [LITERAL_STORE, "encoding/json.(*decodeState).object"],
            ["encoding/json.(*encodeState).marshal", "encoding/json.(decodeState).object"],
        ),
        (
            "encoding/json.*",
            "glob",
            [LITERAL_STORE, "encoding/json.Unmarshal"],
            ["encoding/xml.Unmarshal"],
        ),
        ("*literalStore", "glob", [LITERAL_STORE], ["literalStore2"]),
        ("runtime.mall?cgc", "glob", ["runtime.mallocgc"], ["runtime.mallocgcX"]),
        ("runtime.[mn]alg", "glob", ["runtime.malg", "runtime.nalg"], ["runtime.xalg"]),
        ("pkg.[*]", "glob", ["pkg.*"], ["pkg.x"]),
        (
            "sync/atomic.(*Pointer[...]).Load",
            "exact",
            ["sync/atomic.(*Pointer[...]).Load"],
            ["sync/atomic.(*Pointer[.]).Load"],
        ),
        (
            "sync/atomic.(*Pointer[...]).*",
            "glob",
            ["sync/atomic.(*Pointer[...]).Load"],
            ["sync/atomic.(*Pointer[x]).Load"],
        ),
        ("main.main", "exact", ["main.main"], ["main.mainx", "xmain.main", "main_main"]),
        (
            r"re:encoding/json\.\(\*decodeState\)\..*",
            "regex",
            [LITERAL_STORE],
            ["encoding/json.(*encodeState).marshal"],
        ),
        (r"re:runtime\.malg", "regex", ["runtime.malg"], ["runtime.malgX", "xruntime.malg"]),
        ("re:.*(json|xml).*", "regex", [LITERAL_STORE, "encoding/xml.Unmarshal"], ["main.main"]),
    ],
)
def test_matcher(pattern: str, kind: str, matching: list[str], not_matching: list[str]) -> None:
    matcher = Matcher.parse(pattern)
    assert matcher.kind == kind
    assert matcher.pattern == pattern
    for name in matching:
        assert matcher.matches(name), name
    for name in not_matching:
        assert not matcher.matches(name), name


def test_regex_matcher_does_not_match_its_own_text() -> None:
    assert not Matcher.parse("re:a+").matches("re:a+")


def test_bad_regex() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        Matcher.parse("re:*")


# ---------------------------------------------------------------------------------------------
# Sample types
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy_name", "profile_type", "expected"),
    [
        ("inuse_space", "inuse_space", True),
        ("inuse_space", "space", True),
        ("inuse_objects", "objects", True),
        ("space", "inuse_space", False),
        ("alloc_space", "space", False),
        ("inuse_space", "inuse_objects", False),
        ("alloc_in_new_tlab_bytes", "alloc_in_new_tlab_bytes", True),
    ],
)
def test_sample_type_matches(policy_name: str, profile_type: str, expected: bool) -> None:
    assert sample_type_matches(policy_name, profile_type) is expected


def test_sample_type_index_prefers_exact_names() -> None:
    assert sample_type_index("inuse_space", ["objects", "space"]) == 1
    assert sample_type_index("inuse_space", ["space", "inuse_space"]) == 1
    assert sample_type_index("alloc_space", ["objects", "space"]) is None


# ---------------------------------------------------------------------------------------------
# Resolution
# ---------------------------------------------------------------------------------------------

RESOLUTION = """
version: 1
defaults:
  sample_types: [inuse_space, inuse_objects, alloc_space]
  max_increase: 20%
  max_increase_rate: [1MiB/min, 10k/min]
  confidence: 0.95
rules:
  - name: literal-store-objects
    match: "encoding/json.(*decodeState).literalStore"
    sample_types: [inuse_objects]
    max_rate: 100k/h
  - name: json-warn
    match: "encoding/json.*"
    severity: warn
    max_increase: 50%
  - name: json-never
    match: "encoding/json.Unmarshal"
    severity: ignore
  - name: tlab
    match: "*"
    sample_types: [alloc_in_new_tlab_bytes]
    metric: cum
  - name: quiet
    match: "re:quiet\\\\..*"
    max_increase_rate: null
    confidence: 0.5
components:
  api:
    duration: 1h30m
    defaults:
      severity: warn
      max_increase: 5%
    rules:
      - name: api-json
        match: "encoding/json.Unmarshal"
        severity: fail
"""


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load(RESOLUTION)


def test_first_matching_rule_wins(policy: Policy) -> None:
    # json-never would match too, but json-warn comes first.
    effective = policy.resolve("encoding/json.Unmarshal", "inuse_space")
    assert effective is not None
    assert (effective.rule_name, effective.severity) == ("json-warn", "warn")


def test_rule_applies_only_to_its_sample_types(policy: Policy) -> None:
    objects = policy.resolve(LITERAL_STORE, "inuse_objects")
    space = policy.resolve(LITERAL_STORE, "inuse_space")
    assert objects is not None and space is not None
    assert objects.rule_name == "literal-store-objects"
    assert objects.limits.max_rate_for("count") == parse_rate("100k/h")
    assert space.rule_name == "json-warn"  # the next rule covering inuse_space


def test_inheritance_from_defaults(policy: Policy) -> None:
    effective = policy.resolve(LITERAL_STORE, "inuse_objects")
    assert effective is not None
    assert effective.metric == "flat"
    assert effective.severity == "fail"
    assert effective.confidence == 0.95
    assert effective.limits.max_increase_pct == 20.0
    assert effective.limits.increase_rate_for("count") == parse_rate("10k/min")
    assert effective.noise_floor == default_policy().defaults.noise_floor
    warn = policy.resolve("encoding/json.Marshal", "alloc_space")
    assert warn is not None
    assert warn.limits.max_increase_pct == 50.0
    assert warn.limits.increase_rate_for("bytes") == parse_rate("1MiB/min")


def test_null_on_a_rule_clears_the_inherited_limit(policy: Policy) -> None:
    effective = policy.resolve("quiet.thing", "inuse_space")
    assert effective is not None
    assert effective.rule_name == "quiet"
    assert effective.limits.max_increase_rate == ()
    assert effective.limits.max_increase_pct == 20.0
    assert effective.confidence == 0.5


def test_unmatched_function_gets_the_defaults(policy: Policy) -> None:
    effective = policy.resolve("main.main", "alloc_space")
    assert effective is not None
    assert effective.rule_name == "defaults"
    assert effective.sample_type == "alloc_space"
    assert effective.limits == policy.defaults.limits


def test_sample_type_not_gated(policy: Policy) -> None:
    assert policy.resolve("main.main", "alloc_objects") is None
    assert policy.resolve("main.main", "cpu") is None


def test_rule_can_gate_a_sample_type_the_defaults_do_not(policy: Policy) -> None:
    effective = policy.resolve("main.main", "alloc_in_new_tlab_bytes")
    assert effective is not None
    assert (effective.rule_name, effective.metric) == ("tlab", "cum")


def test_inuse_fallback_for_two_column_profiles(policy: Policy) -> None:
    space = policy.resolve("main.main", "space")
    objects = policy.resolve(LITERAL_STORE, "objects")
    assert space is not None and objects is not None
    assert (space.rule_name, space.sample_type) == ("defaults", "space")
    assert objects.rule_name == "literal-store-objects"


def test_component_rules_come_first(policy: Policy) -> None:
    api = policy.for_component("api")
    assert api.component == "api"
    assert api.duration_seconds == 5400.0
    assert [r.name for r in api.rules][:2] == ["api-json", "literal-store-objects"]
    effective = api.resolve("encoding/json.Unmarshal", "inuse_space")
    assert effective is not None
    assert (effective.rule_name, effective.severity) == ("api-json", "fail")


def test_component_defaults_override_key_by_key(policy: Policy) -> None:
    api = policy.for_component("api")
    assert api.defaults.severity == "warn"
    assert api.defaults.limits.max_increase_pct == 5.0
    assert api.defaults.limits.max_increase_rate == policy.defaults.limits.max_increase_rate
    assert api.defaults.confidence == 0.95
    effective = api.resolve("main.main", "inuse_space")
    assert effective is not None
    assert (effective.rule_name, effective.severity) == ("defaults", "warn")
    # A global rule under the component inherits the component's defaults.
    literal = api.resolve(LITERAL_STORE, "inuse_objects")
    assert literal is not None
    assert (literal.severity, literal.limits.max_increase_pct) == ("warn", 5.0)


def test_component_selection(policy: Policy) -> None:
    assert policy.for_component(None) is policy
    assert policy.duration_seconds is None
    api = policy.for_component("api")
    assert api.components == {}
    with pytest.raises(
        PolicyError, match=r"unknown component 'web' \(components in this policy: api\)"
    ):
        policy.for_component("web")
    with pytest.raises(PolicyError, match="unknown component"):
        api.for_component("api")


def test_resolve_total(policy: Policy) -> None:
    total = policy.resolve_total("inuse_space")
    assert total is not None
    assert total.rule_name == "total"
    assert total.limits.max_increase_pct == 10.0
    assert total.severity == "warn"
    assert total.noise_floor == ()
    assert policy.resolve_total("alloc_objects") is None


def test_resolve_new_function(policy: Policy) -> None:
    new = policy.resolve_new_function("main.fresh", "inuse_space")
    assert new is not None
    assert new.rule_name == "new_functions"
    assert new.severity == "warn"
    assert new.limits.max_increase_pct is None
    assert new.limits.max_rate_for("bytes") == parse_rate("1MiB/min")
    # An explicit rule is more specific than new_functions.
    ruled = policy.resolve_new_function(LITERAL_STORE, "inuse_objects")
    assert ruled is not None and ruled.rule_name == "literal-store-objects"
    assert policy.resolve_new_function("main.fresh", "cpu") is None
    without = load("version: 1\nnew_functions: null").resolve_new_function("f", "inuse_space")
    assert without is not None and without.rule_name == "defaults"


# ---------------------------------------------------------------------------------------------
# Limit semantics
# ---------------------------------------------------------------------------------------------

BOTH = Limits(
    max_increase_pct=20.0, max_increase_rate=(parse_rate("60/min"), parse_rate("60B/min"))
)


@pytest.mark.parametrize(
    ("limits", "baseline", "candidate", "dimension", "exceeded"),
    [
        (BOTH, 100.0, 130.0, "count", True),  # +30%, +30/s: both crossed
        (BOTH, 100.0, 110.0, "count", False),  # +10%: relative not crossed
        (BOTH, 0.1, 0.9, "count", False),  # +800% but only +0.8/s: absolute not crossed
        (BOTH, 0.0, 2.0, "count", True),  # new: infinite relative, +2/s
        (BOTH, 0.0, 0.5, "count", False),
        (BOTH, 100.0, 120.0, "count", False),  # exactly 20%: not crossed
        (BOTH, 100.0, 80.0, "count", False),  # decrease
        (BOTH, 100.0, 130.0, "bytes", True),
        (Limits(max_increase_pct=20.0), 0.1, 0.9, "count", True),  # only relative: it decides
        (Limits(max_increase_rate=(parse_rate("1/s"),)), 1000.0, 1002.0, "count", True),
        (Limits(max_increase_rate=(parse_rate("1/s"),)), 1000.0, 1000.5, "count", False),
        # A count rate says nothing about bytes: the percentage alone decides there.
        (
            Limits(max_increase_pct=20.0, max_increase_rate=(parse_rate("1M/s"),)),
            100.0,
            130.0,
            "bytes",
            True,
        ),
        (Limits(max_increase_rate=(parse_rate("1M/s"),)), 100.0, 1e9, "bytes", False),
        (Limits(), 1.0, 1e12, "bytes", False),
    ],
)
def test_increase_exceeded(
    limits: Limits, baseline: float, candidate: float, dimension: str, exceeded: bool
) -> None:
    """The limits of one dimension (limit_for) through increase_crossed, as the gate's plan
    applies them."""
    rate = limit_for(limits.max_increase_rate, dimension)  # type: ignore[arg-type]
    crossed = increase_crossed(np.array([baseline]), np.array([candidate]),
                               limits.max_increase_pct, None if rate is None else rate.value)
    assert bool(crossed[0]) is exceeded


def test_default_noise_floor() -> None:
    effective = default_policy().resolve("main.main", "inuse_space")
    assert effective is not None
    floor = effective.noise_floor_for("bytes")
    assert floor is not None and floor.value == pytest.approx(512 * 1024 / 60)


def test_limit_for() -> None:
    rates = (parse_rate("1MiB/min"), parse_rate("10k/min"))
    assert limit_for(rates, "bytes") == rates[0]
    assert limit_for(rates, "count") == rates[1]
    assert limit_for(rates[:1], "count") is None
    assert rates[0].value == pytest.approx(MiB / 60)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "(top level)"),
        (("rules", 2, "max_increase"), "rules[2].max_increase"),
        (("components", "api", "rules", 0), "components.api.rules[0]"),
        (("components", "a b"), 'components["a b"]'),
        (("defaults", "max_increase_rate", 1), "defaults.max_increase_rate[1]"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


def test_level_limits_are_amounts_and_flow_limits_rates() -> None:
    policy = load_policy_data({"version": 1, "defaults": {
        "max_increase_level": ["4MiB", "30k"], "noise_floor_level": "1MiB"},
        "rules": [{"name": "cap", "match": "f", "max_level": "64MiB"}]}, "<test>")
    assert policy.defaults.limits.absolute_increase("bytes", level=True) == parse_amount("4MiB")
    assert policy.defaults.limits.absolute_increase("count", level=True) == parse_amount("30k")
    # The built-in rate limit still applies to flows.
    assert policy.defaults.limits.absolute_increase("bytes", level=False) == parse_rate("1MiB/min")
    eff = policy.resolve("f", "inuse_space")
    assert eff is not None and eff.limits.ceiling("bytes", level=True) == parse_amount("64MiB")
    assert eff.noise_floor_for("bytes", level=True) == parse_amount("1MiB")


@pytest.mark.parametrize(("data", "message"), [
    ({"defaults": {"max_increase_level": "4MiB/min"}}, "does not match the amount format"),
    ({"defaults": {"max_increase_level": ["4MiB", "8MiB"]}}, "second bytes amount"),
    ({"components": {"c": {"work": 0}}}, "work"),
])
def test_bad_level_limits_and_work(data: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message) if "(" in message else message):
        load_policy_data({"version": 1, **data}, "<test>")


def test_component_work_reaches_the_policy() -> None:
    policy = load_policy_data({"version": 1, "components": {"c": {"work": 400000,
                                                                  "duration": "15s"}}}, "<t>")
    assert policy.for_component("c").work == 400000
    assert policy.for_component("c").duration_seconds == 15


def test_one_rule_loop_for_old_and_new_functions() -> None:
    """resolve and resolve_new_function find the rule the same way (rule_for); only the
    fallback for an unmatched function differs (new_functions for a new one)."""
    pol = load_policy_data({
        "version": 1,
        "defaults": {"sample_types": ["inuse_space", "alloc_space"]},
        "rules": [{"name": "only-alloc", "match": "f*", "sample_types": ["alloc_space"],
                   "severity": "warn"},
                  {"name": "all-f", "match": "f*", "severity": "ignore"}],
        "new_functions": {"max_rate": "1MiB/s", "sample_types": ["alloc_space"]},
    }, "<test>")
    assert [r.name for r in pol.rules_for("inuse_space")] == ["all-f"]
    assert [r.name for r in pol.rules_for("alloc_space")] == ["only-alloc", "all-f"]
    for resolve in (pol.resolve, pol.resolve_new_function):
        eff = resolve("foo", "alloc_space")
        assert eff is not None and eff.rule_name == "only-alloc" and eff.severity == "warn"
        eff = resolve("foo", "inuse_space")
        assert eff is not None and eff.rule_name == "all-f"
    old, new = pol.resolve("bar", "alloc_space"), pol.resolve_new_function("bar", "alloc_space")
    assert old is not None and old.rule_name == "defaults"
    assert new is not None and new.rule_name == "new_functions"
    assert new == pol.unmatched("alloc_space", new=True)
    assert pol.resolve_new_function("bar", "inuse_space") == pol.unmatched("inuse_space", False)
