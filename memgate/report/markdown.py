"""The markdown summary of a report: for the GitHub step summary, ``--summary`` and the
pull-request comment.

Every value a profile or a policy wrote is escaped (:mod:`memgate.escape`): in table cells as
code spans that keep ``|`` escaped, elsewhere as code spans or text.
"""

from __future__ import annotations

from typing import Any

from memgate import escape
from memgate.escape import md_code
from memgate.quantities import format_percent
from memgate.report.format import (
    FLOOR_ADVICE,
    VERDICT_ICON,
    VERDICT_WORD,
    _about,
    _md_delta,
    _md_rate,
    _noise_line,
    _pct_with_interval,
    _rate,
    _shrank_item,
    blind_spot,
    describe_units,
    floor_lines,
    md_inline,
    movers,
    shrank,
)

#: GitHub refuses step summaries over 1 MiB; stay below with room for other steps.
MARKDOWN_LIMIT = 1024 * 1024 - 4096


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


def _markdown_head(report: dict[str, Any]) -> str:
    """Verdict, warnings and notes, failing and warning findings, the one noise line, what
    shrank; then the details (crossings within noise, totals, top movers)."""
    sections = (_verdict, _findings, _moved, _noise_and_shrank, _floor_details, _noise_details,
                _totals, _top_movers)
    return "\n".join(line for section in sections for line in section(report))


#: The header of the findings tables (failing and warning; within noise).
_FINDINGS_HEADER = [
    "| | rule | function | type | metric | baseline | candidate | delta | % |",
    "|:---|:---|:---|:---|:---|---:|---:|---:|---:|",
]


def _verdict(report: dict[str, Any]) -> list[str]:
    """The headline, the counts and units, the blind-spot note of a PASS, warnings, notes."""
    v = report["verdict"]
    comp = f" — {md_inline(report['component'])}" if report.get("component") else ""
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
    return lines


def _findings(report: dict[str, Any]) -> list[str]:
    """The failing and warning findings, then what carries each (recursion, callees)."""
    if not report["findings"]:
        return []
    lines = ["### Findings", "", *_FINDINGS_HEADER]
    lines += [_finding_row(report, f) for f in report["findings"]]
    lines.append("")
    for f in report["findings"]:
        why = _why(f)
        if why:
            lines.append(f"- {md_inline(f['function'])}: {why}")
    if any(_why(f) for f in report["findings"]):
        lines.append("")
    return lines


def _moved(report: dict[str, Any]) -> list[str]:
    """Flat growth that moved between a function and its callees (not a regression)."""
    if not report.get("moved"):
        return []
    lines = ["### Moved (not a regression)", "",
             "Flat grew while the cum did not: the allocation moved between the function "
             "and its callees.", ""]
    for f in report["moved"]:
        st = f["sample_type"]
        lines.append(f"- {md_inline(f['function'])} {st}: flat "
                     f"{_rate(report, f['baseline_rate'], st)} → "
                     f"{_rate(report, f['candidate_rate'], st)}")
    lines.append("")
    return lines


def _noise_and_shrank(report: dict[str, Any]) -> list[str]:
    """The one line counting the crossings within noise, and the improvements."""
    lines = []
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
    return lines


def _floor_details(report: dict[str, Any]) -> list[str]:
    """The detection floor, collapsed, with the advice for seeing smaller growth."""
    floors = floor_lines(report, markdown=True)
    if not floors:
        return []
    conf = f"{report['confidence']:.0%}"
    lines = [f"<details><summary>Detection floor ({conf} confidence, 80% power)"
             "</summary>", ""]
    lines += [f"- {line}" for line in floors]
    lines += ["", f"_{FLOOR_ADVICE[0].upper()}{FLOOR_ADVICE[1:]}._", "", "</details>", ""]
    return lines


def _noise_details(report: dict[str, Any]) -> list[str]:
    """The limit crossings within sampling noise, collapsed."""
    if not report["within_noise"]:
        return []
    n = len(report["within_noise"])
    lines = [
        f"<details><summary>{n} limit crossing{'s' if n != 1 else ''} within "
        "sampling noise (~): not failing</summary>",
        "",
        *_FINDINGS_HEADER,
    ]
    lines += [_finding_row(report, f) for f in report["within_noise"]]
    lines += ["", "</details>", ""]
    return lines


def _totals(report: dict[str, Any]) -> list[str]:
    """The totals per sample type."""
    if not report["totals"]:
        return []
    lines = [
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
    return lines


def _top_movers(report: dict[str, Any]) -> list[str]:
    """Per sample type, the top growers and shrinkers (flat)."""
    lines: list[str] = []
    for st in report["sample_types"]:
        growers, shrinkers = movers(report, st["type"], "flat")
        if not growers and not shrinkers:
            continue
        lines += [
            f"### {md_inline(st['type'])}: top movers (flat)",
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
    return lines


def _why(f: dict[str, Any]) -> str:
    """Members (recursion) and evidence (the leaves that carry the growth) of a finding."""
    parts = []
    if f.get("members"):
        parts.append("with " + ", ".join(md_inline(m) for m in f["members"]) + " (recursion)")
    if f.get("evidence"):
        parts.append("carried by " + ", ".join(f"{md_inline(e['function'])} {e['share']:.0%}"
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

