"""Report files: all or none, written through links and into pipes, never over an input."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from memgate.errors import MemgateError
from memgate.outputs import Output, check_outputs, write_outputs
from tests import clirun

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "tests" / "fixtures" / "profiles"
BASE = PROFILES / "seedleak-noleak-1.pb.gz"
CAND = PROFILES / "seedleak-leak-1.pb.gz"
linux_proc = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")


def memgate(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_ACTIONS", None)
    return clirun.run(args, cwd=cwd, env=env)


def check_args(*outputs: str) -> list[str]:
    return ["check", "--baseline", str(BASE), "--duration", "15s", str(CAND), *outputs]


@linux_proc
def test_a_failing_output_leaves_none_of_the_others(tmp_path: Path) -> None:
    r = memgate(*check_args("--summary", "s.md", "--html", "x.html", "--json", "/proc/x.json"),
                cwd=tmp_path)
    assert r.returncode == 3
    assert r.stderr == "memgate: /proc/x.json: cannot write: No such file or directory\n"
    assert sorted(os.listdir(tmp_path)) == []  # no s.md, no x.html, no temporary files


def test_symbolic_links_are_followed(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "link.json").symlink_to("out/real.json")
    write_outputs([Output(str(tmp_path / "link.json"), "{}\n")])
    assert (tmp_path / "link.json").is_symlink()
    assert (tmp_path / "out" / "real.json").read_text() == "{}\n"


def test_pipes_and_devices_are_written_to_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_outputs([Output(str(fifo), "# report\n"), Output(str(tmp_path / "r.md"), "x")])
    reader.join(timeout=10)
    assert got == [b"# report\n"]
    assert fifo.is_fifo() and (tmp_path / "r.md").read_text() == "x"
    write_outputs([Output(os.devnull, "discarded")])
    assert Path(os.devnull).is_char_device()


def test_process_substitution(tmp_path: Path) -> None:
    """`--summary >(wc -c)`: /dev/fd/N names a pipe through a per-process link."""
    script = (f'"{sys.executable}" -m memgate {" ".join(check_args())} --summary '
              '>(wc -c > count.txt) >/dev/null; rc=$?; wait; exit $rc')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                       text=True, check=False)
    assert r.returncode in (0, 1) and r.stderr == "", r.stderr
    for _ in range(50):
        if (tmp_path / "count.txt").is_file() and (tmp_path / "count.txt").read_text().strip():
            break
        threading.Event().wait(0.1)
    assert int((tmp_path / "count.txt").read_text()) > 1000


@pytest.mark.parametrize(("paths", "message"), [
    (["a.json", "./a.json"], "is given for two outputs (a.json and this one)"),
    (["-"], "'-' is not a file name here"),
    (["missing/a.json"], "directory does not exist"),
    ([".."], "is a directory, not a file"),
])
def test_outputs_refused_before_any_work(tmp_path: Path, paths: list[str],
                                         message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MemgateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_outputs(paths)


def test_an_output_never_overwrites_an_input(tmp_path: Path) -> None:
    victim = tmp_path / "victim.pb.gz"
    victim.write_bytes(CAND.read_bytes())
    for args in (["check", "--baseline", str(BASE), "--duration", "15s", "victim.pb.gz",
                  "--json", "victim.pb.gz"],
                 ["diff", str(BASE), "victim.pb.gz", "--output", "./victim.pb.gz"]):
        r = memgate(*args, cwd=tmp_path)
        assert r.returncode == 3
        assert "is an input (" in r.stderr and r.stderr.count("\n") == 1
        assert victim.read_bytes() == CAND.read_bytes()


def test_dev_stdout_redirected_to_a_file_is_appended_to(tmp_path: Path) -> None:
    """`--json /dev/stdout >> ci.log`: the log keeps what it had; the report and the text
    both land in it (the file is written through the descriptor, not replaced)."""
    log = tmp_path / "ci.log"
    log.write_text("EXISTING CI LOG\n")
    script = (f'"{sys.executable}" -m memgate {" ".join(check_args())} --json /dev/stdout '
              '--summary /dev/stderr >> ci.log 2>&1')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_ACTIONS", None)
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=False)
    assert r.returncode in (0, 1)
    text = log.read_text()
    assert text.startswith("EXISTING CI LOG\n")
    assert '"verdict"' in text and "## " in text and "memgate: " in text


def test_an_output_never_overwrites_the_policy_or_a_merged_report(tmp_path: Path) -> None:
    policy = tmp_path / "memgate.yml"
    policy.write_text("version: 1\n")
    r = memgate(*check_args("--summary", "memgate.yml"), cwd=tmp_path)  # found, not given
    assert r.returncode == 3 and "memgate.yml: is an input (memgate.yml)" in r.stderr
    assert policy.read_text() == "version: 1\n"
    r = memgate(*check_args("--json", "r.json"), cwd=tmp_path)
    assert r.returncode in (0, 1)
    before = (tmp_path / "r.json").read_text()
    r = memgate("report", "merge", "r.json", "--json", "r.json", cwd=tmp_path)
    assert r.returncode == 3 and "is an input (r.json)" in r.stderr
    assert (tmp_path / "r.json").read_text() == before


def test_a_step_summary_that_cannot_be_written_leaves_no_report_file(tmp_path: Path) -> None:
    """The step summary is one of the outputs: when it cannot be appended to, the JSON report
    is not written either (all or none)."""
    (tmp_path / "summary-dir").mkdir()
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary-dir"), "NO_COLOR": "1"}
    out = clirun.run(["check", "--baseline", BASE, CAND, "--duration", "15s", "--json",
                      tmp_path / "report.json", "--step-summary"], env=env)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "cannot append the step summary" in out.stderr
    assert not (tmp_path / "report.json").exists()
