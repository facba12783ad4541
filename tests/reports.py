"""A whole, valid ``memgate check`` JSON report around the fields a test cares about.

``baseline accept`` validates a report against the report schema before it reads the
candidates, as ``report merge`` does; tests that write reports by hand start from a real one
(``tests/fixtures/reports/pass.json``) and set the component and inputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parent / "fixtures" / "reports" / "pass.json"


def check_report(candidates: Sequence[Mapping[str, Any]], *, component: str | None = "api",
                 baseline: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The report of a check of ``candidates`` (``path``, ``sha256``, optionally
    ``duration_seconds``) against ``baseline`` (``path``, ``sha256``)."""
    report: dict[str, Any] = json.loads(TEMPLATE.read_text("utf-8"))
    report["component"] = component
    report["inputs"]["candidate"] = [{"duration_seconds": None, "duration_source": "none", **c}
                                     for c in candidates]
    report["inputs"]["baseline"] = [{"duration_seconds": None, "duration_source": "store", **b}
                                    for b in baseline]
    return report
