"""`memgate convert`: memray captures and pickled tracemalloc snapshots as pprof, and hostile
versions of both refused in one line."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import tracemalloc
from collections import defaultdict
from pathlib import Path

import pytest

from tests import clirun

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

needs_memray = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import memray"], capture_output=True).returncode != 0,
    reason="memray cannot be imported here (pip install 'memgate[memray]')")


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


def memgate(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m memgate ARGS``, in this process (tests/clirun.py)."""
    return clirun.run(args, cwd=cwd, env=ENV)


def top_rows(profile: Path, index: str, cwd: Path, granularity: str) -> dict[str, int]:
    res = memgate("top", "--format", "json", "-i", index, "-g", granularity, profile, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return {f["name"]: f["flat"] for f in json.loads(res.stdout)["functions"]}


SCRIPT = textwrap.dedent("""\
    def small():
        return [str(i) * 10 for i in range(5000)]

    def big():
        out = []
        for _ in range(40):
            out.append(bytearray(100_000))
        return out

    def middle():
        return [bytes(30_000) for _ in range(20)]

    A = small()
    B = big()
    C = middle()
    del B
""")


@pytest.mark.slow
@needs_memray
def test_memray_capture_has_memray_stats_top_functions(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SCRIPT)
    res = run("-m", "memray", "run", "-q", "-o", "app.bin", "app.py", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = run("-m", "memray", "stats", "--json", "-o", "stats.json", "-f", "app.bin",
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())

    res = memgate("convert", "app.bin", "-o", "app.pb.gz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr

    for key, index, field in [("top_allocations_by_size", "alloc_space", "size"),
                              ("top_allocations_by_count", "alloc_objects", "count")]:
        rows = top_rows(tmp_path / "app.pb.gz", index, tmp_path, "lines")
        # memgate's rows are "module.function file:line"; memray's "function:file:line".
        by_location: dict[str, int] = defaultdict(int)
        for name, flat in rows.items():
            by_location[name.split(" ", 1)[1]] += flat
        ours = sorted(((v, k) for k, v in by_location.items() if "runpy" not in k
                       and "<launcher>" not in k), reverse=True)
        theirs = [(e[field], e["location"].split(":", 1)[1]) for e in stats[key]
                  if "runpy" not in e["location"]]
        assert theirs, stats[key]
        # The same locations with the same numbers, in the same order.
        assert ours[:len(theirs)] == theirs, (key, ours[:6], theirs)

    # The function view names the script's functions with memray's largest first.
    fns = top_rows(tmp_path / "app.pb.gz", "alloc_space", tmp_path, "functions")
    assert max(fns, key=lambda k: fns[k]) == "app.big"
    inuse = top_rows(tmp_path / "app.pb.gz", "inuse_space", tmp_path, "functions")
    assert inuse.get("app.big", 0) == 0  # B was freed before the end
    assert inuse["app.middle"] >= 20 * 30_000


def test_pickled_tracemalloc_snapshot(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SCRIPT + textwrap.dedent("""\
        import sys, tracemalloc
        tracemalloc.take_snapshot().dump(sys.argv[1])
    """))
    res = run("-X", "tracemalloc=25", "app.py", "snap.pickle", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = memgate("convert", "snap.pickle", "-o", "snap.pb.gz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr

    snap = tracemalloc.Snapshot.load(str(tmp_path / "snap.pickle"))
    want: dict[str, int] = defaultdict(int)
    for stat in snap.statistics("lineno"):
        frame = stat.traceback[0]
        # pprof shows no line number 0 (blocks allocated with no Python frame: <unknown>).
        where = f"{frame.filename}:{frame.lineno}" if frame.lineno else frame.filename
        want[where] += stat.size
    rows = top_rows(tmp_path / "snap.pb.gz", "inuse_space", tmp_path, "lines")
    got: dict[str, int] = defaultdict(int)
    for name, flat in rows.items():
        got[name.split(" ", 1)[1]] += flat
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}
    fns = top_rows(tmp_path / "snap.pb.gz", "inuse_space", tmp_path, "functions")
    assert fns["app.middle"] >= 20 * 30_000 and fns["app.small"] > 5000 * 50


class Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


def _bad_inputs(tmp_path: Path) -> dict[str, bytes]:
    cases = {
        "random.bin": os.urandom(4096),
        "empty.bin": b"",
        "evil.pickle": pickle.dumps(Evil(), protocol=4),
        "list.pickle": pickle.dumps([1, 2, 3], protocol=4),
        "truncated.pickle": b"\x80\x04" + b"\x95" * 5,
        "fake-memray.bin": b"memray" + os.urandom(2000),
        "fake-lz4.bin": b"\x04\x22\x4d\x18" + os.urandom(2000),
        "pprof.pb.gz": (REPO / "examples/profiles/candidate-ok.pb.gz").read_bytes(),
    }
    # A snapshot-shaped pickle with a negative size and with a frame that is not (file, line).
    snap = tracemalloc.Snapshot([(0, 10, (("a.py", 1),), 1)], 1)
    good = pickle.dumps(snap, protocol=4)
    cases["good.pickle"] = good
    snap_bad = tracemalloc.Snapshot([(0, -5, (("a.py", 1),), 1)], 1)
    cases["negative.pickle"] = pickle.dumps(snap_bad, protocol=4)
    snap_frame = tracemalloc.Snapshot([(0, 5, (("a.py", "x"),), 1)], 1)
    cases["frame.pickle"] = pickle.dumps(snap_frame, protocol=4)
    return cases


def test_bad_inputs_are_one_line_and_exit_3(tmp_path: Path) -> None:
    cases = _bad_inputs(tmp_path)
    memray_ok = subprocess.run([sys.executable, "-c", "import memray"],
                               capture_output=True).returncode == 0
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for name in cases:
        res = memgate("convert", name, "-o", "out.pb.gz", cwd=tmp_path)
        if name == "good.pickle":
            assert res.returncode == 0, res.stderr
            (tmp_path / "out.pb.gz").unlink()
            continue
        assert res.returncode == 3, (name, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"memgate: {name}: "), (name, lines)
        if name.startswith("fake") and not memray_ok:
            assert "pip install 'memgate[memray]'" in lines[0]
        assert not (tmp_path / "out.pb.gz").exists(), name
        assert not list(tmp_path.glob(".out.pb.gz*")), name
    assert not (tmp_path / "pwned").exists()


def test_trace_limit_and_missing_files(tmp_path: Path) -> None:
    snap = tracemalloc.Snapshot([(0, 8, (("a.py", i),), 1) for i in range(50)], 1)
    snap.dump(str(tmp_path / "many.pickle"))
    res = memgate("convert", "many.pickle", "-o", "o.pb.gz", "--max-samples", "10", cwd=tmp_path)
    assert res.returncode == 3 and "more than the limit of 10" in res.stderr
    res = memgate("convert", "nope.bin", "-o", "o.pb.gz", cwd=tmp_path)
    assert res.returncode == 3 and res.stderr.strip() == "memgate: nope.bin: no such file"
    res = memgate("convert", "many.pickle", "-o", "missing/o.pb.gz", cwd=tmp_path)
    assert res.returncode == 3 and "directory does not exist" in res.stderr
    res = memgate("convert", "many.pickle", "-o", "many.pickle", cwd=tmp_path)
    assert res.returncode == 3 and "is an input" in res.stderr


@needs_memray
def test_truncated_memray_capture(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SCRIPT)
    res = run("-m", "memray", "run", "-q", "-o", "app.bin", "app.py", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = (tmp_path / "app.bin").read_bytes()
    (tmp_path / "half.bin").write_bytes(data[: len(data) // 2])
    res = memgate("convert", "half.bin", "-o", "o.pb.gz", cwd=tmp_path)
    # memray may read a prefix of its own log as a shorter run; either a valid profile or one
    # line, never a crash.
    if res.returncode != 0:
        assert res.returncode == 3
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not (tmp_path / "o.pb.gz").exists()
