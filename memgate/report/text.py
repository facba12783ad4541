"""The terminal rendering of a report (``memgate check``'s default output)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memgate import escape
from memgate.quantities import format_percent
from memgate.report.format import (
    SHRANK,
    VERDICT_WORD,
    _about,
    _noise_line,
    _pct_with_interval,
    _per_of,
    _shrank_item,
    _text_delta,
    _text_rate,
    blind_spot,
    floor_lines,
    movers,
    shrank,
)


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
        out += _movers_lines(report, st["type"], totals.get(st["type"]), limit, paint)
    floors = floor_lines(report)
    if floors and v is not None:
        out.append("")
        out.append(f"detection floor ({report['confidence']:.0%} confidence, 80% power):")
        out += [f"  {line}" for line in floors]
        blind = blind_spot(report) if v == "pass" else None
        if blind:
            out.append(f"  note: PASS, but {blind}")
    return "\n".join(out) + "\n"


def _movers_lines(report: dict[str, Any], sample_type: str, tot: dict[str, Any] | None,
                  limit: int, paint: Callable[[str, str], str]) -> list[str]:
    """One sample type's details: its total, then its top growers and shrinkers (flat)."""
    esc = escape.text
    growers, shrinkers = movers(report, sample_type, "flat", limit)
    if not growers and not shrinkers and tot is None:
        return []
    per = _per_of(report, sample_type)
    head = f"{esc(sample_type)} (flat, {'in use' if per == '' else 'per ' + esc(per)})"
    if tot is not None:
        head += (f": total {_text_rate(report, tot['baseline_rate'], sample_type)} -> "
                 f"{_text_rate(report, tot['candidate_rate'], sample_type)} "
                 f"({format_percent(tot['delta_pct'])})")
    out = ["", head + ":" if tot is None else head]
    if not growers and not shrinkers:
        return out
    width = max(len(_text_rate(report, r["candidate"], sample_type))
                for r in [*growers, *shrinkers])
    for r in [*growers, *shrinkers]:
        delta = _text_delta(report, r, sample_type)
        pct = _pct_with_interval(r["delta_pct"], r["interval"], r["baseline"])
        out.append(
            f"  {_text_rate(report, r['baseline'], sample_type):>{width}} -> "
            f"{_text_rate(report, r['candidate'], sample_type):>{width}}  "
            f"{paint(delta, '31' if r['delta'] > 0 else '32'):>12} {pct:>16}  "
            f"{esc(r['name'])}"
        )
    return out
