"""The gate is a pure function: a truth table over rule kinds, severities and noise."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from memgate.compare import Comparison, SideRates
from memgate.errors import CompareError
from memgate.gate import TOTAL_FUNCTION, build_plan, evaluate, run_plan, verdict_of
from memgate.policy import increase_crossed, load_policy_data
from memgate.profile.model import ValueType

MiB = 1024 * 1024
TYPES = (ValueType("inuse_objects", "count"), ValueType("inuse_space", "bytes"))


def side(values: np.ndarray, var: np.ndarray | None = None) -> SideRates:
    """values: (k, n, T) per-run flat rates (cum = flat for these tests)."""
    k, n, t = values.shape
    return SideRates(
        runs=(), flat_runs=values, cum_runs=values, total_runs=values.sum(axis=1),
        flat_var=var, cum_var=var, total_var=None if var is None else var.sum(axis=0),
    )


def comparison(base: dict[str, tuple[float, float]], cand: dict[str, tuple[float, float]],
               *, var: float | None = None, types: tuple[ValueType, ...] = TYPES,
               base_runs: list[dict[str, tuple[float, float]]] | None = None,
               cand_runs: list[dict[str, tuple[float, float]]] | None = None) -> Comparison:
    """Per-function (objects/s, bytes/s) rates on each side."""
    names = tuple(dict.fromkeys([*base, *cand,
                                 *(k for r in (base_runs or []) for k in r),
                                 *(k for r in (cand_runs or []) for k in r)]))

    def arr(runs: list[dict[str, tuple[float, float]]]) -> np.ndarray:
        out = np.zeros((len(runs), len(names), len(types)))
        for r, rows in enumerate(runs):
            for i, nm in enumerate(names):
                out[r, i] = rows.get(nm, (0.0, 0.0))[: len(types)]
        return out

    b = arr(base_runs or [base])
    c = arr(cand_runs or [cand])
    v = None if var is None else np.full((len(names), len(types)), var)
    return Comparison(names=names, sample_types=types, normalized=True, baseline=side(b, v),
                      candidate=side(c, v), period=524288,
                      period_type=ValueType("space", "bytes"))


def policy(**defaults: Any) -> Any:
    data: dict[str, Any] = {"version": 1, "defaults": {"sample_types": ["inuse_space"],
                                                       "noise_floor": None,
                                                       "max_increase": None,
                                                       "max_increase_rate": None,
                                                       **defaults},
                            "total": None, "new_functions": None}
    rules = data["defaults"].pop("rules", None)
    for key in ("total", "new_functions"):
        if key in data["defaults"]:
            data[key] = data["defaults"].pop(key)
    if rules is not None:
        data["rules"] = rules
    return load_policy_data(data, "<test policy>")


# name -> (objects/s, bytes/s)
B = {"f": (100.0, 1 * MiB), "g": (10.0, 10 * MiB)}

CASES = [
    # (description, policy kwargs, candidate rates, expected verdict, expected findings)
    ("pct only, crossed", {"max_increase": "10%"}, {"f": (100, 1.2 * MiB), "g": B["g"]},
     "fail", [("f", "increase")]),
    ("pct only, not crossed", {"max_increase": "30%"}, {"f": (100, 1.2 * MiB), "g": B["g"]},
     "pass", []),
    ("pct exactly at the limit passes", {"max_increase": "20%"},
     {"f": (100, 1.2 * MiB), "g": B["g"]}, "pass", []),
    ("rate only, crossed", {"max_increase_rate": "100KiB/s"},
     {"f": (100, 1.2 * MiB), "g": B["g"]}, "fail", [("f", "increase")]),
    ("rate only, not crossed", {"max_increase_rate": "1MiB/s"},
     {"f": (100, 1.2 * MiB), "g": B["g"]}, "pass", []),
    ("both set, both crossed", {"max_increase": "10%", "max_increase_rate": "100KiB/s"},
     {"f": (100, 1.2 * MiB), "g": B["g"]}, "fail", [("f", "increase")]),
    ("both set, only pct crossed", {"max_increase": "10%", "max_increase_rate": "1MiB/s"},
     {"f": (100, 1.2 * MiB), "g": B["g"]}, "pass", []),
    ("both set, only rate crossed", {"max_increase": "50%", "max_increase_rate": "1MiB/s"},
     {"f": B["f"], "g": (10, 12 * MiB)}, "pass", []),
    ("warn severity", {"max_increase": "10%", "severity": "warn"},
     {"f": (100, 2 * MiB), "g": B["g"]}, "warn", [("f", "increase")]),
    ("ignore severity", {"max_increase": "10%", "severity": "ignore"},
     {"f": (100, 2 * MiB), "g": B["g"]}, "pass", []),
    ("decrease never fails", {"max_increase": "10%"}, {"f": (100, 0.1 * MiB), "g": B["g"]},
     "pass", []),
    ("noise floor hides small functions", {"max_increase": "10%", "noise_floor": "2MiB/s"},
     {"f": (100, 1.9 * MiB), "g": B["g"]}, "pass", []),
    ("noise floor does not hide a function that crosses it",
     {"max_increase": "10%", "noise_floor": "2MiB/s"}, {"f": (100, 3 * MiB), "g": B["g"]},
     "fail", [("f", "increase")]),
    ("ceiling crossed without any increase limit",
     {"rules": [{"name": "cap-g", "match": "g", "max_rate": "5MiB/s"}]},
     B, "fail", [("g", "ceiling")]),
    ("ceiling not crossed", {"rules": [{"name": "cap-g", "match": "g", "max_rate": "50MiB/s"}]},
     B, "pass", []),
    ("count limits do not apply to byte types",
     {"max_increase_rate": "1/s", "sample_types": ["inuse_space", "inuse_objects"]},
     {"f": (100, 2 * MiB), "g": B["g"]}, "pass", []),
    ("rule severity warn overrides default fail",
     {"max_increase": "10%", "rules": [{"name": "soft-f", "match": "f", "severity": "warn"}]},
     {"f": (100, 2 * MiB), "g": (10, 20 * MiB)}, "fail", [("g", "increase"), ("f", "increase")]),
    ("rule ignore silences one function",
     {"max_increase": "10%", "rules": [{"name": "quiet", "match": "g", "severity": "ignore"}]},
     {"f": B["f"], "g": (10, 20 * MiB)}, "pass", []),
    ("first matching rule wins",
     {"max_increase": "10%", "rules": [
         {"name": "lenient", "match": "f*", "max_increase": "500%"},
         {"name": "strict", "match": "f", "max_increase": "1%"}]},
     {"f": (100, 2 * MiB), "g": B["g"]}, "pass", []),
    ("new function under new_functions limit",
     {"new_functions": {"max_rate": "1MiB/s", "severity": "warn"}},
     {**B, "h": (1, 0.5 * MiB)}, "pass", []),
    ("new function over new_functions limit",
     {"new_functions": {"max_rate": "1MiB/s", "severity": "warn"}},
     {**B, "h": (1, 3 * MiB)}, "warn", [("h", "new")]),
    ("new function without new_functions: increase rules apply (infinite %)",
     {"max_increase": "10%", "max_increase_rate": "1MiB/s"},
     {**B, "h": (1, 3 * MiB)}, "fail", [("h", "increase")]),
    ("total rule", {"total": {"max_increase": "5%", "severity": "warn"}},
     {"f": (100, 2 * MiB), "g": B["g"]}, "warn", [(TOTAL_FUNCTION, "increase")]),
    ("ungated sample type is not checked", {"max_increase": "10%",
                                            "sample_types": ["inuse_space"]},
     {"f": (1000, 1 * MiB), "g": B["g"]}, "pass", []),
]


@pytest.mark.parametrize(("desc", "pol", "cand", "verdict", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_truth_table(desc: str, pol: dict[str, Any], cand: dict[str, tuple[float, float]],
                     verdict: str, expected: list[tuple[str, str]]) -> None:
    result = evaluate(comparison(B, cand), policy(**pol))
    assert result.verdict == verdict
    assert [(f.function, f.kind) for f in result.findings] == expected
    assert all(f.significant for f in result.findings)  # no noise model: exact


def _with_cum(comp: Comparison, name: str, cum_bytes: float) -> Comparison:
    cum = comp.candidate.cum_runs.copy()
    cum[0, comp.names.index(name), 1] = cum_bytes
    cand = SideRates(runs=(), flat_runs=comp.candidate.flat_runs, cum_runs=cum,
                     total_runs=comp.candidate.total_runs, flat_var=None, cum_var=None,
                     total_var=None)
    return Comparison(comp.names, comp.sample_types, True, comp.baseline, cand, comp.period,
                      comp.period_type)


@pytest.mark.parametrize("metric", ["flat", "cum"])
def test_flat_growth_without_cum_growth_is_moved_not_a_regression(metric: str) -> None:
    # f's flat doubled, its cum (f and its callees) did not grow: the allocation moved from
    # a callee into f (a pooled buffer). Whatever metric the policy names, that passes and is
    # shown as moved (it failed as "new"/"grew" before).
    comp = _with_cum(comparison(B, {"f": (100, 2 * MiB), "g": B["g"]}), "f", 1 * MiB)
    result = evaluate(comp, policy(max_increase="10%", metric=metric))
    assert result.verdict == "pass"
    assert result.findings == ()
    assert [(f.function, f.kind) for f in result.moved] == [("f", "moved")]
    assert "moved" in result.moved[0].message


def test_flat_growth_with_cum_growth_fails() -> None:
    comp = _with_cum(comparison(B, {"f": (100, 2 * MiB), "g": B["g"]}), "f", 2 * MiB)
    result = evaluate(comp, policy(max_increase="10%"))
    assert result.verdict == "fail"
    assert [(f.function, f.kind) for f in result.findings] == [("f", "increase")]
    assert result.moved == ()


def test_crossing_within_noise_is_tilde_and_never_fails() -> None:
    # +20% of 1 MiB/s with a standard error of 1 MiB/s per side: not significant.
    comp = comparison(B, {"f": (100, 1.2 * MiB), "g": B["g"]}, var=float(MiB) ** 2)
    result = evaluate(comp, policy(max_increase="10%"))
    assert result.verdict == "pass"
    assert result.findings == ()
    assert [(f.function, f.significant) for f in result.within_noise] == [("f", False)]
    assert "within sampling noise" in result.within_noise[0].message


def test_large_increase_is_significant_despite_noise() -> None:
    comp = comparison(B, {"f": (100, 20 * MiB), "g": B["g"]}, var=float(MiB) ** 2)
    result = evaluate(comp, policy(max_increase="10%"))
    assert result.verdict == "fail"
    f = result.findings[0]
    assert f.significant and f.p_value is not None and f.p_value < 0.01
    assert f.interval is not None and f.interval > 0


def test_confidence_per_rule() -> None:
    # z = 0.2 MiB / sqrt(2 * (0.1 MiB)^2) = 1.41: p = 0.079, significant at 0.9 but not 0.99.
    comp = comparison(B, {"f": (100, 1.2 * MiB), "g": B["g"]}, var=(0.1 * MiB) ** 2)
    assert evaluate(comp, policy(max_increase="10%", confidence=0.9)).verdict == "fail"
    assert evaluate(comp, policy(max_increase="10%", confidence=0.99)).verdict == "pass"


def test_rank_test_with_five_runs_per_side() -> None:
    base_runs = [{"f": (100, (1 + 0.01 * i) * MiB), "g": B["g"]} for i in range(5)]
    higher = [{"f": (100, (1.5 + 0.01 * i) * MiB), "g": B["g"]} for i in range(5)]
    mixed = [{"f": (100, (1.5 if i % 2 else 0.6) * MiB), "g": B["g"]} for i in range(5)]
    pol = policy(max_increase="10%")
    r = evaluate(comparison({}, {}, base_runs=base_runs, cand_runs=higher), pol)
    assert r.verdict == "fail"
    assert r.findings[0].p_value == pytest.approx(1 / 252)  # all 5 above all 5
    # The ± interval comes from the sampling model: the message names the test that spoke.
    assert "significant by a rank test of 5 vs 5 runs" in r.findings[0].message
    r = evaluate(comparison({}, {}, base_runs=base_runs, cand_runs=mixed), pol)
    assert r.verdict == "pass"


def test_non_memory_sample_type_is_an_error() -> None:
    cpu = (ValueType("samples", "count"), ValueType("cpu", "nanoseconds"))
    comp = comparison({"f": (1, 10)}, {"f": (1, 20)}, types=cpu)
    with pytest.raises(CompareError, match="none of the sample types the policy gates"):
        evaluate(comp, policy(max_increase="10%"))
    with pytest.raises(CompareError, match="cpu \\(nanoseconds\\) is not a memory sample type"):
        evaluate(comp, policy(max_increase="10%", sample_types=["cpu"]))


def test_two_column_profiles_match_inuse_names() -> None:
    two = (ValueType("objects", "count"), ValueType("space", "bytes"))
    comp = comparison(B, {"f": (100, 2 * MiB), "g": B["g"]}, types=two)
    assert evaluate(comp, policy(max_increase="10%")).verdict == "fail"


@pytest.mark.parametrize(("severities", "verdict"), [
    ((), "pass"), (("warn",), "warn"), (("fail",), "fail"), (("warn", "fail"), "fail"),
    (("warn", "warn"), "warn"),
])
def test_verdict_of(severities: tuple[str, ...], verdict: str) -> None:
    comp = comparison(B, {"f": (100, 2 * MiB), "g": B["g"]})
    base = evaluate(comp, policy(max_increase="10%")).findings[0]
    from dataclasses import replace

    findings = [replace(base, severity=s) for s in severities]  # type: ignore[arg-type]
    assert verdict_of(findings) == verdict


def test_gate_is_pure() -> None:
    comp = comparison(B, {"f": (100, 2 * MiB), "g": (10, 30 * MiB)})
    pol = policy(max_increase="10%")
    assert evaluate(comp, pol) == evaluate(comp, pol)


def test_plan_resolves_the_policy_once_per_type() -> None:
    """The plan: per gated type, each function decided by one rule (first match wins), the
    new ones by new_functions, the rest by the defaults; a rule that matches nothing is
    visible (and warned about)."""
    comp = comparison({"f": (1, 1 * MiB), "g": (1, 1 * MiB)},
                      {"f": (1, 2 * MiB), "g": (1, 1 * MiB), "h": (1, 1.5 * MiB)})
    pol = policy(max_increase="10%", new_functions={"max_rate": "1MiB/s"}, rules=[
        {"name": "f-first", "match": "f", "max_increase": "50%"},
        {"name": "f-again", "match": "f", "max_increase": "1%"},
        {"name": "ghost", "match": "nosuch.fn", "max_increase": "1%"},
    ])
    plan = build_plan(comp, pol)
    assert plan.gated == (1,)
    (tp,) = plan.types
    decided = {r.name: [comp.names[i] for i in r.functions.tolist()] for r in tp.rules}
    assert decided == {"f-first": ["f"], "f-again": [], "ghost": [], "new_functions": ["h"],
                       "defaults": ["g"]}
    assert [u.rule.name for u in plan.rules if not u.matched] == ["ghost"]
    f_first = tp.rules[0]
    assert f_first.increase_pct == 50 and f_first.increase is None
    assert tp.rules[3].ceiling == MiB and tp.rules[3].new_rule
    result = run_plan(comp, plan)
    assert result == evaluate(comp, pol)
    assert [(f.function, f.rule, f.kind) for f in result.findings] == [
        ("h", "new_functions", "new"), ("f", "f-first", "increase")]
    assert any("'ghost'" in w for w in result.warnings)


def test_plan_limits_in_the_comparisons_basis() -> None:
    """Rate limits become limits per op (scaled by the seconds per op) and their text says
    both; a noise floor is scaled the same way."""
    comp = replace(comparison({"f": (1, 1.0)}, {"f": (1, 2.0)}), basis="op", scale=0.5)
    pol = policy(max_increase_rate="1KiB/s", noise_floor="2KiB/s")
    (rule,) = build_plan(comp, pol).types[0].rules
    assert rule.increase == 512 and rule.noise_floor == 1024
    assert rule.increase_text.endswith("(1KiB/s)") and "/op" in rule.increase_text


def test_plan_crossings_match_the_policy_semantics() -> None:
    b = np.array([0.0, 100.0, 100.0, 100.0])
    c = np.array([1.0, 120.0, 121.0, 200.0])
    assert increase_crossed(b, c, 20.0, None).tolist() == [True, False, True, True]
    assert increase_crossed(b, c, 20.0, 50.0).tolist() == [False, False, False, True]
    assert increase_crossed(b, c, None, None).tolist() == [False] * 4
