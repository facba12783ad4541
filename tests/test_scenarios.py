"""The verdict scenario suite on real Go runs (tests/gen/scenarios.sh, scripts/scenarios.py).

What a team needs from the gate, asserted on the committed profiles: no false alarms when
nothing changed (whatever the runner's speed or the number of baseline runs), leaks of 15 MiB
and more caught and blamed on the JSON decoder, an optimization and a longer time-paced run
passing, a churn increase failing on allocation only, and a detection floor that tells the
truth. docs/noise.md shows the table ``python scripts/scenarios.py`` prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import scenarios as S  # noqa: E402

pytestmark = pytest.mark.slow
MiB = 1024 * 1024


@pytest.mark.parametrize("wall", [False, True], ids=["nominal", "wall-clock"])
def test_no_change_fails_at_most_once_in_180(wall: bool) -> None:
    outcomes = list(S.no_change(wall))
    assert len(outcomes) >= 180
    failed = [o for o in outcomes if o.verdict == "fail"]
    assert len(failed) <= 1, [(o.scenario, o.first) for o in failed]


def test_leaks_of_15_mib_fail_naming_the_json_decoder() -> None:
    big = [o for o in S.leaks() if o.inuse_growth >= 15 * MiB]
    assert len(big) >= 12, "the suite must hold leaks of 15 MiB and more in both shapes"
    assert {o.scenario.split()[1] for o in big} == {"one", "spread"}
    failed = [o for o in big if o.verdict == "fail"]
    assert len(failed) >= 0.95 * len(big), [(o.scenario, o.inuse_growth / MiB) for o in big
                                           if o.verdict != "fail"]
    for o in failed:
        assert o.first is not None and o.first.startswith("encoding/json."), o.first
        assert set(o.failed_types) <= {"inuse_space", "inuse_objects"}, o.failed_types


def test_detection_floor_is_honest() -> None:
    """Leaks above the floor stated for the function they land in are caught at the stated
    power (80%); leaks well below it are not claimed."""
    leaks = [o for o in S.leaks()
             if o.carrier_growth is not None and o.carrier_floor is not None]
    above = [o for o in leaks if o.carrier_growth >= o.carrier_floor]
    below = [o for o in leaks if o.carrier_growth <= o.carrier_floor / 2]
    assert len(above) >= 6 and len(below) >= 12
    assert sum(o.verdict == "fail" for o in above) >= 0.8 * len(above)
    assert sum(o.verdict == "fail" for o in below) <= 0.1 * len(below)


def _variant(name: str) -> list[S.Outcome]:
    return [o for o in S.variants() if o.scenario.startswith(name)]


def test_moved_allocation_passes() -> None:
    pooled = _variant("pooled")
    assert pooled and all(o.verdict != "fail" for o in pooled)
    assert any(f.kind == "moved" or f.function == "main.readBody"
               for o in pooled for f in (*o.result.moved, *o.result.within_noise))


def test_churn_fails_on_allocation_only() -> None:
    churn = _variant("churn")
    assert churn and all(o.verdict == "fail" for o in churn)
    for o in churn:
        assert set(o.failed_types) <= {"alloc_space", "alloc_objects"}, o.failed_types
        assert o.first == "main.handle"


def test_same_build_time_paced_for_15_and_60_seconds_passes() -> None:
    paced = _variant("15 s vs 60 s") + _variant("60 s vs 15 s")
    assert len(paced) >= 6 and all(o.verdict != "fail" for o in paced)


def test_slower_runner_with_wall_clock_durations_passes_and_says_why() -> None:
    slow = _variant("slow runner")
    assert slow and all(o.verdict != "fail" for o in slow)
    assert all(any("looks fixed-work" in w for w in o.result.warnings) for o in slow)
