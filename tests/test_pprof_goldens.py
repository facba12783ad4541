"""memgate's numbers against `go tool pprof -top`, on real profiles.

The goldens under tests/fixtures/golden/ are pprof's own output
(`go tool pprof -top -nodefraction=0 -edgefraction=0 -symbolize=none -unit=B ...`), made by
tests/gen/regenerate.sh (large ones gzip-compressed, tests/goldens.py); these tests need no
Go. For every profile, every sample type and every granularity, memgate must print the same
rows: the same names in the same order with the same flat, flat%, sum%, cum and cum%. Only
pprof's " (inline)" markers are not reproduced. (bigheap-10k has lines goldens at its default
sample index only: the other three were 5 MB of the same call sites.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from memgate import escape, speedups
from memgate.profile.decode import decode
from memgate.profile.limits import InputLimits
from memgate.report.top import build_top, render_text
from memgate.table import aggregate
from tests.goldens import read_golden

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "golden"
PROFILES = FIXTURES / "profiles"

HEADER = "      flat  flat%   sum%        cum   cum%\n"
_INLINE = re.compile(r" \((?:partial-)?inline\)$", re.M)


def _cases() -> list[tuple[str, str, int]]:
    cases = []
    for d in sorted(GOLDEN.iterdir()):
        if d.name == "diff" or not d.is_dir():
            continue
        for f in sorted(d.glob("*.txt*")):
            m = re.fullmatch(r"(functions|filefunctions|lines)\.(\d+)\.txt(?:\.gz)?", f.name)
            if m:
                cases.append((d.name, m.group(1), int(m.group(2))))
    return cases


CASES = _cases()
_tables: dict[tuple[str, str], object] = {}


def _load(name: str, granularity: str, path: str):  # type: ignore[no-untyped-def]
    key = (name, granularity, path)
    if key not in _tables:
        prof = decode((PROFILES / name).read_bytes(), name, InputLimits())
        _tables[key] = (prof, aggregate(prof, granularity))
    return _tables[key]


@pytest.fixture(params=["c", "numpy"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both implementations: the optional C loops and the numpy code they replace."""
    if request.param == "numpy":
        monkeypatch.setenv("MEMGATE_NO_SPEEDUPS", "1")
    else:
        monkeypatch.delenv("MEMGATE_NO_SPEEDUPS", raising=False)
        if speedups.module() is None:
            pytest.skip("memgate._speedups is not built (no C compiler at install time)")
    return str(request.param)


def _unit_flag(name: str, index: int) -> str:
    meta = json.loads((GOLDEN / name / "meta.json").read_text())
    flag = meta["unit_flags"][index]
    return flag.removeprefix("-unit=") if flag else "minimum"


def _split(text: str) -> tuple[str, str]:
    head, sep, rows = text.partition(HEADER)
    assert sep, "no row header in output"
    return head, rows


def test_goldens_exist() -> None:
    names = {c[0] for c in CASES}
    # Every corpus profile and the generated Go profiles have goldens.
    assert {"go-heap-loki.pb.gz", "go-heap-delta-7m.pb.gz", "nodejs-heap.pb.gz",
            "seedleak-leak-1.pb.gz", "seedleak-noleak-1.pb.gz"} <= names
    assert len(CASES) >= 100


@pytest.mark.parametrize(("name", "granularity", "index"), CASES,
                         ids=[f"{n}-{g}-{i}" for n, g, i in CASES])
def test_top_matches_pprof(name: str, granularity: str, index: int, path: str) -> None:
    golden = read_golden(GOLDEN / name / f"{granularity}.{index}.txt").decode(
        "utf-8", "backslashreplace")
    prof, table = _load(name, granularity, path)
    rep = build_top(prof, table, index)
    ours = render_text(rep, _unit_flag(name, index))
    # pprof prints names raw; memgate shows their control characters as escapes (a name can
    # neither break a line nor start a workflow command: memgate/escape.py). Apply the same
    # escaping to each of pprof's names.
    for row in rep.rows:
        if escape.text(row.name) != row.name:
            golden = golden.replace(row.name, escape.text(row.name))
    g_head, g_rows = _split(golden)
    o_head, o_rows = _split(ours)
    assert o_rows == _INLINE.sub("", g_rows)
    # The "Showing nodes accounting for X, P% of T total" line: same shown sum and total.
    g_show = [ln for ln in g_head.splitlines() if ln.startswith("Showing nodes accounting")]
    o_show = [ln for ln in o_head.splitlines() if ln.startswith("Showing nodes accounting")]
    assert o_show == g_show
    assert f"Type: {prof.sample_types[index].type}" in o_head
    # The header pprof prints before the table, line for line (File, Build ID, comments, Type,
    # Time, Duration with the CPU share), up to lines about pprof's own trimming.
    assert _head(o_head) == _head(g_head)


def _head(text: str) -> list[str]:
    return [ln for ln in text.splitlines()
            if not ln.startswith(("Showing", "Dropped", "Main binary filename"))]
