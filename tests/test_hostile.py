"""Hostile input and failures, one regression test per bug found by the fuzzing work, plus the
limits flags, URL edge cases, paths that try to escape, and Ctrl-C (exit 130, no partial
files). See docs/reliability.md."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from memgate.config import Config
from memgate.errors import FetchError, MemgateError, PolicyError, ReportError
from memgate.profile.decode import decode
from memgate.profile.fetch import delta_seconds
from memgate.profile.fetch_options import FetchOptions
from memgate.profile.limits import InputLimits
from memgate.profile.source import load_profile
from tests import clirun
from tests.reports import check_report
from tests.waiting import blocked_reading_a_pipe, wait_until

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "tests" / "fixtures" / "profiles"
SMALL = PROFILES / "seedleak-noleak-1.pb.gz"
LEAK = PROFILES / "seedleak-leak-1.pb.gz"


def run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    full_env.pop("GITHUB_ACTIONS", None)
    full_env.update(env or {})
    del timeout  # in this process (tests/clirun.py): the limits under test bound the time
    return clirun.run(args, cwd=cwd, env=full_env)


def assert_one_line_error(out: subprocess.CompletedProcess[str], code: int = 3) -> str:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memgate: "), out.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Limits: flags and environment variables
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "what"), [("--max-samples", "samples"),
                                            ("--max-locations", "locations")])
@pytest.mark.parametrize("command", ["top", "diff", "check"])
def test_count_limit_flags(flag: str, what: str, command: str) -> None:
    args: list[str | Path] = {"top": ["top", SMALL], "diff": ["diff", SMALL, SMALL],
                              "check": ["check", "--baseline", SMALL, "--duration", "1m",
                                        SMALL]}[command]
    line = assert_one_line_error(run(*args, flag, "3"))
    assert f"more than 3 {what}" in line and flag in line


def test_count_limit_environment_variables() -> None:
    line = assert_one_line_error(run("top", SMALL, env={"MEMGATE_MAX_LOCATIONS": "3"}))
    assert "more than 3 locations" in line
    line = assert_one_line_error(run("top", SMALL, env={"MEMGATE_MAX_SAMPLES": "x"}))
    assert "MEMGATE_MAX_SAMPLES must be an integer" in line


def test_count_limit_flags_apply_to_baseline_update(tmp_path: Path) -> None:
    line = assert_one_line_error(run("baseline", "update", "-c", "api", SMALL, "--reason", "r",
                                     "--baselines", tmp_path / "b", "--max-samples", "2"))
    assert "more than 2 samples" in line
    assert not (tmp_path / "b" / "api").exists()
    # The override lives in the command's configuration only.
    assert InputLimits.from_env(os.environ).max_samples == InputLimits().max_samples


def test_count_limit_flag_is_validated() -> None:
    out = run("top", SMALL, "--max-samples", "0")
    assert out.returncode == 2 and "Traceback" not in out.stderr


@pytest.mark.parametrize("size", ["inf", "nan", "0.1", "-1", "1XB"])
def test_bad_max_decompressed_is_a_usage_error(size: str) -> None:
    """Bug: `--max-decompressed inf` / `nan` raised OverflowError / ValueError. A malformed
    flag is a usage error like any other: exit 2, click's message, no traceback."""
    out = run("top", SMALL, "--max-decompressed", size)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "Invalid value for '--max-decompressed': invalid size" in out.stderr


def test_decompressed_limit_flag() -> None:
    line = assert_one_line_error(run("top", SMALL, "--max-decompressed", "5000"))
    assert "decompressed size exceeds the limit of 5000 bytes" in line


def test_element_counts_are_checked_before_the_protobuf_runtime_builds_them() -> None:
    """Bug: 1 GiB of two-byte Location fields (a 1 MB gzip file) made the protobuf runtime
    allocate ~40 GiB before the location limit was checked. Run under a 1.5 GiB address
    space cap: the count walk refuses it without parsing."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))\n"
        "from memgate.profile.decode import decode\n"
        "from memgate.profile.limits import InputLimits\n"
        "from memgate.errors import LimitError\n"
        "data = b'\\x22\\x00' * (100 << 20)\n"
        "try:\n"
        "    decode(data, 'x', InputLimits(max_decompressed_bytes=1 << 30))\n"
        "except LimitError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "more than 5000000 locations" in out.stdout


# ---------------------------------------------------------------------------------------------
# Policy, manifest, report: documents that are too deep or too big
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_deeply_nested_policy_is_one_error(tmp_path: Path) -> None:
    """Bug: 5000 nested brackets raised RecursionError out of PyYAML."""
    from memgate.policy import load_policy

    p = tmp_path / "p.yml"
    p.write_text("version: 1\nrules: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(PolicyError, match="nested too deeply"):
        load_policy(p)
    assert_one_line_error(run("policy", "check", p))


def test_billion_laughs_policy_is_refused_fast(tmp_path: Path) -> None:
    """Bug: YAML aliases are shared, but the schema validator walked the expansion (9^10
    values: a hang)."""
    from memgate.policy import load_policy

    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    prev = "a"
    for name in "bcdefghij":
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
        prev = name
    p = tmp_path / "p.yml"
    p.write_text("\n".join(lines) + "\nversion: 1\n")
    t0 = time.monotonic()
    with pytest.raises(PolicyError, match="policy too large"):
        load_policy(p)
    assert time.monotonic() - t0 < 5


def test_deeply_nested_report_is_one_error(tmp_path: Path) -> None:
    """Bug: json's RecursionError escaped `report merge` and `baseline accept`."""
    from memgate.baseline.store import Store
    from memgate.report.reading import load_report

    p = tmp_path / "r.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ReportError, match="nested too deeply"):
        load_report(str(p), InputLimits())
    with pytest.raises(ReportError, match="nested too deeply"):
        Store(tmp_path / "b").accept(p, reason="r")
    assert_one_line_error(run("report", "merge", p))


def test_deeply_nested_manifest_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    from memgate.baseline.store import Store
    from memgate.errors import BaselineError

    store = Store(tmp_path / "b")
    store.update("api", [str(SMALL)], reason="r")
    (tmp_path / "b" / "api" / "manifest.json").write_text("[" * 100_000)
    with pytest.raises(BaselineError, match="nested too deeply"):
        store.load("api")
    assert any("nested too deeply" in p for p in store.verify("api"))


# ---------------------------------------------------------------------------------------------
# Report paths
# ---------------------------------------------------------------------------------------------


def _check_args(*extra: str | Path) -> list[str | Path]:
    return ["check", "--baseline", SMALL, "--duration", "1m", *extra, SMALL]


def test_report_path_in_a_missing_directory(tmp_path: Path) -> None:
    line = assert_one_line_error(run(*_check_args("--json", tmp_path / "no" / "r.json")))
    assert "directory does not exist" in line


@pytest.mark.parametrize("flag", ["--json", "--summary"])
def test_report_path_that_is_a_directory(tmp_path: Path, flag: str) -> None:
    """Bug: os.replace onto a directory raised IsADirectoryError (a traceback)."""
    (tmp_path / "d").mkdir()
    line = assert_one_line_error(run(*_check_args(flag, tmp_path / "d")))
    assert "is a directory" in line
    assert os.listdir(tmp_path / "d") == [] and not list(tmp_path.glob(".*.tmp"))


def test_write_outputs_turns_os_errors_into_one_line(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from memgate import outputs

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", fail)
    with pytest.raises(MemgateError, match="cannot write: No space left on device"):
        outputs.write_outputs([outputs.Output(str(tmp_path / "r.json"), "{}")])
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone


def test_step_summary_that_cannot_be_written(tmp_path: Path) -> None:
    """Bug: an unwritable $GITHUB_STEP_SUMMARY raised a traceback."""
    out = run(*_check_args(), env={"GITHUB_ACTIONS": "true",
                                   "GITHUB_STEP_SUMMARY": str(tmp_path / "no" / "s.md")})
    assert out.returncode == 3 and "Traceback" not in out.stderr
    assert "cannot append the step summary" in out.stderr


@pytest.mark.parametrize("kind", ["directory", "missing"])
def test_report_merge_of_a_directory_or_missing_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "x"
    if kind == "directory":
        target.mkdir()
    assert_one_line_error(run("report", "merge", target))
    # accept reads a report the same way: the same one-line error and exit code (3).
    assert_one_line_error(run("baseline", "accept", "--from-report", target, "--reason", "r",
                              "--baselines", tmp_path / "b"))
    (tmp_path / "d").mkdir()
    line = assert_one_line_error(run("report", "merge", "--json", tmp_path / "d",
                                     ROOT / "tests/fixtures/reports/pass.json"))
    assert "is a directory" in line


@pytest.mark.parametrize("name", ["../x", "..", "/etc", "a/b", ".hidden", "a\nb", "x" * 200])
def test_component_names_cannot_escape(tmp_path: Path, name: str) -> None:
    line = assert_one_line_error(run("baseline", "update", "-c", name, SMALL, "--reason", "r",
                                     "--baselines", tmp_path / "b"))
    assert "invalid component name" in line
    assert_one_line_error(run("check", "-c", name, SMALL, "--baselines", tmp_path / "b"))
    assert not (tmp_path / "b").exists() or list((tmp_path / "b").iterdir()) == []


@pytest.mark.parametrize("bad", ["../outside.pb.gz", "{abs}", "link.pb.gz"])
def test_accept_refuses_candidate_paths_outside_the_working_directory(
        tmp_path: Path, bad: str) -> None:
    """A report is data (maybe a fork's artifact): accept reads candidate profiles only from
    the directory it runs in, never ``../..`` or absolute paths elsewhere, nor symlinks out."""
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "outside.pb.gz"
    shutil.copy(SMALL, outside)
    (work / "link.pb.gz").symlink_to(outside)
    import hashlib

    path = bad.replace("{abs}", str(outside))
    report = check_report([{"path": path, "sha256": hashlib.sha256(outside.read_bytes())
                            .hexdigest(), "duration_seconds": 60}])
    (work / "r.json").write_text(json.dumps(report))
    line = assert_one_line_error(run("baseline", "accept", "--from-report", "r.json",
                                     "--reason", "r", cwd=work))
    assert "outside the current directory" in line
    assert not (work / "baselines" / "api").exists()


def test_accept_takes_absolute_paths_inside_the_working_directory(tmp_path: Path) -> None:
    import hashlib

    shutil.copy(SMALL, tmp_path / "c.pb.gz")
    report = check_report([{"path": str(tmp_path / "c.pb.gz"),
                            "sha256": hashlib.sha256(SMALL.read_bytes()).hexdigest(),
                            "duration_seconds": 60}])
    (tmp_path / "r.json").write_text(json.dumps(report))
    out = run("baseline", "accept", "--from-report", "r.json", "--reason", "r", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------------------------------
# URLs (tests/test_fetch.py has the basic cases: 404, HTML, redirect loop, file:, timeout)
# ---------------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/trickle"):
            # Headers at once, then one byte every 0.2 s: no single read ever times out.
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"\x00")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif self.path.startswith("/sleep"):
            # A server that never answers: the client is now waiting (the Ctrl-C test waits
            # for that), until the module's server stops.
            self.server.sleeping.set()  # type: ignore[attr-defined]
            self.server.stopping.wait(30)  # type: ignore[attr-defined]
        elif self.path.startswith("/short"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b\x08\x00")
        elif self.path.startswith("/redirect-ftp"):
            self.send_response(301)
            self.send_header("Location", "ftp://example.invalid/heap")
            self.end_headers()
        else:
            self.send_response(500)
            self.end_headers()


#: The running test server (for the Ctrl-C test to see when a request of it is waiting).
SERVERS: list[ThreadingHTTPServer] = []


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    srv.sleeping, srv.stopping = threading.Event(), threading.Event()  # type: ignore[attr-defined]
    SERVERS.append(srv)
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.stopping.set()  # type: ignore[attr-defined]
    srv.shutdown()


def test_trickling_server_hits_the_total_timeout(server: str) -> None:
    """Bug: a server sending a byte every 0.2 s never tripped the per-read socket timeout,
    so the fetch could last as long as the server liked."""
    t0 = time.monotonic()
    with pytest.raises(FetchError, match="timed out after 1s"):
        load_profile(f"{server}/trickle", Config(fetch=FetchOptions(timeout=1.0)))
    assert time.monotonic() - t0 < 5


def test_body_shorter_than_announced(server: str) -> None:
    with pytest.raises(FetchError, match="connection closed after 4 of 100000 bytes"):
        load_profile(f"{server}/short")


def test_redirect_to_another_scheme(server: str) -> None:
    with pytest.raises(FetchError, match="only http and https"):
        load_profile(f"{server}/redirect-ftp")


def test_server_error(server: str) -> None:
    with pytest.raises(FetchError, match="HTTP 500"):
        load_profile(f"{server}/x")


@pytest.mark.parametrize("url", ["http://[::1/heap", "http://host:port/heap", "http://",
                                 "gopher://x/heap", "javascript:alert(1)://x"])
def test_invalid_urls_are_one_line(url: str) -> None:
    """Bug: an invalid IPv6 host raised ValueError from urllib.parse."""
    assert_one_line_error(run("top", "--timeout", "2", url))


@pytest.mark.parametrize("seconds", ["inf", "1e308", "nan", "-5", "x"])
def test_absurd_delta_windows_add_no_wait(seconds: str) -> None:
    """Bug: ?seconds=1e308 (or inf) overflowed the socket timeout: OverflowError."""
    assert delta_seconds(f"http://h/debug/pprof/heap?seconds={seconds}") == 0.0
    out = run("top", "--timeout", "2", f"http://127.0.0.1:1/heap?seconds={seconds}")
    assert_one_line_error(out)


@pytest.mark.parametrize("timeout", ["0", "-1", "inf", "nan"])
@pytest.mark.parametrize("profile", ["http://127.0.0.1:1/heap", "local"])
def test_absurd_timeouts_are_usage_errors(timeout: str, profile: str) -> None:
    """Bug: --timeout -1 / inf / nan raised ValueError or OverflowError from the socket; then
    they were found only at the first URL (never, without one). Now: exit 2 while parsing."""
    spec = str(PROFILES / "seedleak-noleak-1.pb.gz") if profile == "local" else profile
    out = run("top", "--timeout", timeout, spec)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert "'--timeout': must be a positive number of seconds" in out.stderr


# ---------------------------------------------------------------------------------------------
# Ctrl-C: exit 130, one line, no partial files
# ---------------------------------------------------------------------------------------------


def _default_sigint() -> None:
    """Run in the child before exec: a shell starts background jobs with SIGINT ignored, and
    Python then keeps it ignored, so these tests would hang when the suite runs with ``&``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(args: list[str | Path], cwd: Path, ready: Callable[[], object], after: float = 0,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Start memgate, wait until ``ready()`` (the command is where the test wants it, not still
    importing), then ``after`` more seconds, and press Ctrl-C."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("GITHUB_ACTIONS", None)
    proc = subprocess.Popen([sys.executable, "-m", "memgate", *map(str, args)], cwd=cwd,
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)
    wait_until(lambda: ready() or proc.poll() is not None, "the command to get going", 60)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_ctrl_c_during_check_leaves_no_report(tmp_path: Path, server: str) -> None:
    sleeping = SERVERS[-1].sleeping  # type: ignore[attr-defined]
    sleeping.clear()
    out = _interrupt(["check", "--baseline", SMALL, "--duration", "1m", "--json", "out.json",
                      "--summary", "out.md", f"{server}/sleep"], tmp_path, sleeping.is_set)
    line = assert_one_line_error(out, 130)
    assert line == "memgate: interrupted"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
# Seconds into the update (from when it takes the lock; each step of the write takes 0.4 s).
@pytest.mark.parametrize("after", [0.0, 1.0, 1.6, 2.0, 2.4])
def test_ctrl_c_during_baseline_update_keeps_the_old_baseline(tmp_path: Path,
                                                              after: float) -> None:
    from memgate.baseline.store import Store

    root = tmp_path / "b"
    Store(root).update("api", [str(SMALL)], reason="first", duration_seconds=60)
    before = {p.name: p.read_bytes() for p in (root / "api").iterdir()}
    out = _interrupt(["baseline", "update", "-c", "api", LEAK, "--reason", "second",
                      "--baselines", root, "--duration", "1m"], tmp_path,
                     (root / ".api.lock").exists, after=after,
                     env={"MEMGATE_TEST_STORE_DELAY": "0.4"})
    if out.returncode == 0:
        pytest.skip("the update finished before the interrupt (slow machine)")
    assert_one_line_error(out, 130)
    now = {p.name: p.read_bytes() for p in (root / "api").iterdir()}
    if now != before:
        # Interrupted after the commit point (while deleting the old version): the new
        # baseline is complete and in effect; the old one's leftovers go with the next write.
        assert Store(root).load("api").reason == "second"
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    assert Store(root).verify() == []


@pytest.mark.slow
def test_sigint_exit_code_is_130_for_top(tmp_path: Path) -> None:
    """The plain case, independent of any server: stdin that never ends."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "memgate", "top", "-"], stdin=r,
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=full_env, cwd=tmp_path, preexec_fn=_default_sigint)
    os.close(r)
    wait_until(lambda: blocked_reading_a_pipe(proc.pid) or proc.poll() is not None,
               "memgate top - to read its stdin", 60)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    os.close(w)
    assert proc.returncode == 130, err
    assert err.strip() == "memgate: interrupted"


def test_decode_of_the_regression_inputs_in_process() -> None:
    """Every input above that reaches the decoder, in-process (fast, for bisecting)."""
    for data in (b"\x22\x00" * 1000, b"\x12\x00" * 1000):
        with pytest.raises(MemgateError):
            decode(data, "x", InputLimits(max_samples=10, max_locations=10))
    assert socket  # (imported for the server fixture's type only)


def test_a_bug_is_one_line_and_exit_3_not_the_gates_exit_1(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An uncaught exception would exit 1, which CI reads as "the gate failed"."""
    from click.testing import CliRunner

    import memgate.report.top
    from memgate.cli import main

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(memgate.report.top, "build_top", boom)
    monkeypatch.delenv("MEMGATE_DEBUG", raising=False)
    res = CliRunner().invoke(main, ["top", str(SMALL)])
    assert res.exit_code == 3
    assert res.output.startswith("memgate: internal error: RuntimeError: simulated bug (a bug in")
    monkeypatch.setenv("MEMGATE_DEBUG", "1")
    res = CliRunner().invoke(main, ["top", str(SMALL)])
    assert isinstance(res.exception, RuntimeError)


def test_option_overrides_do_not_outlive_a_usage_error() -> None:
    """--header/--timeout/--max-* of a command that fails to parse must not stay in effect
    for whatever runs next in the process."""
    from click.testing import CliRunner

    from memgate.cli import main

    res = CliRunner().invoke(main, ["baseline", "update", "-H", "Authorization: Bearer x",
                                    "--timeout", "1", "--max-decompressed", "1k",
                                    "--max-samples", "3", "x.pb.gz"])
    assert res.exit_code == 2  # no --component, no --reason
    assert Config.from_env(os.environ) == Config()
