"""The report of ``memgate check`` / ``memgate diff`` as one dict, the JSON report.

:func:`build_report` turns a comparison and a gate result into one plain dict (validated by
``memgate/schemas/report.schema.json``). The markdown summary (:mod:`memgate.report.markdown`),
the terminal text (:mod:`memgate.report.text`), the HTML page and the JSON file are all
renderings of that dict, so they cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from memgate import __version__, escape
from memgate.compare import Comparison, RunInput
from memgate.gate import DetectionFloor, Finding, GateResult
from memgate.policy import Policy, limit_for
from memgate.quantities import Dimension, choose_time_unit, dimension_of_unit
from memgate.stats import normal_quantile

REPORT_FORMAT = 1


def _num(x: float) -> float | None:
    return None if (isinstance(x, float) and not math.isfinite(x)) else float(x)


def _inputs(runs: Sequence[RunInput]) -> list[dict[str, Any]]:
    return [
        {
            "path": r.path,
            "sha256": r.sha256,
            "duration_seconds": r.duration_seconds,
            "duration_source": r.duration_source,
        }
        for r in runs
    ]


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "function": f.function,
        "sample_type": f.sample_type,
        "metric": f.metric,
        "severity": f.severity,
        "kind": f.kind,
        "baseline_rate": f.baseline_rate,
        "candidate_rate": f.candidate_rate,
        "delta_rate": f.delta_rate,
        "delta_pct": _num(f.delta_pct) if f.delta_pct is not None else None,
        "interval": f.interval,
        "p_value": f.p_value,
        "significant": f.significant,
        "limit": f.limit,
        "message": f.message,
        "quantity": f.quantity,
        "per": f.per,
        "members": list(f.members),
        "evidence": [{"function": n, "share": share} for n, share in f.evidence],
        "remainder": f.remainder,
    }


def _floor_dict(fl: DetectionFloor) -> dict[str, Any]:
    return {
        "sample_type": fl.sample_type, "quantity": fl.quantity, "per": fl.per,
        "confidence": fl.confidence, "power": fl.power, "new_function": fl.new_function,
        "total": fl.total, "top": [{"function": n, "floor": v} for n, v in fl.top],
        "limit": fl.limit,
    }


def _kind(
    b: np.ndarray, c: np.ndarray, floor: float | None, half: np.ndarray | None,
    absent: np.ndarray | None = None,
) -> np.ndarray:
    """changed / unchanged / new / gone, or "~" when the change is within the noise.

    "~" (benchstat's "no real change") wins over new and gone: a function seen in one sample
    of one run and none of the other is noise, not news.
    """
    kind = np.full(b.shape, "changed", dtype=object)
    # "new": a function the baseline does not have at all (not one it has with a zero here).
    new = (b == 0) & (c != 0)
    kind[new if absent is None else new & absent] = "new"
    kind[(b != 0) & (c == 0)] = "gone"
    noisy = np.zeros(b.shape, dtype=bool)
    if half is not None:
        noisy |= np.abs(c - b) <= half
    if floor is not None:
        noisy |= (np.abs(b) < floor) & (np.abs(c) < floor)
    kind[noisy] = "~"
    kind[b == c] = "unchanged"
    return kind




def build_report(
    comparison: Comparison,
    result: GateResult | None,
    *,
    component: str | None,
    policy: Policy | None,
    policy_sha256: str | None = None,
    warnings: Sequence[str] = (),
    confidence: float = 0.99,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The whole report as one JSON-ready dict (rows first, printing later).

    ``warnings`` turn a pass into warn; ``notes`` are shown but leave the verdict alone.
    """
    gated = _gated(comparison, result)
    b, c = comparison.baseline, comparison.candidate
    rates = [float(x) for t in gated if comparison.per(t) == "s"
             for x in (*b.flat[:, t], *c.flat[:, t]) if x != 0]
    time_unit = choose_time_unit(rates) if comparison.normalized else "s"
    z = normal_quantile(0.5 + confidence / 2)
    functions: dict[str, dict[str, Any]] = {}
    types, totals = [], []
    for t in gated:
        st = comparison.sample_types[t]
        dim: Dimension = dimension_of_unit(st.unit) or "count"
        types.append({"type": st.type, "unit": st.unit, "dimension": dim,
                      "quantity": comparison.quantity(t), "per": comparison.per(t)})
        totals.append(_total(comparison, t))
        _add_rates(functions, comparison, t, _noise_floor(comparison, t, policy, dim), z)
    _leak_shapes(functions)
    verdict = result.verdict if result is not None else None
    if verdict == "pass" and warnings:
        verdict = "warn"
    findings = [_finding_dict(f) for f in result.findings] if result else []
    noise = [_finding_dict(f) for f in result.within_noise] if result else []
    moved = [_finding_dict(f) for f in result.moved] if result else []
    for f in moved:
        f["leak_shaped"] = False
    for f in (*findings, *noise):
        _describe_objects(f, functions.get(f["function"], {}))
    return {
        "format": REPORT_FORMAT,
        "memgate": __version__,
        "component": component,
        "verdict": verdict,
        "normalized": comparison.normalized,
        "rate_unit": "per_second" if comparison.normalized else "per_profile",
        "time_unit": time_unit,
        "confidence": confidence,
        "inputs": {
            "baseline": _inputs(b.runs),
            "candidate": _inputs(c.runs),
            "policy": None if policy is None else {"path": policy.source, "sha256": policy_sha256},
        },
        "sample_types": types,
        "warnings": list(warnings),
        "notes": list(notes),
        "findings": findings,
        "within_noise": noise,
        "moved": moved,
        "floors": [_floor_dict(fl) for fl in result.floors] if result else [],
        "totals": totals,
        "summary": {
            "fail": sum(1 for f in findings if f["severity"] == "fail"),
            "warn": sum(1 for f in findings if f["severity"] == "warn"),
            "within_noise": len(noise),
            "moved": len(moved),
            "functions": len(functions),
        },
        "functions": sorted(functions.values(), key=lambda e: e["name"]),
    }


def _gated(comparison: Comparison, result: GateResult | None) -> tuple[int, ...]:
    """The sample types the report shows: the gated ones (for ``diff``: the memory types),
    else all of them."""
    gated = (
        result.gated
        if result is not None
        else tuple(t for t, st in enumerate(comparison.sample_types) if dimension_of_unit(st.unit))
    )
    return gated or tuple(range(len(comparison.sample_types)))


def _total(comparison: Comparison, t: int) -> dict[str, Any]:
    """The totals row of sample type ``t``."""
    bt, ct = float(comparison.baseline.total[t]), float(comparison.candidate.total[t])
    return {
        "sample_type": comparison.sample_types[t].type,
        "baseline_rate": bt,
        "candidate_rate": ct,
        "delta_rate": ct - bt,
        "delta_pct": (ct - bt) / bt * 100 if bt else None,
    }


def _noise_floor(comparison: Comparison, t: int, policy: Policy | None,
                 dim: Dimension) -> float | None:
    """The policy's noise floor for sample type ``t``, in the comparison's units: values on
    both sides below it are "~" (no policy, as for ``diff``: none)."""
    if policy is None:
        return None
    level = comparison.quantity(t) == "level"
    floor_q = limit_for(policy.defaults.noise_floor_level if level
                        else policy.defaults.noise_floor, dim)
    if floor_q is None:
        return None
    return floor_q.value * (
        1.0 if level or comparison.per(t) in ("s", "profile") else (comparison.scale or 1.0))


def _add_rates(functions: dict[str, dict[str, Any]], comparison: Comparison, t: int,
               floor: float | None, z: float) -> None:
    """Add every function's flat and cum rates of sample type ``t`` (both sides, the delta,
    its noise interval at ``z`` and its kind) to ``functions``, by name; functions that are
    zero in both metrics on both sides are left out."""
    b, c = comparison.baseline, comparison.candidate
    absent = ~((b.flat != 0).any(axis=1) | (b.cum != 0).any(axis=1))
    per_metric = {}
    for metric in ("flat", "cum"):
        bm, cm = b.metric(metric)[:, t], c.metric(metric)[:, t]
        vb, vc = b.mean_variance(metric), c.mean_variance(metric)
        half = None
        if vb is not None and vc is not None:
            half = z * np.sqrt(np.maximum(vb[:, t] + vc[:, t], 0.0))
        per_metric[metric] = (bm, cm, half, _kind(bm, cm, floor, half, absent))
    nz = np.flatnonzero(
        (per_metric["cum"][0] != 0)
        | (per_metric["cum"][1] != 0)
        | (per_metric["flat"][0] != 0)
        | (per_metric["flat"][1] != 0)
    )
    st = comparison.sample_types[t]
    for i in nz.tolist():
        name = comparison.names[i]
        entry = functions.setdefault(name, {"name": name, "rates": {}})
        rates_t = {}
        for metric, (bm, cm, half, kind) in per_metric.items():
            bv, cv = float(bm[i]), float(cm[i])
            rates_t[metric] = {
                "baseline": bv,
                "candidate": cv,
                "delta": cv - bv,
                "delta_pct": (cv - bv) / bv * 100 if bv else None,
                "interval": float(half[i]) if half is not None else None,
                "kind": str(kind[i]),
            }
        entry["rates"][st.type] = rates_t


def _describe_objects(f: dict[str, Any], entry: dict[str, Any]) -> None:
    """Mark an in-use finding leak-shaped when its function is, and add the mean object size
    (and the leak's shape) to its message."""
    # Only a significant crossing carries the mark: one shown as "~" (within noise after
    # Holm's correction) must not at the same time be called a leak.
    f["leak_shaped"] = bool(entry.get("leak_shaped")) and f["sample_type"] in LEAK_TYPES \
        and bool(f["significant"])
    size = entry.get("object_size")
    if f["sample_type"] in LEAK_TYPES and size and size["candidate"] is not None:
        was = f"{size['baseline']:.0f} B" if size["baseline"] is not None else "none"
        f["message"] += f"; in-use objects average {size['candidate']:.0f} B (baseline {was})"
        if f["leak_shaped"]:
            f["message"] += _leak_note(entry, f["metric"])

#: Sample-type pairs (bytes, objects) whose ratio is the mean size of live objects.
_INUSE_PAIRS = (("inuse_space", "inuse_objects"), ("space", "objects"))
LEAK_TYPES = {"inuse_space", "inuse_objects", "space", "objects"}
#: Mean sizes within this relative distance count as "the same kind of object".
STABLE_SIZE = 0.25


def _grew(rate: dict[str, Any]) -> bool:
    """Grew beyond the noise: changed or new, upwards."""
    return rate["kind"] in ("changed", "new") and rate["delta"] > 0


def _leak_shapes(functions: dict[str, dict[str, Any]]) -> None:
    """Mark in-use growth made of more objects rather than bigger ones: what a leak looks like.

    The seed's kubelet held 124 million objects of exactly 64 bytes: the count grew, the size
    did not. A function is ``leak_shaped`` when its in-use bytes *and* in-use objects grew
    beyond the noise and the growth in count outweighs any change in mean size (in-use bytes /
    in-use objects, flat): the count ratio minus one is more than twice the size ratio's
    distance from one. So a function that keeps as many objects but bigger ones (a buffer
    size raised) is not leak-shaped, and one that keeps thirty times as many objects is, even
    when its mean size moved: a baseline that retained almost nothing has a mean size of one
    or two samples. A function whose in-use objects are all new (none in the baseline) is
    leak-shaped too: every one of them is an object more. ``leak_shape`` says which case.
    """
    for entry in functions.values():
        rates = entry["rates"]
        for space, objects in _INUSE_PAIRS:
            if space not in rates or objects not in rates:
                continue
            sp, ob = rates[space]["flat"], rates[objects]["flat"]
            # A mean size needs both: objects without bytes (a malformed or hand-made profile)
            # have none.
            base = sp["baseline"] / ob["baseline"] if ob["baseline"] > 0 and \
                sp["baseline"] > 0 else None
            cand = sp["candidate"] / ob["candidate"] if ob["candidate"] > 0 else None
            entry["object_size"] = {"baseline": base, "candidate": cand}
            shape = None
            if _grew(sp) and _grew(ob) and cand is not None:
                if ob["baseline"] <= 0:
                    shape = "new"
                elif base is None:
                    shape = None  # objects of no size in the baseline: nothing to compare
                else:
                    count = ob["candidate"] / ob["baseline"]
                    size = cand / base
                    if count - 1.0 > 2.0 * abs(size - 1.0):
                        shape = "same-size" if abs(size - 1.0) <= STABLE_SIZE else "more"
            entry["leak_shaped"] = shape is not None
            if shape is not None:
                entry["leak_shape"] = shape
            break


def _leak_note(entry: dict[str, Any], metric: str = "flat") -> str:
    """The words a finding's message gets for a leak-shaped function, with the ratios of the
    finding's ``metric`` (flat or cum): a cum finding is about the function and its callees,
    whose counts are not the function's own."""
    rates = entry["rates"]
    # The pair _leak_shapes judged by.
    space, objects = next((s, o) for s, o in _INUSE_PAIRS if s in rates and o in rates)
    sp, ob = rates[space][metric], rates[objects][metric]
    if ob["baseline"] <= 0:
        return ", leak-shaped: in-use objects where the baseline kept none"
    times = f"{ob['candidate'] / ob['baseline']:.3g}x"
    if sp["baseline"] <= 0 or ob["candidate"] <= 0:
        return f", leak-shaped: {times} the objects"  # no mean size to compare
    size = (sp["candidate"] / ob["candidate"]) / (sp["baseline"] / ob["baseline"])
    if abs(size - 1.0) <= STABLE_SIZE:
        return f", leak-shaped: {times} the objects, of the same size"
    return f", leak-shaped: {times} the objects, not bigger ones"


def missing_baseline_report(
    component: str | None, candidate: Sequence[RunInput], policy: Policy | None, warning: str
) -> dict[str, Any]:
    """The report of a check that had no baseline and was allowed to pass."""
    return {
        "format": REPORT_FORMAT,
        "memgate": __version__,
        "component": component,
        "verdict": "warn",
        "normalized": True,
        "rate_unit": "per_second",
        "time_unit": "s",
        "confidence": 0.99,
        "inputs": {
            "baseline": [],
            "candidate": _inputs(candidate),
            "policy": None if policy is None else {"path": policy.source, "sha256": None},
        },
        "sample_types": [],
        "warnings": [warning],
        "notes": [],
        "findings": [],
        "within_noise": [],
        "totals": [],
        "summary": {"fail": 0, "warn": 0, "within_noise": 0, "functions": 0},
        "functions": [],
    }


def render_json(report: dict[str, Any]) -> str:
    return escape.json_dumps(report, indent=2) + "\n"
