"""The pytest plugin, from a user's side: a small project's test suite run by pytest in a
subprocess, its profile gated by `memgate check`, its limits failing tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
ENV.pop("PYTEST_ADDOPTS", None)

APP = '''\
CACHE = {}


def remember(key, size):
    CACHE[key] = "x" * size


def compute(n):
    return [i * 2 for i in range(n)]
'''

TESTS = '''\
import app


def test_compute():
    assert len(app.compute(20000)) == 20000


def test_remember():
    app.remember("a", {SIZE})


def test_other():
    assert sum(app.compute(100)) > 0
'''

POLICY = '''\
version: 1
defaults:
  sample_types: [inuse_space, inuse_objects]
  max_increase: "20%"
  max_increase_level: ["64KiB", "1k"]
  noise_floor_level: ["16KiB", "200"]
'''


def pytest_run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "memgate.pytest_plugin",
                           "-p", "no:cacheprovider", "-q", *args], cwd=project, env=ENV,
                          capture_output=True, text=True, timeout=300)


def memgate(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "memgate", *args], cwd=project, env=ENV,
                          capture_output=True, text=True, timeout=300)


def make_project(root: Path, size: str) -> Path:
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(APP)
    (root / "tests" / "test_app.py").write_text(TESTS.replace("{SIZE}", size))
    (root / "memgate.yml").write_text(POLICY)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    return root


@pytest.mark.slow
def test_one_test_starts_retaining_and_the_gate_names_it(tmp_path: Path) -> None:
    project = make_project(tmp_path, "10")
    res = pytest_run(project, "--memgate=prof", "--memgate-duration=1m")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "memgate: 3 tests retained" in res.stdout
    res = memgate(project, "baseline", "update", "-c", "tests", "prof/pytest.pb.gz",
                  "--reason", "initial")
    assert res.returncode == 0, res.stderr

    # The same suite again passes.
    res = pytest_run(project, "--memgate=again", "--memgate-duration=1m")
    assert res.returncode == 0, res.stdout
    res = memgate(project, "check", "-c", "tests", "again/pytest.pb.gz", "--format", "json")
    assert res.returncode == 0, res.stdout + res.stderr

    # test_remember now keeps 2 MB alive.
    (project / "tests" / "test_app.py").write_text(TESTS.replace("{SIZE}", "2_000_000"))
    res = pytest_run(project, "--memgate=leak", "--memgate-duration=1m")
    assert res.returncode == 0, res.stdout  # no limits set: pytest itself passes
    res = memgate(project, "check", "-c", "tests", "leak/pytest.pb.gz", "--format", "json")
    assert res.returncode == 1, res.stdout + res.stderr
    report = json.loads(res.stdout)
    failing = {f["function"] for f in report["findings"] if f["severity"] == "fail"
               and f.get("significant", True)}
    # The finding names the function and the test; no other test is named.
    assert "app.remember@tests/test_app.py::test_remember" in failing, failing
    assert not any("test_compute" in f or "test_other" in f for f in failing), failing


def test_marker_and_ini_limits_fail_with_one_screen(tmp_path: Path) -> None:
    project = make_project(tmp_path, "1_000_000")
    tests = project / "tests" / "test_app.py"
    tests.write_text("import pytest\n" + tests.read_text().replace(
        "def test_remember", '@pytest.mark.memgate(max_retained="100KiB")\ndef test_remember'))
    res = pytest_run(project, "--memgate=prof", "--strict-markers")
    assert res.returncode == 1, res.stdout
    out = res.stdout
    # Measured after the teardown: pytest counts the test passed and its teardown an error.
    assert "3 passed, 1 error" in out
    block = out[out.index("memgate: tests/test_app.py::test_remember"):]
    block = block[:block.index("profile of every test")]
    assert "retained 977 KiB" in block and "max_retained 100 KiB" in block
    assert "(limit from the marker)" in block
    assert "app.remember" in block.splitlines()[2]
    assert len(block.splitlines()) <= 8  # one screen, not a dump

    # The ini default applies to tests without a marker; a marker overrides it.
    (project / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\npythonpath = ['.']\nmemgate_max_retained = '1KiB'\n")
    tests.write_text(tests.read_text().replace('max_retained="100KiB"', 'max_retained="2MiB"'))
    res = pytest_run(project, "--memgate=prof")
    assert res.returncode == 0, res.stdout  # compute's list is freed: nothing retained
    tests.write_text(tests.read_text().replace(
        "def test_other():\n", "KEEP = []\ndef test_other():\n    KEEP.append(bytes(5000))\n"))
    res = pytest_run(project, "--memgate=prof")
    assert res.returncode == 1
    assert "test_other retained" in res.stdout and "(limit from the ini)" in res.stdout


def test_off_without_the_option(tmp_path: Path) -> None:
    project = make_project(tmp_path, "1_000_000")
    tests = project / "tests" / "test_app.py"
    tests.write_text("import pytest\n" + tests.read_text().replace(
        "def test_remember", '@pytest.mark.memgate(max_retained="1KiB")\ndef test_remember'))
    res = pytest_run(project, "--strict-markers")
    assert res.returncode == 0, res.stdout
    assert "memgate:" not in res.stdout
    assert not list(project.rglob("*.pb.gz"))


def test_bad_limits_and_names_are_usage_errors(tmp_path: Path) -> None:
    project = make_project(tmp_path, "10")
    (project / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\npythonpath = ['.']\nmemgate_max_retained = 'lots'\n")
    res = pytest_run(project, "--memgate=prof")
    assert res.returncode == 4
    assert "memgate_max_retained" in res.stderr and "Traceback" not in res.stderr
    res = pytest_run(project, "--memgate=prof", "--memgate-duration=soon",
                     "-o", "memgate_max_retained=")
    assert res.returncode == 4 and "--memgate-duration" in res.stderr


@pytest.mark.slow
def test_hostile_test_names_are_escaped(tmp_path: Path) -> None:
    project = make_project(tmp_path, "10")
    (project / "tests" / "test_evil.py").write_text(textwrap.dedent('''\
        import pytest
        KEEP = []
        @pytest.mark.parametrize("x", ["\\x1b[2J\\x07bell", "a" * 3000])
        def test_param(x):
            KEEP.append(bytearray(10000))
    '''))
    res = pytest_run(project, "--memgate=prof", "--memgate-duration=1m")
    assert res.returncode == 0, res.stdout
    res = memgate(project, "top", "--format", "json", "prof/pytest.pb.gz")
    names = [f["name"] for f in json.loads(res.stdout)["functions"]]
    evil = [n for n in names if n.startswith("pytest:tests/test_evil.py")]
    assert len(evil) == 2, names
    evil += [n for n in names if "@tests/test_evil.py" in n]
    assert len(evil) == 4, names
    assert all("\x1b" not in n and "\x07" not in n and len(n) <= 1024 for n in evil)


@pytest.mark.parametrize("module", ["memgate.pytest_plugin"])
def test_entry_point_names_the_plugin(module: str) -> None:
    import importlib

    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    eps = meta["project"]["entry-points"]["pytest11"]
    assert eps == {module: module}
    plugin = importlib.import_module(eps[module])
    assert callable(plugin.pytest_addoption) and callable(plugin.pytest_configure)


@pytest.mark.slow
def test_memray_backend_sees_what_a_test_allocated_and_freed(tmp_path: Path) -> None:
    pytest.importorskip("memray", reason="memray is not installed (pip install memgate[memray])")
    project = make_project(tmp_path, "10")
    res = pytest_run(project, "--memgate=prof", "--memgate-backend=memray")
    assert res.returncode == 0, res.stdout + res.stderr
    res = memgate(project, "top", "--format", "json", "-i", "alloc_space", "prof/pytest.pb.gz")
    alloc = {f["name"]: f["flat"] for f in json.loads(res.stdout)["functions"]}
    res = memgate(project, "top", "--format", "json", "-i", "inuse_space", "prof/pytest.pb.gz")
    inuse = {f["name"]: f["flat"] for f in json.loads(res.stdout)["functions"]}
    # compute(20000) builds a list of 20000 ints that test_compute drops: allocated, not kept.
    fn = "app.compute@tests/test_app.py::test_compute"
    assert alloc[fn] >= 20000 * 8
    assert inuse.get(fn, 0) < alloc[fn] / 10
