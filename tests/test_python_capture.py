"""`memgate capture`: a Python command's allocations as a pprof profile, checked from outside.

The reference for the numbers is tracemalloc itself: the captured script takes its own
snapshot at its end and dumps it; the per-function in-use bytes and objects memgate writes must
equal that snapshot grouped by the same frames (the function is found from the script's syntax
tree here, not by memgate's code). `go tool pprof` must open the file and print the same bytes,
where Go is installed.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from collections import defaultdict
from pathlib import Path

import pytest

from memgate.profile.source import load_profile

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def memgate(*args: str | Path, cwd: Path,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A real process: the captured command writes to the file descriptors it inherits, which
    # an in-process run (tests/clirun.py) would not capture.
    return subprocess.run([sys.executable, "-m", "memgate", *map(str, args)], cwd=cwd,
                          env=env or ENV, capture_output=True, text=True, timeout=120)


def top_json(profile: Path, index: str, cwd: Path, granularity: str = "functions") -> dict[
        str, int]:
    res = memgate("top", "--format", "json", "-i", index, "-g", granularity, profile, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return {f["name"]: f["flat"] for f in json.loads(res.stdout)["functions"]}


WORKLOAD = '''\
import sys
import tracemalloc

class Store:
    def __init__(self):
        self.rows = {}
        self.log = [0] * 500

    def add(self, key, text):
        self.rows[key] = text.encode() * 3

def make_rows(n):
    return [("row-%d" % i) * 4 for i in range(n)]

def build(n):
    s = Store()
    s.source = make_rows(n)
    for i, r in enumerate(s.source):
        s.add(i, r)
    return s

KEEP = build(2000)
TAIL = [bytearray(64) for _ in range(300)]
tracemalloc.take_snapshot().dump(sys.argv[1])
'''


def _functions_by_line(path: Path) -> dict[int, str]:
    """line -> innermost enclosing def/class (or <module>), from the syntax tree."""
    tree = ast.parse(path.read_text())
    out: dict[int, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                inner = child.name if name == "<module>" else f"{name}.{child.name}"
                for ln in range(child.lineno + 1, (child.end_lineno or child.lineno) + 1):
                    out[ln] = inner
                visit(child, inner)
            else:
                visit(child, name)

    visit(tree, "<module>")
    return out


@pytest.mark.slow
def test_capture_equals_tracemalloc_of_the_same_run(tmp_path: Path) -> None:
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    out = tmp_path / "w.pb.gz"
    res = memgate("capture", "-o", out, "--", "python", script, tmp_path / "snap.pickle",
                  cwd=tmp_path)
    assert res.returncode == 0, res.stderr

    snap = tracemalloc.Snapshot.load(str(tmp_path / "snap.pickle"))
    by_line = _functions_by_line(script)
    want_bytes: dict[str, int] = defaultdict(int)
    want_count: dict[str, int] = defaultdict(int)
    for tr in snap.traces:
        leaf = tr.traceback[-1]  # the most recent frame
        if leaf.filename == str(script):
            fn = "workload." + by_line.get(leaf.lineno, "<module>")
            want_bytes[fn] += tr.size
            want_count[fn] += 1
    workload_fns = ["workload.Store.add", "workload.make_rows", "workload.Store.__init__"]
    assert want_bytes["workload.Store.add"] > 2000 * 3 * 20  # the test measures something

    got_bytes = top_json(out, "inuse_space", tmp_path)
    got_count = top_json(out, "inuse_objects", tmp_path)
    # Not <module>: its dump line allocates after the snapshot. The functions of the workload
    # allocate nothing after it.
    for fn in workload_fns:
        assert want_bytes[fn] > 0, fn
        assert got_bytes.get(fn, 0) == want_bytes[fn], fn
        assert got_count.get(fn, 0) == want_count[fn], fn

    prof = load_profile(str(out))
    assert [str(t) for t in prof.sample_types] == ["inuse_objects/count", "inuse_space/bytes"]
    assert prof.period == 1 and prof.duration_nanos > 0 and prof.time_nanos > 0
    assert any(str(script) in c and "memgate capture: python" in c for c in prof.comments)
    # No launcher frames (memgate's runner, runpy) in any stack.
    names = {f.name for f in prof.functions}
    assert not any(n.startswith(("runpy.", "memgate.", "pkgutil.")) for n in names), names

    go = shutil.which("go")
    if go is None:
        return
    pp = subprocess.run([go, "tool", "pprof", "-top", "-nodefraction=0", "-unit=B",
                         "-symbolize=none", "-sample_index=inuse_space", str(out)],
                        capture_output=True, text=True, timeout=120)
    if pp.returncode != 0:
        pytest.skip(f"go tool pprof does not run here: {pp.stderr[:200]}")
    rows = {}
    for line in pp.stdout.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0].endswith("B") and parts[0][:-1].isdigit():
            rows[parts[5]] = int(parts[0][:-1])
    assert rows["workload.Store.add"] == want_bytes["workload.Store.add"]
    assert rows["workload.make_rows"] == want_bytes["workload.make_rows"]


def test_exit_code_duration_and_command_line(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text("import sys\nX = [1] * 1000\nsys.exit(7)\n")
    out = tmp_path / "job.pb.gz"
    res = memgate("capture", "-o", out, "--duration", "1m", "--", "python", "-X", "dev",
                  "job.py", "--say", "hi\x1b[31m", cwd=tmp_path)
    assert res.returncode == 7, res.stderr
    prof = load_profile(str(out))
    assert prof.duration_nanos == 60 * 10**9
    comment = next(c for c in prof.comments if c.startswith("memgate capture:"))
    assert "python -X dev job.py --say" in comment
    assert "\x1b" not in comment  # escaped: a command line is untrusted text
    assert top_json(out, "inuse_space", tmp_path)["job.<module>"] >= 8000


@pytest.mark.slow
def test_module_code_and_console_script(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "main.py").write_text("def run():\n    return [bytes(500) for _ in range(50)]\n"
                                 "KEEP = run()\n")
    res = memgate("capture", "-o", "m.pb.gz", "--", "python", "-m", "pkg.main", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert top_json(tmp_path / "m.pb.gz", "inuse_space", tmp_path)["pkg.main.run"] >= 25000

    res = memgate("capture", "-o", "c.pb.gz", "--", "python", "-c",
                  "import sys; K = [bytes(1000) for _ in range(10)]; sys.exit(len(sys.argv))",
                  "a", "b", cwd=tmp_path)
    assert res.returncode == 3, res.stderr  # sys.argv == ["-c", "a", "b"], as python sets it
    assert top_json(tmp_path / "c.pb.gz", "inuse_space", tmp_path)["<string>.<module>"] >= 10000

    tool = tmp_path / "bin" / "mytool"
    tool.parent.mkdir()
    tool.write_text(f"#!{sys.executable}\nimport pkg.main\nprint('tool ran')\n")
    tool.chmod(0o755)
    env = {**ENV, "PATH": f"{tool.parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"}
    res = memgate("capture", "-o", "t.pb.gz", "--", "mytool", cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert "tool ran" in res.stdout
    assert top_json(tmp_path / "t.pb.gz", "inuse_space", tmp_path)["pkg.main.run"] >= 25000


@pytest.mark.parametrize("command, problem", [
    (["ls", "-l"], "not a Python program"),
    (["no-such-command-memgate"], "command not found"),
    (["python", "missing.py"], "no such file"),
    (["python", "-i"], "runs no program"),
    (["python"], "runs no program"),
])
def test_not_python_is_a_usage_error(tmp_path: Path, command: list[str], problem: str) -> None:
    res = memgate("capture", "-o", "x.pb.gz", "--", *command, cwd=tmp_path)
    assert res.returncode == 2
    assert problem in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x.pb.gz").exists()


def test_snapshot_marks(tmp_path: Path) -> None:
    (tmp_path / "srv.py").write_text(textwrap.dedent("""\
        import memgate.capture
        assert memgate.capture.snapshot() is not None
        WARM = [bytes(100) for _ in range(100)]
        memgate.capture.snapshot()
        AFTER = [bytes(100) for _ in range(5000)]  # allocated after the mark: not in the profile
    """))
    res = memgate("capture", "-o", "s.pb.gz", "--snapshot-at", "mark", "--", "python",
                  "srv.py", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    got = top_json(tmp_path / "s.pb.gz", "inuse_space", tmp_path)["srv.<module>"]
    assert 100 * 100 <= got < 5000 * 100

    # SIGUSR1 marks too (a service that cannot call memgate.capture itself).
    (tmp_path / "sig.py").write_text(textwrap.dedent("""\
        import os, signal
        WARM = [bytes(100) for _ in range(100)]
        os.kill(os.getpid(), signal.SIGUSR1)
        AFTER = [bytes(100) for _ in range(5000)]
    """))
    res = memgate("capture", "-o", "g.pb.gz", "--snapshot-at", "mark", "--", "python",
                  "sig.py", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    got = top_json(tmp_path / "g.pb.gz", "inuse_space", tmp_path)["sig.<module>"]
    assert 100 * 100 <= got < 5000 * 100

    (tmp_path / "nomark.py").write_text("X = 1\n")
    res = memgate("capture", "-o", "n.pb.gz", "--snapshot-at", "mark", "--", "python",
                  "nomark.py", cwd=tmp_path)
    assert res.returncode == 3
    assert "marked no snapshot point" in res.stderr
    assert not (tmp_path / "n.pb.gz").exists()


def test_a_killed_command_leaves_no_profile(tmp_path: Path) -> None:
    (tmp_path / "die.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    res = memgate("capture", "-o", "d.pb.gz", "--", "python", "die.py", cwd=tmp_path)
    assert res.returncode == 128 + signal.SIGKILL
    assert "killed by signal 9" in res.stderr
    assert not list(tmp_path.glob("d.pb.gz*")) and not list(tmp_path.glob(".d.pb.gz*"))


def test_uncaught_exception_is_python_s_exit_status(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text("K = [bytes(64)] * 3\nraise ValueError('boom')\n")
    res = memgate("capture", "-o", "b.pb.gz", "--", "python", "boom.py", cwd=tmp_path)
    assert res.returncode == 1
    assert "ValueError: boom" in res.stderr
    assert (tmp_path / "b.pb.gz").exists()  # a failing run is still profiled


@pytest.mark.slow
def test_memray_backend(tmp_path: Path) -> None:
    pytest.importorskip("memray", reason="memray is not installed (pip install memgate[memray])")
    (tmp_path / "churn.py").write_text(textwrap.dedent("""\
        def churn():
            for _ in range(200):
                b = bytearray(10000)  # allocated and freed: only alloc_* sees it
            return b
        KEEP = churn()
    """))
    res = memgate("capture", "-o", "r.pb.gz", "--backend", "memray", "--", "python",
                  "churn.py", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    prof = load_profile(str(tmp_path / "r.pb.gz"))
    assert [t.type for t in prof.sample_types] == [
        "alloc_objects", "alloc_space", "inuse_objects", "inuse_space", "peak_objects",
        "peak_space"]
    alloc = top_json(tmp_path / "r.pb.gz", "alloc_space", tmp_path)["churn.churn"]
    inuse = top_json(tmp_path / "r.pb.gz", "inuse_space", tmp_path)["churn.churn"]
    assert alloc >= 200 * 10000 > 10000 <= inuse < 2 * 10100


def test_unwritable_output_is_refused_before_the_command_runs(tmp_path: Path) -> None:
    (tmp_path / "side.py").write_text("open('ran', 'w').close()\n")
    res = memgate("capture", "-o", "no/such/dir/p.pb.gz", "--", "python", "side.py",
                  cwd=tmp_path)
    assert res.returncode == 3
    assert res.stderr.strip().splitlines() == ["memgate: no/such/dir: directory does not exist"]
    assert not (tmp_path / "ran").exists()
    res = memgate("capture", "-o", "side.py", "--", "python", "side.py", cwd=tmp_path)
    assert res.returncode == 3 and "is an input" in res.stderr
    assert (tmp_path / "side.py").read_text().startswith("open(")
