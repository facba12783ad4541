"""Report building and rendering details: the leak note's numbers, code spans outside tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memgate.report.build import _describe_objects, _leak_note, _leak_shapes
from memgate.report.markdown import render_markdown

REPORTS = Path(__file__).parent / "fixtures" / "reports"


def _rate(b: float, c: float) -> dict[str, Any]:
    return {"baseline": b, "candidate": c, "delta": c - b, "kind": "changed"}


def _entry() -> dict[str, Any]:
    """A function whose own (flat) objects grew 10x and whose callees' (cum) grew 40x."""
    return {"name": "f", "rates": {
        "inuse_space": {"flat": _rate(64_000, 640_000), "cum": _rate(128_000, 5_120_000)},
        "inuse_objects": {"flat": _rate(1_000, 10_000), "cum": _rate(2_000, 80_000)},
    }}


def test_a_cum_finding_quotes_the_cum_ratios_in_its_leak_note() -> None:
    functions = {"f": _entry()}
    _leak_shapes(functions)
    entry = functions["f"]
    assert entry["leak_shaped"]
    assert _leak_note(entry, "flat") == ", leak-shaped: 10x the objects, of the same size"
    assert _leak_note(entry, "cum") == ", leak-shaped: 40x the objects, of the same size"
    finding = {"function": "f", "sample_type": "inuse_objects", "metric": "cum",
               "significant": True, "message": "f inuse_objects (cum) grew"}
    _describe_objects(finding, entry)
    assert finding["leak_shaped"]
    assert finding["message"].endswith("40x the objects, of the same size")


def test_a_leak_note_with_no_objects_in_the_metrics_baseline_says_so() -> None:
    entry = _entry()
    entry["rates"]["inuse_objects"]["cum"] = _rate(0, 80_000)
    functions = {"f": entry}
    _leak_shapes(functions)
    assert _leak_note(entry, "cum") == ", leak-shaped: in-use objects where the baseline " \
        "kept none"


def _report_with_a_pipe() -> dict[str, Any]:
    """The `fail` golden report with ``|`` in the name of a finding's function and callee."""
    report: dict[str, Any] = json.loads((REPORTS / "fail.json").read_text())
    old = report["findings"][0]["function"]
    new = "pkg.(*T).or|else"
    for f in report["findings"]:
        if f["function"] == old:
            f["function"] = new
        for e in f["evidence"]:
            if e["function"] == old:
                e["function"] = new
    return report


def test_code_spans_escape_a_pipe_only_in_table_cells() -> None:
    md = render_markdown(_report_with_a_pipe())
    rows = [line for line in md.splitlines() if "or|else" in line or "or\\|else" in line]
    cells = [line for line in rows if line.startswith("|")]
    items = [line for line in rows if line.startswith("- ")]
    assert cells and items
    # In a table GitHub undoes \| inside a code span; outside one it would show.
    assert all("`pkg.(*T).or\\|else`" in line for line in cells)
    assert all("\\|" not in line and "`pkg.(*T).or|else`" in line for line in items)
