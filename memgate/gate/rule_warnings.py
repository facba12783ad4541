"""What a user must be told about how the policy met this comparison: rules that apply to
nothing, rate limits on levels, rate limits that cannot be put per unit of work."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from memgate.gate.plan import Plan
from memgate.policy import Inherit


def dead_rule_warnings(plan: Plan, names: Sequence[str]) -> list[str]:
    """Rules whose ``match`` selects no function of either profile (``names``): the limit
    the team relies on is silently gone (a typo, a renamed function)."""
    out = []
    for use in plan.rules:
        if use.matched:
            continue
        rule = use.rule
        probe = rule.match.pattern.removeprefix("re:").replace("*", "")
        close = difflib.get_close_matches(probe, names, n=3, cutoff=0.6)
        hint = f"; closest: {', '.join(close)}" if close else ""
        out.append(f"rule {rule.name!r} (match {rule.match.pattern!r}) matches no function in "
                   f"either profile, so its limits apply to nothing{hint}")
    return out


def rate_on_level_warnings(plan: Plan) -> list[str]:
    """Rules that give only rate limits for sample types that are levels here: written for
    the old every-value-is-a-rate model, their limits apply to nothing; say what to write."""
    out = []
    for use in plan.rules:
        rule, lim = use.rule, use.rule.limits
        rates = [q for key in ("max_increase_rate", "max_rate")
                 if not isinstance(getattr(lim, key), Inherit)
                 for q in getattr(lim, key)]
        gives_level = any(not isinstance(getattr(lim, key), Inherit)
                          for key in ("max_increase_level", "max_level"))
        if use.levels and rates and not gives_level and not use.flows_too:
            texts = ", ".join(q.text for q in rates)
            amounts = ", ".join(repr(q.text.split("/")[0].strip()) for q in rates)
            out.append(f"rule {rule.name!r}: {texts} limits a flow, but "
                       f"{', '.join(use.levels)} here are levels (what is in use, not divided "
                       "by a duration), so the built-in level limits apply instead; write "
                       f"max_increase_level (or max_level) with amounts, e.g. [{amounts}]")
    return out


def per_op_warnings(plan: Plan) -> list[str]:
    """Flows compared per unit of work without a duration: rate limits cannot apply."""
    if all(tp.basis.rates_apply for tp in plan.types):
        return []
    return [
        "flows are compared per unit of work, but the baseline has no duration to turn the "
        "policy's rate limits (max_increase_rate, max_rate, noise_floor) into limits per "
        "unit: only the relative limit (max_increase) applies to them; give the "
        "workload's nominal time (the component's duration, or --duration and "
        "--baseline-duration)"]


def plan_warnings(plan: Plan, names: Sequence[str]) -> list[str]:
    """Every warning about how the policy met the comparison, in the report's order."""
    return [*dead_rule_warnings(plan, names), *rate_on_level_warnings(plan),
            *per_op_warnings(plan)]
