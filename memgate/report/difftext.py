"""The terminal view of ``memgate diff``: per sample type, the top growers and shrinkers.

``go tool pprof -top -diff_base=BASE NEW`` users expect every function that moved, sorted by
how much, whatever its noise: a diff has no policy and no verdict, so hiding rows within the
noise (as the gate's summary does) hid the very movers a user was looking for. Each row
carries its share of the sample type's total change and a ``~`` mark when the change is
within the noise interval, so nothing is hidden and nothing is oversold.

Rendered from the report dict (:func:`memgate.report.build.build_report`), like every other
view, so that the numbers are the JSON report's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memgate.quantities import format_percent
from memgate.report.format import VERDICT_WORD, _delta, _per_of, _rate


@dataclass(frozen=True)
class DiffView:
    """What the text view shows: ``sample_types`` (None: all the report compares), the
    ``limit`` of growers and of shrinkers per type (0: all), ``metric`` flat or cum."""

    sample_types: tuple[str, ...] | None = None
    limit: int = 10
    metric: str = "flat"


def _rows(report: dict[str, Any], sample_type: str, metric: str) -> list[dict[str, Any]]:
    rows = []
    for fn in report["functions"]:
        r = fn["rates"].get(sample_type, {}).get(metric)
        if r is None or r["delta"] == 0:
            continue
        rows.append({"name": fn["name"], **r})
    return rows


def _share(delta: float, change: float) -> str:
    """The row's part of the total change, signed: a shrinker of a growing total is negative."""
    if change == 0:
        return "-"
    return f"{delta / abs(change) * 100:+.1f}%"


def render_diff_text(report: dict[str, Any], view: DiffView | None = None) -> str:
    """Per sample type: the total before and after, then the growers (largest first) and the
    shrinkers (largest first), each row with baseline, candidate, delta, share of the total
    change and relative change (``~`` when within the noise)."""
    view = view or DiffView()
    out = [f"memgate: {VERDICT_WORD[None]}"]
    noisy = False
    for w in report["warnings"]:
        out.append(f"warning: {w}")
    totals = {t["sample_type"]: t for t in report["totals"]}
    types = [st["type"] for st in report["sample_types"]]
    if view.sample_types is not None:
        types = [t for t in types if t in view.sample_types]
    for st in types:
        rows = _rows(report, st, view.metric)
        growers = sorted((r for r in rows if r["delta"] > 0), key=lambda r: (-r["delta"],
                                                                              r["name"]))
        shrinkers = sorted((r for r in rows if r["delta"] < 0), key=lambda r: (r["delta"],
                                                                                r["name"]))
        more_g = more_s = 0
        if view.limit:
            more_g, more_s = (max(0, len(growers) - view.limit),
                              max(0, len(shrinkers) - view.limit))
            growers, shrinkers = growers[:view.limit], shrinkers[:view.limit]
        tot = totals.get(st)
        change = 0.0
        per = _per_of(report, st)
        head = f"{st} ({view.metric}, {'in use' if per == '' else 'per ' + per})"
        if tot is not None:
            change = tot["delta_rate"]
            head += (f": total {_rate(report, tot['baseline_rate'], st)} -> "
                     f"{_rate(report, tot['candidate_rate'], st)} "
                     f"({_delta(report, tot, st)}, {format_percent(tot['delta_pct'])})")
        out += ["", head]
        if not growers and not shrinkers:
            out.append("  no function changed")
            continue
        cells = [(_rate(report, r["baseline"], st), _rate(report, r["candidate"], st),
                  _delta(report, r, st), _share(r["delta"], change),
                  format_percent(r["delta_pct"]), "~" if r["kind"] == "~" else " ", r["name"])
                 for r in [*growers, *shrinkers]]
        widths = [max(len(c[i]) for c in cells) for i in range(5)]
        widths = [max(w, len(h)) for w, h in zip(widths, ("baseline", "candidate", "delta",
                                                          "share", "%"))]

        def line(c: tuple[str, ...], widths: list[int] = widths) -> str:
            return (f"  {c[0]:>{widths[0]}}  {c[1]:>{widths[1]}}  {c[2]:>{widths[2]}}  "
                    f"{c[3]:>{widths[3]}}  {c[4]:>{widths[4]}} {c[5]} {c[6]}").rstrip()

        noisy = noisy or any(c[5] == "~" for c in cells)
        out.append(line(("baseline", "candidate", "delta", "share", "%", " ", "function")))
        for label, part, more in (("grew", cells[:len(growers)], more_g),
                                  ("shrank", cells[len(growers):], more_s)):
            if not part:
                continue
            out.append(f" {label}:")
            out += [line(c) for c in part]
            if more:
                out.append(f"  ... {more} more (--limit 0 shows all)")
    if noisy:
        out += ["", "~: within the sampling noise (no real change at the report's confidence)"]
    return "\n".join(out) + "\n"
