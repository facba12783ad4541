"""Bug #15.1: the manifest summary says what the gate sees, in every unit pprof knows.

The summary of ``baselines/<component>/manifest.json`` (and ``memgate baseline show``) computed
its own rates: it forgot the unit scale (a ``kilobytes`` profile read 1 KiB/s where the gate
saw 1 MiB/s) and divided in-use levels by the duration, which the gate never does. Now both go
through :mod:`memgate.rates`; these tests store profiles in every memory, time and count unit
with :meth:`Store.update` and compare the summary with the gate's own numbers for the same
profiles (the baseline side of :func:`memgate.compare.compare`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from memgate.baseline.store import Store
from memgate.compare import Comparison, RunInput, compare
from memgate.profile.decode import decode
from memgate.profile.limits import InputLimits
from tests.pbuild import gz, make_profile

MEMORY_UNITS = ("bytes", "kilobytes", "megabytes", "gigabytes", "terabytes", "petabytes")
TIME_UNITS = ("nanoseconds", "microseconds", "milliseconds", "seconds")


def _types(unit: str) -> tuple[tuple[str, str], ...]:
    """Flows and levels of one unit: memory (alloc_/inuse_ space), time (delay), count."""
    if unit in MEMORY_UNITS:
        return (("alloc_space", unit), ("inuse_space", unit))
    if unit in TIME_UNITS:
        return (("contentions", "count"), ("delay", unit))
    return (("alloc_objects", unit), ("inuse_objects", unit))


def _profiles(tmp_path: Path, unit: str, own_seconds: int) -> list[Path]:
    """Two runs of one workload (different values, so that the mean matters)."""
    paths = []
    for run in (1, 2):
        stacks = (
            (("leaf", "mid", "main"), (3 * run, 7 * run)),
            (("other", "main"), (5, 11 * run)),
            (("mid", "main"), (2 * run, 13)),
        )
        prof = make_profile(stacks, _types(unit), duration_nanos=own_seconds * 10**9,
                            time_nanos=1_700_000_000_000_000_000 + run)
        path = tmp_path / f"{unit}-{own_seconds}-{run}.pb.gz"
        path.write_bytes(gz(prof.SerializeToString()))
        paths.append(path)
    return paths


def _gate(paths: Sequence[Path], durations: Sequence[float | None]) -> Comparison:
    """The gate's comparison of these profiles as a baseline (against themselves)."""
    runs = []
    for path, dur in zip(paths, durations):
        data = path.read_bytes()
        runs.append(RunInput(path=str(path), sha256=hashlib.sha256(data).hexdigest(),
                             duration_seconds=dur, duration_source="store",
                             profile=decode(data, str(path), InputLimits())))
    normalized = all(d is not None for d in durations)
    return compare(runs, runs, normalized=normalized, detect_fixed_work=False)


def _assert_summary_is_the_gates(manifest: dict[str, Any], comparison: Comparison) -> None:
    side = comparison.baseline
    summary = manifest["summary"]
    totals = manifest["summary_totals"]
    for t, st in enumerate(comparison.sample_types):
        assert totals[st.type] == pytest.approx(float(side.total[t]), rel=1e-5), st
        rows = summary[st.type]
        assert rows, st
        for row in rows:
            i = comparison.names.index(row["function"])
            assert row["flat_rate"] == pytest.approx(float(side.flat[i, t]), rel=1e-5), (st, row)
            assert row["cum_rate"] == pytest.approx(float(side.cum[i, t]), rel=1e-5), (st, row)


ALL_UNITS = (*MEMORY_UNITS, *TIME_UNITS, "count")


@pytest.mark.parametrize("unit", ALL_UNITS)
@pytest.mark.parametrize("own_seconds, given", [
    (0, 10.0),    # a snapshot, --duration 10s: flows per second, in-use as levels
    (30, None),   # a delta profile: flows and in-use growth per second of its own 30 s
    (30, 10.0),   # a delta profile with --duration: flows per 10 s, growth per its 30 s
    (0, None),    # no duration at all: flows and levels per profile
])
def test_manifest_summary_is_what_the_gate_sees(tmp_path: Path, unit: str, own_seconds: int,
                                                given: float | None) -> None:
    paths = _profiles(tmp_path, unit, own_seconds)
    b = Store(tmp_path / "baselines").update("api", paths, reason="r", duration_seconds=given)
    durations = {p.original_name: p.duration_seconds for p in b.profiles}
    comparison = _gate(paths, [durations[p.name] for p in paths])
    assert b.manifest["summary_unit"] == ("per_profile" if own_seconds == 0 and given is None
                                          else "per_second")
    _assert_summary_is_the_gates(b.manifest, comparison)


def test_kilobytes_summary_is_in_bytes_per_second(tmp_path: Path) -> None:
    """The example of the bug report: 1 MiB/s that the manifest showed as 1 KiB/s."""
    prof = make_profile(((("main",), (1024, 1)),), (("alloc_space", "kilobytes"),
                                                    ("inuse_space", "kilobytes")))
    path = tmp_path / "kb.pb.gz"
    path.write_bytes(gz(prof.SerializeToString()))
    b = Store(tmp_path / "baselines").update("api", [path], reason="r", duration_seconds=1.0)
    # 1024 kilobytes allocated in 1 s: 1 MiB/s (to six significant digits); 1 kilobyte in
    # use: a level of 1024 bytes, not divided by the duration.
    assert b.manifest["summary_totals"] == {"alloc_space": pytest.approx(1024.0 * 1024, rel=1e-5),
                                            "inuse_space": 1024.0}
    assert b.manifest["summary_kinds"] == {"alloc_space": "flow", "inuse_space": "level"}
