"""Report building and rendering details: the leak note's numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memgate.report.build import _describe_objects, _leak_note, _leak_shapes

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
