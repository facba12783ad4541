"""Writing a report: its files, all or none, and the GitHub step summary.

``memgate check``/``diff`` and the GitHub Action write the same renderings of the same report
dict; doing it in one place keeps their JSON files, summaries and step summaries identical.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memgate.github import append_step_summary
from memgate.outputs import Output, write_outputs
from memgate.report.build import render_json
from memgate.report.markdown import render_markdown


@dataclass(frozen=True)
class Emitted:
    """What :func:`emit_report` wrote: the markdown summary, and whether it went to the step
    summary."""

    markdown: str
    step_summary: bool


def emit_report(report: dict[str, Any], *, json_path: str | None = None,
                summary_path: str | None = None, extra: Sequence[Output] = (),
                step_summary: bool | None = None) -> Emitted:
    """Write ``extra``, the JSON report and the markdown summary (those given), all or none,
    then append the markdown to ``$GITHUB_STEP_SUMMARY``.

    ``step_summary``: True appends whenever the variable is set (``--step-summary``), None
    only under GitHub Actions (``GITHUB_ACTIONS=true``), False never.
    """
    markdown = render_markdown(report)
    outputs = list(extra)
    if json_path:
        outputs.append(Output(json_path, render_json(report)))
    if summary_path:
        outputs.append(Output(summary_path, markdown))
    asked = bool(step_summary)
    if step_summary is None:
        step_summary = os.environ.get("GITHUB_ACTIONS") == "true"
    if step_summary:
        # A step summary that cannot be appended to is found before the files are written.
        append_step_summary(markdown, asked=asked, check_only=True)
    write_outputs(outputs)
    appended = bool(step_summary) and append_step_summary(markdown, asked=asked)
    return Emitted(markdown, appended)
