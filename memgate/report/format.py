"""Formatting shared by the report's renderings (markdown, text, the diff view, HTML): rates
and deltas in the report's units, the detection floor, top movers, the verdict's words.
"""

from __future__ import annotations

from typing import Any

from memgate import escape
from memgate.quantities import (
    TIME_UNITS,
    Dimension,
    count_noun,
    format_percent,
    format_rate,
    format_value,
)

TOP_MOVERS = 5
#: Improvements named per sample type in the "shrank" line and section.
SHRANK = 3


def md_inline(value: object) -> str:
    """``value`` as a code span outside a table (a heading, a list item, a note), where ``|``
    needs no ``\\|`` (which would show)."""
    return escape.md_code(value, table=False)


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
    name = md_inline if markdown else escape.text
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
    name = md_inline(r["name"]) if code else r["name"]
    return f"{name} {_delta(report, r, st)} ({format_percent(r['delta_pct'])})"

