"""The report of ``memgate check`` / ``memgate diff``: one dict, several renderers.

:func:`build_report` turns a comparison and a gate result into one plain dict (the JSON report,
validated by ``memgate/schemas/report.schema.json``). The markdown summary, the terminal table
and the JSON file are all renderings of that dict, so they cannot disagree.
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
from memgate.quantities import (
    TIME_UNITS,
    Dimension,
    choose_time_unit,
    count_noun,
    dimension_of_unit,
    format_percent,
    format_rate,
    format_value,
)
from memgate.stats import normal_quantile

REPORT_FORMAT = 1
#: GitHub refuses step summaries over 1 MiB; stay below with room for other steps.
MARKDOWN_LIMIT = 1024 * 1024 - 4096
TOP_MOVERS = 5
#: Improvements named per sample type in the "shrank" line and section.
SHRANK = 3


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
    gated = (
        result.gated
        if result is not None
        else tuple(t for t, st in enumerate(comparison.sample_types) if dimension_of_unit(st.unit))
    )
    if not gated:
        gated = tuple(range(len(comparison.sample_types)))
    b, c = comparison.baseline, comparison.candidate
    absent = ~((b.flat != 0).any(axis=1) | (b.cum != 0).any(axis=1))
    rates = [float(x) for t in gated if comparison.per(t) == "s"
             for x in (*b.flat[:, t], *c.flat[:, t]) if x != 0]
    time_unit = choose_time_unit(rates) if comparison.normalized else "s"
    z = normal_quantile(0.5 + confidence / 2)

    types: list[dict[str, Any]] = []
    functions: dict[str, dict[str, Any]] = {}
    totals = []
    for t in gated:
        st = comparison.sample_types[t]
        dim: Dimension = dimension_of_unit(st.unit) or "count"
        level = comparison.quantity(t) == "level"
        types.append({"type": st.type, "unit": st.unit, "dimension": dim,
                      "quantity": comparison.quantity(t), "per": comparison.per(t)})
        floor_q = (limit_for(policy.defaults.noise_floor_level if level
                             else policy.defaults.noise_floor, dim)
                   if policy is not None else None)
        floor = None if floor_q is None else floor_q.value * (
            1.0 if level or comparison.per(t) in ("s", "profile") else (comparison.scale or 1.0))
        bt, ct = float(b.total[t]), float(c.total[t])
        totals.append(
            {
                "sample_type": st.type,
                "baseline_rate": bt,
                "candidate_rate": ct,
                "delta_rate": ct - bt,
                "delta_pct": (ct - bt) / bt * 100 if bt else None,
            }
        )
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
        entry = functions.get(f["function"], {})
        # Only a significant crossing carries the mark: one shown as "~" (within noise after
        # Holm's correction) must not at the same time be called a leak.
        f["leak_shaped"] = bool(entry.get("leak_shaped")) and f["sample_type"] in LEAK_TYPES \
            and bool(f["significant"])
        size = entry.get("object_size")
        if f["sample_type"] in LEAK_TYPES and size and size["candidate"] is not None:
            was = f"{size['baseline']:.0f} B" if size["baseline"] is not None else "none"
            f["message"] += f"; in-use objects average {size['candidate']:.0f} B (baseline {was})"
            if f["leak_shaped"]:
                f["message"] += _leak_note(entry)
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


def _leak_note(entry: dict[str, Any]) -> str:
    """The words a finding's message gets for a leak-shaped function."""
    shape = entry.get("leak_shape")
    if shape == "new":
        return ", leak-shaped: in-use objects where the baseline kept none"
    ob = entry["rates"].get("inuse_objects", entry["rates"].get("objects"))["flat"]
    times = f"{ob['candidate'] / ob['baseline']:.3g}x"
    if shape == "same-size":
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


# --------------------------------------------------------------------------- rendering helpers


def _dim_of(report: dict[str, Any], sample_type: str) -> Dimension:
    for st in report["sample_types"]:
        if st["type"] == sample_type:
            d: Dimension = st["dimension"]
            return d
    return "count"


def _per(report: dict[str, Any]) -> str:
    """The denominator of every rate in the report: a time unit, or "profile" (raw values)."""
    return "profile" if report["rate_unit"] == "per_profile" else str(report["time_unit"])


def _per_of(report: dict[str, Any], sample_type: str) -> str:
    """What one sample type's numbers are per: "" (a level), a time unit, op, run, profile."""
    for st in report["sample_types"]:
        if st["type"] == sample_type and "per" in st:
            per = str(st["per"])
            return str(report["time_unit"]) if per == "s" else per
    return _per(report)


def _rate(report: dict[str, Any], value: float, sample_type: str) -> str:
    per = _per_of(report, sample_type)
    if per in TIME_UNITS:
        return format_rate(value, _dim_of(report, sample_type), per, count_noun(sample_type))
    return format_value(value, _dim_of(report, sample_type), per, "s", count_noun(sample_type))


def describe_units(report: dict[str, Any]) -> str:
    """One phrase for what the report's numbers are: "inuse_space, inuse_objects: in use;
    alloc_space, alloc_objects: per run" (levels are not rates)."""
    groups: dict[str, list[str]] = {}
    for st in report["sample_types"]:
        per = _per_of(report, st["type"])
        label = "in use" if per == "" else (
            f"growth per {per}" if st.get("quantity") == "growth" else f"per {per}")
        groups.setdefault(label, []).append(st["type"])
    return "; ".join(f"{', '.join(types)}: {label}" for label, types in groups.items())


def _about(report: dict[str, Any]) -> str:
    """The warnings about the comparison itself (a WARN verdict with no warning finding)."""
    n = len(report.get("warnings", ()))
    return f" (and {n} warning{'s' if n != 1 else ''} about the comparison above)" if n else ""


def floor_lines(report: dict[str, Any], markdown: bool = False) -> list[str]:
    """The detection floor, one line per sample type, escaped for markdown or for text."""
    name = md_code if markdown else escape.text
    words = escape.md_text if markdown else escape.text
    out = []
    for fl in report.get("floors", []):
        st = fl["sample_type"]

        def rate(v: float, st: str = st) -> str:
            return words(_rate(report, v, st))

        top = ", ".join(f"{name(t['function'])} {rate(t['floor'])}" for t in fl["top"])
        line = (f"{words(st)}: growth in one function below {rate(fl['new_function'])} "
                f"(in the total below {rate(fl['total'])}) is within noise")
        if top:
            line += f"; for the largest functions: {top}"
        if fl["limit"] is not None and fl["limit"] > fl["new_function"]:
            line += f"; the policy ignores growth under {rate(fl['limit'])}"
        out.append(line)
    return out


FLOOR_ADVICE = (
    "to see smaller growth: more runs per side (repeat the profile; the floor falls with the "
    "square root of the runs), a longer workload, or a lower runtime.MemProfileRate in the CI "
    "build (`runtime.MemProfileRate = 64 << 10` first thing in main, or "
    "`go test -memprofilerate 65536`): the floor falls about as the rate does"
)

#: A PASS whose in-use floor is above this could not have seen a leak of this size: say so.
BLIND_SPOT = 10 * 1024 * 1024


def blind_spot(report: dict[str, Any], markdown: bool = False) -> str | None:
    """The sentence a PASS needs when it could not have seen a 10 MiB in-use leak."""
    words = escape.md_text if markdown else escape.text
    for fl in report.get("floors", []):
        if fl["quantity"] == "level" and _dim_of(report, fl["sample_type"]) == "bytes" \
                and fl["new_function"] > BLIND_SPOT:
            rate = words(_rate(report, fl["new_function"], fl["sample_type"]))
            return (f"this comparison could not have seen a leak under {rate} in one function "
                    f"({words(fl['sample_type'])}): {FLOOR_ADVICE}")
    return None


def _delta(report: dict[str, Any], f: dict[str, Any], sample_type: str) -> str:
    d = f["delta_rate"] if "delta_rate" in f else f["delta"]
    text = _rate(report, d, sample_type)
    if not text.startswith("-"):
        text = "+" + text
    return text


def _md_rate(report: dict[str, Any], value: float, sample_type: str) -> str:
    """:func:`_rate` for markdown: its unit names the sample type, which a profile wrote."""
    return escape.md_text(_rate(report, value, sample_type))


def _md_delta(report: dict[str, Any], f: dict[str, Any], sample_type: str) -> str:
    return escape.md_text(_delta(report, f, sample_type))


def _text_rate(report: dict[str, Any], value: float, sample_type: str) -> str:
    """:func:`_rate` for text output (see :func:`_md_rate`)."""
    return escape.text(_rate(report, value, sample_type))


def _text_delta(report: dict[str, Any], f: dict[str, Any], sample_type: str) -> str:
    return escape.text(_delta(report, f, sample_type))


def _pct_with_interval(pct: float | None, interval: float | None, base: float) -> str:
    text = format_percent(pct)
    if interval is not None and pct is not None and base:
        text += f" ± {abs(interval / base * 100):.1f}%"
    return text


#: A function name as inline code that survives GitHub tables (memgate/escape.py).
md_code = escape.md_code


VERDICT_WORD = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", None: "DIFF"}
VERDICT_ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", None: "📊"}


def movers(
    report: dict[str, Any],
    sample_type: str,
    metric: str,
    n: int = TOP_MOVERS,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Top growers and shrinkers of one sample type (excluding "~" and unchanged)."""
    rows = []
    for fn in report["functions"]:
        r = fn["rates"].get(sample_type, {}).get(metric)
        if r is None or r["kind"] in ("~", "unchanged"):
            continue
        rows.append({"name": fn["name"], **r})
    growers = sorted((r for r in rows if r["delta"] > 0), key=lambda r: -r["delta"])[:n]
    shrinkers = sorted((r for r in rows if r["delta"] < 0), key=lambda r: r["delta"])[:n]
    return growers, shrinkers


def render_markdown(report: dict[str, Any], limit: int = MARKDOWN_LIMIT) -> str:
    """GitHub-flavoured markdown: verdict first, findings, movers, full table collapsed."""
    head = _markdown_head(report)
    table_rows = _markdown_full_rows(report)
    tail = "\n</details>\n"
    intro = (
        "\n<details><summary>All functions "
        f"({len(table_rows)} rows)</summary>\n\n"
        "| function | type | baseline | candidate | delta | % | kind |\n"
        "|:---|:---|---:|---:|---:|---:|:---|\n"
    )
    body = head + intro
    size = len(body.encode()) + len(tail.encode())
    kept = []
    for row in table_rows:
        n = len(row.encode()) + 1
        if size + n > limit - 200:
            break
        kept.append(row)
        size += n
    out = body + "\n".join(kept) + "\n"
    if len(kept) < len(table_rows):
        out += (
            f"\n_Table truncated: {len(table_rows) - len(kept)} of {len(table_rows)} rows "
            "omitted to stay under GitHub's 1 MiB summary limit; the JSON report has "
            "all of them._\n"
        )
    out += tail
    if len(out.encode()) > limit:  # the head alone is too large: cut it hard
        cut = out.encode()[: limit - 200].decode("utf-8", "ignore")
        out = cut + "\n\n_Summary truncated to stay under GitHub's 1 MiB limit._\n"
    return out


def _noise_line(report: dict[str, Any], where: str) -> str | None:
    """The one line that stands for every crossing within noise (they never fail)."""
    n = len(report["within_noise"])
    if not n:
        return None
    return f"{n} crossing{'s' if n != 1 else ''} within noise ({where})"


def shrank(report: dict[str, Any], n: int = SHRANK) -> list[tuple[str, list[dict[str, Any]]]]:
    """Per sample type, the functions whose flat rate fell beyond the noise, largest first:
    the improvements, which deserve a line of their own rather than only ▼ rows."""
    out = []
    for st in report["sample_types"]:
        _, shrinkers = movers(report, st["type"], "flat", n)
        if shrinkers:
            out.append((st["type"], shrinkers))
    return out


def _shrank_item(report: dict[str, Any], r: dict[str, Any], st: str, code: bool) -> str:
    name = md_code(r["name"]) if code else r["name"]
    return f"{name} {_delta(report, r, st)} ({format_percent(r['delta_pct'])})"


def _markdown_head(report: dict[str, Any]) -> str:
    """Verdict, warnings and notes, failing and warning findings, the one noise line, what
    shrank; then the details (crossings within noise, totals, top movers)."""
    v = report["verdict"]
    comp = f" — {md_code(report['component'])}" if report.get("component") else ""
    lines = [f"## {VERDICT_ICON[v]} memgate: **{VERDICT_WORD[v]}**{comp}", ""]
    s = report["summary"]
    if v is not None:
        lines.append(
            f"{s['fail']} failing, {s['warn']} warning{_about(report)}; "
            f"{describe_units(report)}; at {report['confidence']:.0%} confidence."
        )
        lines.append("")
        blind = blind_spot(report, markdown=True) if v == "pass" else None
        if blind:
            lines += [f"> [!NOTE]\n> PASS, but {blind}.", ""]
    for w in report["warnings"]:
        lines.append(f"> [!WARNING]\n> {escape.md_text(w)}")
        lines.append("")
    for note in report.get("notes", ()):
        lines.append(f"> [!NOTE]\n> {note}")
        lines.append("")
    header = [
        "| | rule | function | type | metric | baseline | candidate | delta | % |",
        "|:---|:---|:---|:---|:---|---:|---:|---:|---:|",
    ]
    if report["findings"]:
        lines += ["### Findings", "", *header]
        lines += [_finding_row(report, f) for f in report["findings"]]
        lines.append("")
        for f in report["findings"]:
            why = _why(f)
            if why:
                lines.append(f"- {md_code(f['function'])}: {why}")
        if any(_why(f) for f in report["findings"]):
            lines.append("")
    if report.get("moved"):
        lines += ["### Moved (not a regression)", "",
                  "Flat grew while the cum did not: the allocation moved between the function "
                  "and its callees.", ""]
        for f in report["moved"]:
            st = f["sample_type"]
            lines.append(f"- {md_code(f['function'])} {st}: flat "
                         f"{_rate(report, f['baseline_rate'], st)} → "
                         f"{_rate(report, f['candidate_rate'], st)}")
        lines.append("")
    noise_line = _noise_line(report, "in the details block below")
    if noise_line:
        lines += [noise_line + ".", ""]
    improved = shrank(report)
    if improved:
        lines += ["### Shrank", ""]
        for st, rows in improved:
            items = ", ".join(_shrank_item(report, r, st, True) for r in rows)
            lines.append(f"- **{st}**: {items}")
        lines.append("")
    floors = floor_lines(report, markdown=True)
    if floors:
        conf = f"{report['confidence']:.0%}"
        lines += [f"<details><summary>Detection floor ({conf} confidence, 80% power)"
                  "</summary>", ""]
        lines += [f"- {line}" for line in floors]
        lines += ["", f"_{FLOOR_ADVICE[0].upper()}{FLOOR_ADVICE[1:]}._", "", "</details>", ""]
    if report["within_noise"]:
        n = len(report["within_noise"])
        lines += [
            f"<details><summary>{n} limit crossing{'s' if n != 1 else ''} within "
            "sampling noise (~): not failing</summary>",
            "",
            *header,
        ]
        lines += [_finding_row(report, f) for f in report["within_noise"]]
        lines += ["", "</details>", ""]
    if report["totals"]:
        lines += [
            "### Totals",
            "",
            "| type | baseline | candidate | delta | % |",
            "|:---|---:|---:|---:|---:|",
        ]
        for tot in report["totals"]:
            st = tot["sample_type"]
            lines.append(
                f"| {escape.md_text(st)} | {_md_rate(report, tot['baseline_rate'], st)} | "
                f"{_md_rate(report, tot['candidate_rate'], st)} | "
                f"{_md_delta(report, tot, st)} | {format_percent(tot['delta_pct'])} |"
            )
        lines.append("")
    for st in report["sample_types"]:
        growers, shrinkers = movers(report, st["type"], "flat")
        if not growers and not shrinkers:
            continue
        lines += [
            f"### {md_code(st['type'])}: top movers (flat)",
            "",
            "| | function | baseline | candidate | delta | % |",
            "|:---|:---|---:|---:|---:|---:|",
        ]
        for mark, rows in (("▲", growers), ("▼", shrinkers)):
            for r in rows:
                lines.append(
                    f"| {mark} | {md_code(r['name'])} | "
                    f"{_md_rate(report, r['baseline'], st['type'])} | "
                    f"{_md_rate(report, r['candidate'], st['type'])} | "
                    f"{_md_delta(report, r, st['type'])} | "
                    f"{_pct_with_interval(r['delta_pct'], r['interval'], r['baseline'])} |"
                )
        lines.append("")
    return "\n".join(lines)


def _why(f: dict[str, Any]) -> str:
    """Members (recursion) and evidence (the leaves that carry the growth) of a finding."""
    parts = []
    if f.get("members"):
        parts.append("with " + ", ".join(md_code(m) for m in f["members"]) + " (recursion)")
    if f.get("evidence"):
        parts.append("carried by " + ", ".join(f"{md_code(e['function'])} {e['share']:.0%}"
                                              for e in f["evidence"]))
    return "; ".join(parts)


def _finding_row(report: dict[str, Any], f: dict[str, Any]) -> str:
    mark = "~" if not f["significant"] else ("❌" if f["severity"] == "fail" else "⚠️")
    st = f["sample_type"]
    # The reviewer's first question about in-use growth: more objects (a leak) or bigger ones?
    leak = " *(leak-shaped)*" if f.get("leak_shaped") else ""
    return (
        f"| {mark} | {md_code(f['rule'])} | {md_code(f['function'])}{leak} | "
        f"{escape.md_text(st)} | {escape.md_text(f['metric'])} | "
        f"{_md_rate(report, f['baseline_rate'], st)} | "
        f"{_md_rate(report, f['candidate_rate'], st)} | {_md_delta(report, f, st)} | "
        f"{_pct_with_interval(f['delta_pct'], f['interval'], f['baseline_rate'])} |"
    )


def _markdown_full_rows(report: dict[str, Any]) -> list[str]:
    rows = []
    for fn in report["functions"]:
        for st, by_metric in fn["rates"].items():
            r = by_metric["flat"]
            if r["baseline"] == 0 and r["candidate"] == 0:
                continue
            rows.append(
                f"| {md_code(fn['name'])} | {escape.md_text(st)} | "
                f"{_md_rate(report, r['baseline'], st)} | "
                f"{_md_rate(report, r['candidate'], st)} | {_md_delta(report, r, st)} | "
                f"{_pct_with_interval(r['delta_pct'], r['interval'], r['baseline'])} | "
                f"{r['kind']} |"
            )
    return rows


def render_text(report: dict[str, Any], color: bool = False, limit: int = 10,
                verbose: bool = False) -> str:
    """A terminal summary in the order a reader needs it: the verdict, warnings and notes,
    the failing and warning findings, one line for the crossings within noise (listed only
    with ``verbose``), what shrank, then the details (totals and movers per sample type).
    Colour only when asked."""

    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color else text

    v = report["verdict"]
    word = VERDICT_WORD[v]
    colour = {"pass": "32;1", "warn": "33;1", "fail": "31;1", None: "1"}[v]
    esc = escape.text
    comp = f" ({esc(report['component'])})" if report.get("component") else ""
    out = [f"memgate: {paint(word, colour)}{comp}"]
    for w in report["warnings"]:
        out.append(f"warning: {esc(w)}")
    for note in report.get("notes", ()):
        out.append(f"note: {esc(note)}")
    s = report["summary"]
    if v is not None:
        out.append(f"{s['fail']} failing, {s['warn']} warning{_about(report)}")
    for f in report["findings"]:
        out.append(f"  [{esc(f['severity'].upper())}] {esc(f['rule'])}: {esc(f['message'])}")
    for f in report.get("moved", []):
        out.append(f"  [moved] {esc(f['message'])}")
    noise_line = _noise_line(report, "listed below" if verbose else "shown with --verbose")
    if noise_line:
        out.append(noise_line)
    if verbose:
        for f in report["within_noise"]:
            out.append(f"  [~] {esc(f['rule'])}: {esc(f['message'])}")
    improved = shrank(report, SHRANK)
    if improved:
        out.append("shrank: " + "; ".join(
            f"{esc(st)}: " + ", ".join(_shrank_item(report, r, st, False) for r in rows)
            for st, rows in improved))
    totals = {t["sample_type"]: t for t in report["totals"]}
    for st in report["sample_types"]:
        growers, shrinkers = movers(report, st["type"], "flat", limit)
        tot = totals.get(st["type"])
        if not growers and not shrinkers and tot is None:
            continue
        out.append("")
        per = _per_of(report, st["type"])
        head = f"{esc(st['type'])} (flat, {'in use' if per == '' else 'per ' + esc(per)})"
        if tot is not None:
            head += (f": total {_text_rate(report, tot['baseline_rate'], st['type'])} -> "
                     f"{_text_rate(report, tot['candidate_rate'], st['type'])} "
                     f"({format_percent(tot['delta_pct'])})")
        out.append(head + ":" if tot is None else head)
        if not growers and not shrinkers:
            continue
        width = max(len(_text_rate(report, r["candidate"], st["type"]))
                    for r in [*growers, *shrinkers])
        for r in [*growers, *shrinkers]:
            delta = _text_delta(report, r, st["type"])
            pct = _pct_with_interval(r["delta_pct"], r["interval"], r["baseline"])
            out.append(
                f"  {_text_rate(report, r['baseline'], st['type']):>{width}} -> "
                f"{_text_rate(report, r['candidate'], st['type']):>{width}}  "
                f"{paint(delta, '31' if r['delta'] > 0 else '32'):>12} {pct:>16}  "
                f"{esc(r['name'])}"
            )
    floors = floor_lines(report)
    if floors and v is not None:
        out.append("")
        out.append(f"detection floor ({report['confidence']:.0%} confidence, 80% power):")
        out += [f"  {line}" for line in floors]
        blind = blind_spot(report) if v == "pass" else None
        if blind:
            out.append(f"  note: PASS, but {blind}")
    return "\n".join(out) + "\n"
