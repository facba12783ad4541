"""The GitHub Action, run the way a runner runs it.

:func:`run_action` reads ``action.yml`` and executes each ``runs.steps`` script with
``bash --noprofile --norc -eo pipefail FILE`` (GitHub's ``shell: bash``), with the step's
``env:`` after substituting ``${{ inputs.* }}`` (the test's value, else the input's default),
``${{ github.* }}`` and ``${{ steps.*.outputs.* }}`` (parsed from the previous steps'
``$GITHUB_OUTPUT`` files, heredocs included), in the step's ``working-directory``. The runner's
files (``GITHUB_STEP_SUMMARY``, ``GITHUB_OUTPUT``, the event payload, ``RUNNER_TEMP``) are temp
files; ``GITHUB_ACTION_PATH`` is the repository root. A failing step stops the action, as on
GitHub. The install step is skipped with ``MEMGATE_ACTION_SKIP_INSTALL=1`` (memgate is already
installed for the interpreter running the tests); one test instead runs it against a fake
``python3`` to check what it would do.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from memgate.cli import main as cli_main
from tests import clirun
from tests.pbuild import gz, make_profile

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
MiB = 1 << 20
HEAP_TYPES = (("alloc_objects", "count"), ("alloc_space", "bytes"),
              ("inuse_objects", "count"), ("inuse_space", "bytes"))
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
#: The workspace's component; its profiles are heap snapshots of a 60-second workload.
SVC = {"component": "svc", "duration": "60s"}


# --------------------------------------------------------------------------- test data


def heap_profile(leaky_mib: int, noisy: int) -> bytes:
    """A Go-like heap profile: ``main.leaky`` holds ``leaky_mib`` MiB; ``main.noisy`` has so few
    samples that any change of it is within sampling noise."""
    stacks = [
        (("main.handler", "main.main"), (20000, 2000 * MiB, 2000, 200 * MiB)),
        (("main.leaky", "main.serve", "main.main"),
         (leaky_mib * 10, leaky_mib * MiB, leaky_mib * 10, leaky_mib * MiB)),
        # 64 KiB objects: a few samples' worth, whose growth sampling cannot confirm.
        (("main.noisy", "main.main"), (noisy * 16, noisy * MiB, noisy * 16, noisy * MiB)),
    ]
    return gz(make_profile(stacks, HEAP_TYPES).SerializeToString())


@dataclass(frozen=True)
class Workspace:
    """A repository checkout as the action sees it: a store with component ``svc`` and
    profiles that pass (``profiles/ok.pb.gz``) and fail (``profiles/leak.pb.gz``)."""

    root: Path
    runner: Path  # RUNNER_TEMP and the runner's other files

    @property
    def ok(self) -> str:
        return "profiles/ok.pb.gz"

    @property
    def leak(self) -> str:
        return "profiles/leak.pb.gz"


def make_workspace(tmp: Path) -> Workspace:
    root = tmp / "workspace"
    (root / "profiles").mkdir(parents=True)
    (root / "profiles" / "base.pb.gz").write_bytes(heap_profile(8, 1))
    (root / "profiles" / "ok.pb.gz").write_bytes(heap_profile(8, 1))
    (root / "profiles" / "leak.pb.gz").write_bytes(heap_profile(800, 4))
    res = CliRunner().invoke(cli_main, [
        "baseline", "update", "--baselines", str(root / "baselines"), "--component", "svc",
        "--duration", "60s", "--reason", "test baseline", str(root / "profiles" / "base.pb.gz")])
    assert res.exit_code == 0, res.output
    runner = tmp / "runner"
    runner.mkdir()
    return Workspace(root=root, runner=runner)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path)


# --------------------------------------------------------------------------- the runner


def parse_file_command(text: str) -> dict[str, str]:
    """Parse a ``$GITHUB_OUTPUT`` file as the runner does: ``name=value`` lines and
    ``name<<DELIM`` heredocs (value: the lines up to a line equal to DELIM)."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        eq, hd = line.find("="), line.find("<<")
        if hd >= 0 and (eq < 0 or hd < eq):
            name, delim = line[:hd], line[hd + 2:]
            assert name and delim, f"invalid heredoc line {line!r}"
            value: list[str] = []
            while True:
                assert i < len(lines), f"heredoc delimiter {delim!r} not found"
                if lines[i] == delim:
                    i += 1
                    break
                value.append(lines[i])
                i += 1
            out[name] = "\n".join(value)
        elif eq >= 0:
            out[line[:eq]] = line[eq + 1:]
        else:
            raise AssertionError(f"invalid output line {line!r}")
    return out


@dataclass
class ActionRun:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    step_outputs: dict[str, dict[str, str]]
    step_summary: str
    output_files: list[str] = field(default_factory=list)

    @property
    def annotations(self) -> list[str]:
        return [ln for ln in self.stdout.splitlines()
                if ln.startswith(("::error", "::warning", "::notice"))]


def load_action() -> dict[str, Any]:
    data = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


class Expressions:
    """The few expression forms action.yml may use: context paths joined by ``||``."""

    def __init__(self, inputs: Mapping[str, str], github: Mapping[str, str],
                 steps: Mapping[str, Mapping[str, str]], env: Mapping[str, str]) -> None:
        self.inputs, self.github, self.steps, self.env = inputs, github, steps, env

    def value(self, expr: str) -> str:
        for operand in (o.strip() for o in expr.split("||")):
            v = self.operand(operand)
            if v:
                return v
        return ""

    def operand(self, o: str) -> str:
        if m := re.fullmatch(r"'([^']*)'", o):
            return m.group(1)
        parts = o.split(".")
        if parts[0] == "inputs" and len(parts) == 2:
            assert parts[1] in self.inputs, f"unknown input {parts[1]!r}"
            return self.inputs[parts[1]]
        if parts[0] == "github" and len(parts) == 2:
            assert parts[1] in self.github, f"github.{parts[1]} not simulated"
            return self.github[parts[1]]
        if parts[0] == "env" and len(parts) == 2:
            return self.env.get(parts[1], "")
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return self.steps.get(parts[1], {}).get(parts[3], "")
        raise AssertionError(f"expression {o!r} is not simulated")

    def sub(self, text: str) -> str:
        return EXPR.sub(lambda m: self.value(m.group(1)), text)


#: The check step's script: what :func:`_action_in_process` stands in for.
CHECK_STEP = '"$MEMGATE_PYTHON" -m memgate.action'


def _action_in_process(env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m memgate.action`` (``sys.exit(main())``) in this process, with exactly
    ``env`` as the environment and ``cwd`` as the working directory; output decoded as
    ``subprocess.run(text=True)`` would (universal newlines). A process start per test is
    most of this module's time."""
    from memgate import action

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = action.main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)

    def text(s: str) -> str:
        return s.replace("\r\n", "\n").replace("\r", "\n")

    return subprocess.CompletedProcess([CHECK_STEP], code, text(out.getvalue()),
                                       text(err.getvalue()))


def run_action(ws: Workspace, inputs: Mapping[str, str], *,
               env: Mapping[str, str] | None = None,
               event: Mapping[str, Any] | None = None, event_name: str = "pull_request",
               path: str | None = None, token: str = "ghs_test_token",
               skip_install: bool = True, real_process: bool = False) -> ActionRun:
    """Run action.yml's steps like a runner; see the module docstring.

    With the install skipped, the check step (``"$MEMGATE_PYTHON" -m memgate.action``) runs
    in this process (:func:`_action_in_process`) unless ``real_process``: a few tests keep
    the whole step a real process."""
    action = load_action()
    declared = action["inputs"]
    unknown = set(inputs) - set(declared)
    assert not unknown, f"not inputs of action.yml: {unknown}"
    runner = ws.runner
    summary = runner / "step_summary.md"
    summary.touch()
    event_path = runner / "event.json"
    event_path.write_text(json.dumps(event if event is not None else {
        "pull_request": {"number": 7}, "repository": {"full_name": "o/r"}}))
    github = {"token": token, "action_path": str(ROOT), "workspace": str(ws.root)}
    base_env = {
        "PATH": path if path is not None else
        os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": os.environ.get("HOME", str(runner)),
        "LANG": "C.UTF-8",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_WORKSPACE": str(ws.root),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_API_URL": "http://127.0.0.1:9",  # unroutable unless a test serves it
        "RUNNER_TEMP": str(runner),
    }
    if skip_install:
        base_env["MEMGATE_ACTION_SKIP_INSTALL"] = "1"
        # The memgate under test is this checkout's (the action's own path), whatever else
        # the interpreter has installed.
        base_env["PYTHONPATH"] = str(ROOT)
    base_env.update(env or {})
    # Inputs as GitHub maps them: the given value, else the default (itself an expression).
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in inputs:
            values[name] = inputs[name]
        else:
            values[name] = Expressions({}, github, {}, base_env).sub(str(spec.get("default", "")))
    steps_out: dict[str, dict[str, str]] = {}
    stdout, stderr, files = [], [], []
    rc = 0
    for k, step in enumerate(action["runs"]["steps"]):
        assert "run" in step, "only run: steps are simulated"
        assert step.get("shell") == "bash"
        assert "if" not in step, "if: is not simulated"
        ex = Expressions(values, github, steps_out, base_env)
        out_file = runner / f"github_output_{k}"
        out_file.touch()
        step_env = dict(base_env)
        step_env["GITHUB_OUTPUT"] = str(out_file)
        for key, val in (step.get("env") or {}).items():
            step_env[key] = ex.sub(str(val))
        script = runner / f"step_{k}.sh"
        script.write_text(step["run"], encoding="utf-8")
        cwd = ws.root / ex.sub(str(step.get("working-directory", ".")))
        if skip_install and not real_process and step["run"].strip() == CHECK_STEP:
            proc = _action_in_process(step_env, cwd)
        else:
            proc = subprocess.run(
                ["/bin/bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=cwd, env=step_env, capture_output=True, text=True, timeout=120,
                check=False)
        stdout.append(proc.stdout)
        stderr.append(proc.stderr)
        text = out_file.read_text(encoding="utf-8")
        files.append(text)
        if "id" in step:
            steps_out[step["id"]] = parse_file_command(text)
        if proc.returncode != 0:
            rc = proc.returncode
            break
    ex = Expressions(values, github, steps_out, base_env)
    outputs = {name: ex.sub(str(spec["value"])) for name, spec in action["outputs"].items()}
    return ActionRun(returncode=rc, stdout="".join(stdout), stderr="".join(stderr),
                     outputs=outputs, step_outputs=steps_out,
                     step_summary=summary.read_text(encoding="utf-8"), output_files=files)


# --------------------------------------------------------------------------- action.yml itself


def _runs(action: Mapping[str, Any]) -> list[str]:
    return [str(s["run"]) for s in action["runs"]["steps"] if "run" in s]


def run_blocks(text: str) -> list[str]:
    """The text of every ``run:`` value, found by indentation in the raw file (so that no YAML
    subtlety can hide an expression from the check)."""
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:- )?run:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        indent, rest = len(m.group(1)), m.group(2)
        if rest and rest[0] not in "|>":
            blocks.append(rest)
            continue
        body = []
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        blocks.append("\n".join(body))
    return blocks


def test_no_run_script_interpolates_inputs() -> None:
    """Inputs reach scripts only through env: (an expression in run: is shell injection)."""
    action = load_action()
    scripts = _runs(action)
    blocks = run_blocks(ACTION.read_text(encoding="utf-8"))
    assert len(blocks) == len(scripts) == 2
    for text in [*scripts, *blocks]:
        assert "${{" not in text, f"expression inside run: {text[:80]!r}"
        assert not re.search(r"inputs\.", text)


def test_the_scan_catches_an_interpolated_input() -> None:
    bad = "steps:\n  - run: |\n      echo ok\n      echo ${{ inputs.profiles }}\n"
    assert any("${{ inputs." in b for b in run_blocks(bad))


def test_inputs_are_documented_with_defaults() -> None:
    action = load_action()
    for name, spec in action["inputs"].items():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name), f"{name}: not kebab-case"
        assert "required" in spec and "default" in spec, f"{name}: needs required: and default:"
        desc = " ".join(str(spec["description"]).split())
        m = re.search(r"\(default ([^()]*)\)$", desc)
        assert m, f"{name}: description must end with '(default ...)': {desc!r}"
        default = str(spec["default"])
        shown = m.group(1)
        if (e := EXPR.fullmatch(default)) is not None:
            assert shown == e.group(1), f"{name}: default {default} shown as {shown!r}"
        elif default == "":
            assert shown.startswith("none"), f"{name}: empty default shown as {shown!r}"
        else:
            assert shown == default, f"{name}: default {default!r} shown as {shown!r}"


def test_every_input_reaches_the_program_and_nothing_else_is_referenced() -> None:
    action = load_action()
    used: set[str] = set()
    for step in action["runs"]["steps"]:
        for text in [*map(str, (step.get("env") or {}).values()),
                     str(step.get("working-directory", ""))]:
            used |= set(re.findall(r"inputs\.([a-z-]+)", text))
    assert used == set(action["inputs"]), used ^ set(action["inputs"])
    for spec in action["outputs"].values():
        assert re.fullmatch(r"\$\{\{ steps\.[a-z]+\.outputs\.[a-z]+( \|\| steps\.[a-z]+\."
                            r"outputs\.[a-z]+)* \}\}", spec["value"]), spec["value"]
    assert action["runs"]["using"] == "composite"


def test_docs_list_every_input_and_output() -> None:
    docs = (ROOT / "docs" / "github-action.md").read_text(encoding="utf-8")
    action = load_action()
    for name in [*action["inputs"], *action["outputs"]]:
        assert f"| `{name}` |" in docs, f"docs/github-action.md does not list {name}"


# --------------------------------------------------------------------------- runs


def test_pass(ws: Workspace) -> None:
    run = run_action(ws, {"profiles": ws.ok, **SVC}, real_process=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.outputs["verdict"] == "pass"
    assert run.outputs["regressions"] == "0"
    assert "memgate: **PASS**" in run.step_summary
    assert run.annotations == []
    report = json.loads(Path(run.outputs["report"]).read_text())
    assert report["verdict"] == "pass" and report["component"] == "svc"
    summary = Path(run.outputs["summary"]).read_text()
    assert summary.startswith("## ✅ memgate: **PASS**")
    # Files go to a fresh directory under RUNNER_TEMP, not into the checkout.
    assert Path(run.outputs["report"]).parent.parent == ws.runner
    assert not list(ws.root.glob("memgate-*"))


def test_fail(ws: Workspace) -> None:
    run = run_action(ws, {"profiles": ws.leak, **SVC}, real_process=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.outputs["verdict"] == "fail"
    # What main.leaky holds is a level and fails; what it allocated it still holds, so its
    # allocation flow (judged on what was freed) does not fail a second time.
    assert run.outputs["regressions"] == "1"
    assert "memgate: **FAIL**" in run.step_summary
    assert "`main.leaky`" in run.step_summary
    report = json.loads(Path(run.outputs["report"]).read_text())
    # One annotation per finding: ::error for fail, ::warning for warn, titled rule: function,
    # with ':' and ',' escaped in the title and '%' in the message.
    assert len(run.annotations) == len(report["findings"]) == 3
    expected = ("::error title=memgate defaults%3A main.leaky::main.leaky inuse_space (cum, "
                "in use) grew from 8.00 MiB to 800 MiB (+9900.0%25), over the limit of 20%25 "
                "and 2MiB")
    assert any(a.startswith(expected) for a in run.annotations), run.annotations
    for f in report["findings"]:
        kind = "error" if f["severity"] == "fail" else "warning"
        head = f"::{kind} title=memgate {f['rule']}%3A {f['function']}::"
        assert head + f["message"].replace("%", "%25") in run.annotations
    # Crossings within sampling noise are in the summary but are not annotated.
    assert report["within_noise"], "the fixture should have crossings within noise"
    assert not any("main.noisy" in a for a in run.annotations)
    assert "`main.noisy`" in run.step_summary


def test_fail_not_enforced(ws: Workspace) -> None:
    run = run_action(ws, {"profiles": ws.leak, **SVC,
                          "fail-on-regression": "False"})
    assert run.returncode == 0
    assert run.outputs["verdict"] == "fail"
    assert run.outputs["regressions"] == "1"
    assert ("::warning title=memgate::the gate failed (1 regression) but fail-on-regression "
            "is false: not failing the job") in run.annotations
    assert sum(a.startswith("::error") for a in run.annotations) == 1


def test_warn_passes_the_job(ws: Workspace) -> None:
    (ws.root / "warn.yml").write_text(
        "version: 1\ndefaults:\n  max_increase: '20%'\n  max_increase_rate: ['1MiB/min', "
        "'10k/min']\n  severity: warn\ntotal: null\nnew_functions: null\n")
    run = run_action(ws, {"profiles": ws.leak, **SVC, "policy": "warn.yml"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.outputs["verdict"] == "warn"
    assert run.outputs["regressions"] == "0"
    assert run.annotations and all(a.startswith("::warning title=memgate defaults%3A ")
                                   for a in run.annotations)


@pytest.mark.parametrize("profiles, expected", [
    ("profiles/missing-*.pb.gz",
     "::error title=memgate::profiles: 'profiles/missing-*.pb.gz' matched no file"),
    ("profiles/missing.pb.gz", "::error title=memgate::profiles/missing.pb.gz: "),
    ("", "::error title=memgate::profiles: no profiles given"),
])
def test_error(ws: Workspace, profiles: str, expected: str) -> None:
    run = run_action(ws, {"profiles": profiles, **SVC})
    assert run.returncode == 3
    assert run.outputs["verdict"] == "error"
    assert run.outputs["report"] == ""
    assert any(a.startswith(expected) for a in run.annotations), run.annotations
    assert "memgate: **ERROR**" in run.step_summary
    assert "Traceback" not in run.stdout + run.stderr


@pytest.mark.parametrize("inputs, expected", [
    ({"fail-on-regression": "yes"}, "fail-on-regression: must be true or false, not 'yes'"),
    ({"summary": "ture"}, "summary: must be true or false, not 'ture'"),
    ({"component": "../etc"}, "component: invalid component name"),
    ({"duration": "ten minutes"}, "duration: 'ten minutes' is not a duration"),
    ({"work": "lots"}, "work: work must be a positive number of units of work, got 'lots'"),
    ({"work": "-5"}, "work: work must be a positive number"),
    ({"component": "nothing"}, "no baseline for component 'nothing'"),
])
def test_bad_input_is_an_error(ws: Workspace, inputs: dict[str, str], expected: str) -> None:
    run = run_action(ws, {"profiles": ws.ok, **SVC, **inputs})
    assert run.returncode == 3
    assert run.outputs["verdict"] == "error"
    assert len(run.annotations) == 1 and expected in run.annotations[0], run.annotations


def test_missing_policy_is_an_error(ws: Workspace) -> None:
    run = run_action(ws, {"profiles": ws.ok, **SVC, "policy": "nope.yml"})
    assert run.returncode == 3
    assert run.annotations[0].startswith("::error title=memgate::nope.yml")


def test_outputs_use_unguessable_heredocs(ws: Workspace) -> None:
    run = run_action(ws, {"profiles": ws.ok, **SVC})
    check_file = run.output_files[-1]
    heads = re.findall(r"^([a-z]+)<<(.*)$", check_file, re.MULTILINE)
    assert [h[0] for h in heads] == ["verdict", "regressions", "report", "summary", "html"]
    delims = [h[1] for h in heads]
    assert all(re.fullmatch(r"ghadelimiter_[0-9a-f-]{36}", d) for d in delims)
    assert len(set(delims)) == len(delims)
    assert parse_file_command(check_file) == run.step_outputs["check"]


def test_summary_false_and_json_report_path(ws: Workspace) -> None:
    run = run_action(ws, {"profiles": ws.ok, **SVC, "summary": "false",
                          "json-report": "out/report.json"})
    assert run.returncode == 3  # out/ does not exist: a clear error, not a traceback
    # The annotation names the input to fix, then the path.
    assert run.annotations[0].startswith("::error title=memgate::json-report: ")
    assert "out: directory does not exist" in run.annotations[0]
    (ws.root / "out").mkdir()
    run = run_action(ws, {"profiles": ws.ok, **SVC, "summary": "false",
                          "json-report": "out/report.json"})
    assert run.returncode == 0
    assert run.step_summary == ""
    assert run.outputs["report"] == str(ws.root / "out" / "report.json")
    assert json.loads((ws.root / "out" / "report.json").read_text())["verdict"] == "pass"
    assert Path(run.outputs["summary"]).is_file()


def test_html_input_writes_the_flame_graph(ws: Workspace) -> None:
    run = run_action(ws, {"profiles": ws.leak, **SVC, "html": "memgate.html",
                          "fail-on-regression": "false"})
    assert run.returncode == 0, run.stdout
    assert run.outputs["html"] == str(ws.root / "memgate.html")
    page = (ws.root / "memgate.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "main.leaky" in page
    run = run_action(ws, {"profiles": ws.ok, **SVC})
    assert run.outputs["html"] == ""


def test_globs_newlines_and_working_directory(ws: Workspace) -> None:
    sub = ws.root / "services" / "api"
    (sub / "heap" / "run1").mkdir(parents=True)
    (sub / "heap" / "run2").mkdir(parents=True)
    # Two runs of the same workload: alike, not byte-identical (memgate refuses a profile
    # given twice on one side).
    for k in (1, 2):
        (sub / "heap" / f"run{k}" / "heap.pb.gz").write_bytes(heap_profile(8, k))
    shutil.copytree(ws.root / "baselines", sub / "store")
    run = run_action(ws, {"profiles": "heap/**/*.pb.gz\n  heap/run1/heap.pb.gz\n",
                          **SVC, "baselines": "store",
                          "working-directory": "services/api"})
    assert run.returncode == 0, run.stdout
    report = json.loads(Path(run.outputs["report"]).read_text())
    # Sorted, and a file matched twice is one run, not two.
    assert [c["path"] for c in report["inputs"]["candidate"]] == [
        "heap/run1/heap.pb.gz", "heap/run2/heap.pb.gz"]


def test_two_uses_in_one_job_keep_their_files(ws: Workspace) -> None:
    a = run_action(ws, {"profiles": ws.ok, **SVC})
    b = run_action(ws, {"profiles": ws.leak, **SVC, "fail-on-regression": "false"})
    assert a.outputs["report"] != b.outputs["report"]
    assert json.loads(Path(a.outputs["report"]).read_text())["verdict"] == "pass"
    assert json.loads(Path(b.outputs["report"]).read_text())["verdict"] == "fail"


def test_input_values_are_never_executed(ws: Workspace) -> None:
    evil = "profiles/x$(touch pwned1).pb.gz `touch pwned2` ';touch pwned3;'"
    run = run_action(ws, {"profiles": evil, "component": "svc\";touch pwned4;\""})
    assert run.returncode == 3
    assert not list(ws.root.rglob("pwned*"))
    assert "pwned4" in run.annotations[0]  # named in the error, as data


def test_annotation_properties_are_escaped(ws: Workspace) -> None:
    """A function name with ':' and ',' (C++ and Java names have both) cannot break the
    title property, and a '%' cannot be read as an escape."""
    odd = "ns::Cache<int, std::string>::put%d"
    base = make_profile([((odd, "main"), (1000, 100 * MiB, 1000, 100 * MiB))], HEAP_TYPES)
    cand = make_profile([((odd, "main"), (100000, 10000 * MiB, 100000, 10000 * MiB))],
                        HEAP_TYPES)
    (ws.root / "b.pb.gz").write_bytes(gz(base.SerializeToString()))
    (ws.root / "c.pb.gz").write_bytes(gz(cand.SerializeToString()))
    res = CliRunner().invoke(cli_main, [
        "baseline", "update", "--baselines", str(ws.root / "baselines"), "--component", "cpp",
        "--duration", "60s", "--reason", "x", str(ws.root / "b.pb.gz")])
    assert res.exit_code == 0, res.output
    run = run_action(ws, {"profiles": "c.pb.gz", "component": "cpp", "duration": "1m"})
    assert run.returncode == 1
    title = "memgate defaults%3A ns%3A%3ACache<int%2C std%3A%3Astring>%3A%3Aput%25d"
    assert any(a.startswith(f"::error title={title}::ns::Cache<int, std::string>::put%25d ")
               for a in run.annotations), run.annotations


# --------------------------------------------------------------------------- the setup step


def _write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_setup_without_python(ws: Workspace, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    run = run_action(ws, {"profiles": ws.ok}, path=str(empty))
    assert run.returncode == 3
    expected = ("::error title=memgate::no python3 on this runner: memgate needs Python 3.10 or "
                "newer (add actions/setup-python before this step)")
    assert run.annotations == [expected]
    assert run.outputs["verdict"] == "error"


def test_setup_with_old_python(ws: Workspace, tmp_path: Path) -> None:
    fake = tmp_path / "old-bin"
    fake.mkdir()
    _write_exe(fake / "python3",
               '#!/bin/sh\ncase "$*" in *platform*) echo 3.8.10; exit 0;; esac\nexit 1\n')
    run = run_action(ws, {"profiles": ws.ok}, path=f"{fake}{os.pathsep}/usr/bin:/bin")
    assert run.returncode == 3
    expected = (f"::error title=memgate::memgate needs Python 3.10 or newer, {fake}/python3 is "
                "3.8.10 (add actions/setup-python before this step)")
    assert run.annotations == [expected]
    assert run.outputs["verdict"] == "error"


def test_setup_installs_into_a_venv_and_runs_it(ws: Workspace, tmp_path: Path) -> None:
    """Without MEMGATE_ACTION_SKIP_INSTALL: a venv in RUNNER_TEMP, pip install of the action's
    own checkout, and the check run by that venv's python. The fake python3 records what it
    is asked to do (a real install would need the network)."""
    log = tmp_path / "calls.log"
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    real = sys.executable
    venv_python = (
        "#!/bin/bash\n"
        f'echo "venv-python $*" >> "{log}"\n'
        'if [ "$1 $2" = "-m pip" ]; then exit 0; fi\n'
        f'exec "{real}" "$@"\n'
    )
    _write_exe(fake / "python3", (
        "#!/bin/bash\n"
        f'echo "python3 $*" >> "{log}"\n'
        'if [ "$1 $2" = "-m venv" ]; then\n'
        '  mkdir -p "$3/bin"\n'
        f"  cat > \"$3/bin/python\" <<'EOF'\n{venv_python}EOF\n"
        '  chmod +x "$3/bin/python"; exit 0\n'
        "fi\n"
        f'exec "{real}" "$@"\n'))
    run = run_action(ws, {"profiles": ws.ok, **SVC}, skip_install=False,
                     path=f"{fake}{os.pathsep}{os.environ.get('PATH', '')}")
    assert run.returncode == 0, run.stdout + run.stderr
    calls = log.read_text().splitlines()
    venv_calls = [c for c in calls if c.startswith("python3 -m venv ")]
    assert len(venv_calls) == 1
    venv = venv_calls[0].split(" ", 3)[3]
    assert venv.startswith(str(ws.runner) + "/memgate-action-")
    assert f"venv-python -m pip install --quiet --disable-pip-version-check {ROOT}" in calls
    assert "venv-python -m memgate.action" in calls
    assert run.step_outputs["setup"]["python"] == f"{venv}/bin/python"
    assert run.outputs["verdict"] == "pass"


# --------------------------------------------------------------------------- pre-commit, workflows


def test_pre_commit_hook_runs_memgate_check(ws: Workspace) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == "memgate-check")
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    assert re.search(hook["files"], "profiles/api.pb.gz")
    assert not re.search(hook["files"], "main.go")
    # What pre-commit runs: the entry, then the user's args.
    args = [*hook["entry"].split()[1:], *hook.get("args", []),
            "--component", "svc", "--duration", "60s", ws.leak]
    assert hook["entry"].split()[0] == "memgate"
    proc = clirun.run(args, cwd=ws.root, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 1 and "memgate: FAIL (svc)" in proc.stdout


@pytest.mark.parametrize("name", ["ci.yml", "self-test.yml"])
def test_workflows_are_pinned_and_least_privilege(name: str) -> None:
    path = ROOT / ".github" / "workflows" / name
    text = path.read_text(encoding="utf-8")
    wf = yaml.safe_load(text)
    assert wf["permissions"] == {}
    for line in text.splitlines():
        m = re.search(r"uses:\s*(\S+)", line)
        if m and not m.group(1).startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", m.group(1)), line
            assert re.search(r"# v\d+(\.\d+)*\s*$", line), f"no version comment: {line}"
    for job in wf["jobs"].values():
        assert job["permissions"] == {"contents": "read"}
        for step in job["steps"]:
            assert "${{" not in str(step.get("run", "")), step


def test_self_test_uses_the_bundled_example() -> None:
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "self-test.yml").read_text())
    uses = [s for job in wf["jobs"].values() for s in job["steps"] if s.get("uses") == "./"]
    assert {s["with"]["profiles"] for s in uses} == {
        "examples/profiles/candidate-ok.pb.gz", "examples/profiles/candidate-leak.pb.gz"}
    for s in uses:
        assert s["with"]["component"] == "example"
        assert s["with"]["policy"] == "examples/memgate.yml"
        assert set(s["with"]) <= set(load_action()["inputs"])


@pytest.mark.skipif(not (ROOT / "baselines" / "example").is_dir(),
                    reason="the bundled example's baseline (baselines/example/) is not there")
def test_self_test_workflow_locally(tmp_path: Path) -> None:
    """The self-test workflow's job, here: its two `uses: ./` steps on the repository itself,
    then its assertion step on their outputs."""
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "self-test.yml").read_text())
    steps = wf["jobs"]["action"]["steps"]
    ws = Workspace(root=ROOT, runner=tmp_path)
    outputs: dict[str, dict[str, str]] = {}
    for step in steps:
        if step.get("uses") == "./":
            run = run_action(ws, {k: str(v).lower() if isinstance(v, bool) else str(v)
                                  for k, v in step["with"].items()}, real_process=True)
            assert run.returncode == 0, run.stdout + run.stderr
            outputs[step["id"]] = run.outputs
    check = next(s for s in steps if "run" in s)
    ex = Expressions({}, {}, outputs, {})
    env = {**os.environ, **{k: ex.sub(str(v)) for k, v in check["env"].items()}}
    proc = subprocess.run(["/bin/bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                           check["run"]], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_work_input_compares_flows_per_unit_of_work(ws: Workspace) -> None:
    run = run_action(ws, {"profiles": ws.ok, "component": "svc", "work": "4000"})
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(Path(run.outputs["report"]).read_text())
    per = {st["type"]: st["per"] for st in report["sample_types"]}
    assert per == {"alloc_objects": "op", "alloc_space": "op", "inuse_objects": "",
                   "inuse_space": ""}
    assert "/op" in run.step_summary
