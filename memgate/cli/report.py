"""``memgate report ...``: tools over JSON reports written by ``memgate check``.

``memgate report merge`` exists for monorepos: each component is gated in its own job of a
CI matrix (in parallel, each with its own baseline), and one final job merges the JSON reports
into one summary and one verdict, so that a single required status check covers them all.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from memgate import escape
from memgate.cli.common import command_config, handle_errors
from memgate.errors import EXIT_FAIL, ReportError
from memgate.report.reading import load_report

MERGE_FORMAT = 1
#: Worst first: the merged verdict is the worst of the components'.
SEVERITY_ORDER = {"pass": 0, "warn": 1, "fail": 2}
#: Below this many bytes a component's details would be useless; they are left to its JSON.
MIN_DETAILS = 2048


@dataclass(frozen=True)
class LoadedReport:
    path: str
    label: str
    report: dict[str, Any]

    @property
    def verdict(self) -> str:
        v: str = self.report["verdict"]
        return v


def load_reports(paths: Sequence[str]) -> list[LoadedReport]:
    """Load every report; a component named twice is labelled with its file as well.

    The same file given twice (a glob plus a path) is refused: it would count one
    component's verdict twice in the summary.
    """
    import os

    seen: dict[str, str] = {}
    for p in paths:
        key = os.path.normcase(os.path.realpath(p))
        if key in seen:
            raise ReportError(f"is given twice ({seen[key]} and {p})", source=p)
        seen[key] = p
    limits = command_config().limits
    reports = [(p, load_report(p, limits)) for p in paths]
    names = [r["component"] or p for p, r in reports]
    out = []
    for (p, r), name in zip(reports, names):
        label = name if names.count(name) == 1 or name == p else f"{name} ({p})"
        out.append(LoadedReport(path=p, label=label, report=r))
    return out


def merged_verdict(reports: Sequence[LoadedReport]) -> str:
    return max((r.verdict for r in reports), key=lambda v: SEVERITY_ORDER[v])


def merge_json(reports: Sequence[LoadedReport]) -> dict[str, Any]:
    """The merged JSON: the verdict, one entry per report, and every finding with its
    component (each finding as in the report schema plus ``component``)."""
    return {
        "format": MERGE_FORMAT,
        "verdict": merged_verdict(reports),
        "reports": [
            {"component": r.report["component"], "verdict": r.verdict,
             "summary": r.report["summary"], "path": r.path}
            for r in reports
        ],
        "findings": [
            {"component": r.report["component"], **f}
            for r in reports for f in r.report["findings"]
        ],
    }


def render_merged_markdown(reports: Sequence[LoadedReport], limit: int | None = None) -> str:
    """One line per component, then each component's own summary collapsed (failing ones
    open), all under GitHub's 1 MiB step-summary limit."""
    from memgate.escape import md_code
    from memgate.report.format import VERDICT_ICON, VERDICT_WORD, md_inline
    from memgate.report.markdown import MARKDOWN_LIMIT, render_markdown

    limit = MARKDOWN_LIMIT if limit is None else limit
    verdict = merged_verdict(reports)
    n = len(reports)
    title = (f"## {VERDICT_ICON[verdict]} memgate: **{VERDICT_WORD[verdict]}** — "
             f"{n} component{'s' if n != 1 else ''}")
    lines = [
        title,
        "",
        "| | component | verdict | failing | warning | within noise |",
        "|:---|:---|:---|---:|---:|---:|",
    ]
    for r in reports:
        s = r.report["summary"]
        lines.append(f"| {VERDICT_ICON[r.verdict]} | {md_code(r.label)} | "
                     f"{VERDICT_WORD[r.verdict]} | {s['fail']} | {s['warn']} | "
                     f"{s['within_noise']} |")
    lines.append("")
    head = "\n".join(lines) + "\n"
    parts = [head]
    size = len(head.encode())
    omitted = []
    note_room = 400
    # Failing components first, so that the details that matter survive a tight budget.
    order = sorted(range(n), key=lambda i: -SEVERITY_ORDER[reports[i].verdict])
    rendered: dict[int, str] = {}
    for k, i in enumerate(order):
        r = reports[i]
        opening = (f"<details{' open' if r.verdict == 'fail' else ''}><summary>"
                   f"{VERDICT_ICON[r.verdict]} {md_inline(r.label)}: {VERDICT_WORD[r.verdict]}"
                   "</summary>\n\n")
        closing = "\n</details>\n\n"
        budget = (limit - size - note_room) // (len(order) - k)
        inner_budget = budget - len(opening.encode()) - len(closing.encode())
        if inner_budget < MIN_DETAILS:
            omitted.append(r.label)
            continue
        body = render_markdown(r.report, limit=inner_budget)
        block = opening + body + closing
        rendered[i] = block
        size += len(block.encode())
    parts += [rendered[i] for i in range(n) if i in rendered]
    if omitted:
        parts.append(f"_Details of {len(omitted)} component(s) omitted to stay under GitHub's "
                     "1 MiB summary limit; their JSON reports have them._\n")
    return "".join(parts)


def render_merged_text(reports: Sequence[LoadedReport]) -> str:
    from memgate.report.format import VERDICT_WORD

    verdict = merged_verdict(reports)
    plural = "s" if len(reports) != 1 else ""
    esc = escape.text
    out = [f"memgate: {VERDICT_WORD[verdict]} ({len(reports)} report{plural})"]
    labels = [esc(r.label) for r in reports]
    width = max(len(label) for label in labels)
    for r, label in zip(reports, labels):
        s = r.report["summary"]
        out.append(f"  {VERDICT_WORD[r.verdict]:<4}  {label:<{width}}  {s['fail']} failing, "
                   f"{s['warn']} warning, {s['within_noise']} within noise (~)")
    for r, label in zip(reports, labels):
        for f in r.report["findings"]:
            out.append(f"  [{esc(f['severity'].upper())}] {label}: {esc(f['rule'])}: "
                       f"{esc(f['message'])}")
    return "\n".join(out) + "\n"


@click.group("report")
def report() -> None:
    """Work with JSON reports of `memgate check`: merge a CI matrix's reports."""


@report.command("merge")
@click.argument("reports", nargs=-1, required=True, metavar="REPORT.json...")
@click.option("--summary", "summary", metavar="FILE", default=None,
              help="Write the merged markdown summary to FILE.")
@click.option("--json", "json_path", metavar="FILE", default=None,
              help="Write the merged JSON (verdict, reports, findings with component) to FILE.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True, help="What to print on stdout.")
@click.option("--step-summary/--no-step-summary", default=None,
              help="Append the markdown to $GITHUB_STEP_SUMMARY (default: when "
                   "GITHUB_ACTIONS=true).")
@handle_errors
def merge(reports: tuple[str, ...], summary: str | None, json_path: str | None, fmt: str,
          step_summary: bool | None) -> None:
    """One verdict and one summary from many components' JSON reports.

    The verdict is the worst one (fail > warn > pass). Exit codes: 0 pass or warn,
    1 at least one report failed (so the final job of a matrix fails), 3 a report is
    unreadable or not a valid `memgate check` report.
    """
    import os

    from memgate.github import append_step_summary
    from memgate.outputs import Output, check_outputs, write_outputs

    loaded = load_reports(reports)
    markdown = render_merged_markdown(loaded)
    merged = merge_json(loaded)
    as_json = escape.json_dumps(merged, indent=2) + "\n"
    outputs = [Output(path, text) for path, text in ((json_path, as_json), (summary, markdown))
               if path]
    check_outputs([o.path for o in outputs], reports)
    try:
        write_outputs(outputs)
    except OSError as e:
        raise ReportError(f"cannot write: {e.strerror or e}",
                          source=e.filename or json_path or summary) from None
    if step_summary is None:
        step_summary = os.environ.get("GITHUB_ACTIONS") == "true"
    if step_summary:
        append_step_summary(markdown)
    if fmt == "json":
        click.echo(as_json, nl=False)
    elif fmt == "markdown":
        click.echo(escape.text_block(markdown), nl=False)
    else:
        click.echo(escape.text_block(render_merged_text(loaded)), nl=False)
    if merged["verdict"] == "fail":
        sys.exit(EXIT_FAIL)
