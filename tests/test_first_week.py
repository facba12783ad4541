"""The first week of a team with memgate (issue 16), end to end, with a real Go service.

``tests/gen/firstweek`` is a small repository: ``cmd/svc`` is an HTTP service with a JSON
endpoint whose items are kept in a cache (``ingest.(*Cache).Put``), serving net/http/pprof;
``cmd/load`` drives a fixed load against it. The flow is the one a team follows:

1. profile the live service three times (``memgate fetch URL -o``), store the runs as the
   baseline (``baseline update``, durations from the policy's component);
2. gate an unchanged build: PASS, verdict first;
3. gate a change that keeps six times the items (``-cache``): FAIL naming the cache, with the diff
   profile (``check --output``), ``memgate diff``, and the Action's annotation on the source line;
4. accept it after approval (``baseline accept``): the manifest keeps its units and durations;
5. gate the same build again: PASS.

Builds and runs Go (skipped without it) and takes about ten seconds with a warm build cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gotool import GO_ENV, NO_GO, find_go

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "gen" / "firstweek"
GO = find_go()

pytestmark = [pytest.mark.slow, pytest.mark.skipif(GO is None, reason=NO_GO)]

#: Items the service keeps on main and in the pull request, and items the load posts (every
#: run fills either cache). A body is about 1.3 KB, so ``ingest.(*Cache).Put`` retains about
#: 1.4 KiB more per extra item: 5,000 more items are ~7 MiB, over three times the default
#: 2 MiB level limit. (1,000 vs 2,500 items put it at ~2.1 MiB, where sampling noise could
#: leave Put below the limit and the gate would name only the decoder's frames.)
BASE_CACHE, CAND_CACHE, ITEMS = 1000, 6000, 6000


@dataclass(frozen=True)
class Binaries:
    svc: Path
    load: Path


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> Binaries:
    assert GO is not None
    out = tmp_path_factory.mktemp("bin")
    env = {**os.environ, **GO_ENV}
    for name in ("svc", "load"):
        proc = subprocess.run([GO, "build", "-trimpath", "-o", str(out / name), f"./cmd/{name}"],
                              cwd=SAMPLE, env=env, capture_output=True, text=True, timeout=600,
                              check=False)
        assert proc.returncode == 0, proc.stderr
    return Binaries(out / "svc", out / "load")


def memgate(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run([sys.executable, "-m", "memgate", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


class Service:
    """One run of the service on a free port, stopped when the block ends."""

    def __init__(self, bins: Binaries, work: Path, cache: int) -> None:
        self.bins, self.work, self.cache = bins, work, cache

    def __enter__(self) -> Service:
        addr_file = self.work / "addr"
        addr_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen([str(self.bins.svc), "-addr", "127.0.0.1:0", "-addr-file",
                                      str(addr_file), "-cache", str(self.cache)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not addr_file.exists():
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.02)
        self.url = f"http://{addr_file.read_text().strip()}"
        return self

    def load(self, seed: int, n: int = ITEMS) -> None:
        proc = subprocess.run([str(self.bins.load), "-url", f"{self.url}/items", "-n", str(n),
                               "-seed", str(seed)], capture_output=True, text=True, timeout=300,
                              check=False)
        assert proc.returncode == 0, proc.stderr

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    """The team's checkout: the service's sources and a policy with the component's duration
    (heap snapshots record none)."""
    root = tmp_path / "repo"
    shutil.copytree(SAMPLE, root)
    (root / "memgate.yml").write_text(
        "# yaml-language-server: $schema=policy.schema.json\n"
        "version: 1\ncomponents:\n  svc:\n    duration: 1m\n")
    (root / "profiles").mkdir()
    yield root


def profile_runs(bins: Binaries, repo: Path, name: str, cache: int, seeds: range) -> list[str]:
    """Run the service once per seed, drive the load, save /debug/pprof/heap by URL."""
    out = []
    for seed in seeds:
        with Service(bins, repo, cache) as svc:
            svc.load(seed)
            path = f"profiles/{name}-{seed}.pb.gz"
            r = memgate("fetch", f"{svc.url}/debug/pprof/heap?gc=1", "-o", path, cwd=repo)
            assert r.returncode == 0, r.stderr
            assert f"saved {svc.url}/debug/pprof/heap?gc=1 to {path}" in r.stderr
        out.append(path)
    return out


def manifest(repo: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (repo / "baselines" / "svc" / "manifest.json").read_text())
    return data


def test_first_week(binaries: Binaries, repo: Path, tmp_path: Path) -> None:
    # Day 1: three runs of the service as it is on main become the baseline.
    base = profile_runs(binaries, repo, "base", BASE_CACHE, range(1, 4))
    r = memgate("baseline", "update", "-c", "svc", *base, "--reason", "first baseline: 3 runs "
                f"of {ITEMS} items", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "no duration" not in r.stderr  # the policy's component duration applied
    first = manifest(repo)
    assert first["summary_unit"] == "per_second"
    assert [p["duration_seconds"] for p in first["profiles"]] == [60.0] * 3  # type: ignore[attr-defined, index]

    # Day 2: a pull request that changes nothing memory-wise passes, verdict first.
    same = profile_runs(binaries, repo, "same", BASE_CACHE, range(11, 14))
    r = memgate("check", "-c", "svc", *same, cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[:2] == ["memgate: PASS (svc)", "0 failing, 0 warning"]

    # Day 3: a pull request keeps six times the items: the gate fails on the cache's line.
    bigger = profile_runs(binaries, repo, "cand", CAND_CACHE, range(21, 24))
    r = memgate("check", "-c", "svc", *bigger, "--json", "report.json", "--output",
                "judged.pb.gz", cwd=repo)
    assert r.returncode == 1, r.stdout + r.stderr
    put = "github.com/acme/shop/ingest.(*Cache).Put"
    report = json.loads((repo / "report.json").read_text())
    failing = {(f["function"], f["sample_type"]) for f in report["findings"]
               if f["severity"] == "fail"}
    assert (put, "inuse_space") in failing
    lines = r.stdout.splitlines()
    assert lines[0] == "memgate: FAIL (svc)"
    assert any(ln.startswith("  [FAIL] defaults: " + put) for ln in lines[2:2 + len(failing)])
    # The reviewer opens what the gate judged: the cache's growth, as pprof numbers.
    top = memgate("top", "judged.pb.gz", "-i", "inuse_space", "--format", "json", cwd=repo)
    flat = {f["name"]: f["flat"] for f in json.loads(top.stdout)["functions"]}
    put_growth = next(fn["rates"]["inuse_space"]["flat"]["delta"] for fn in report["functions"]
                      if fn["name"] == put)
    # In use is a level: the file holds the report's growth itself, not a rate times 60 s.
    assert flat[put] == pytest.approx(put_growth, rel=1e-3, abs=64)
    # ... and memgate diff of one pair names it among the growers.
    d = memgate("diff", base[0], bigger[0], "-i", "inuse_space", "-n", "5", cwd=repo)
    assert d.returncode == 0, d.stderr
    grew = d.stdout.split(" grew:\n", 1)[1].split(" shrank:", 1)[0]
    assert put in grew
    # The Action annotates the source line of Put in ingest/cache.go.
    from tests.test_action import Workspace, run_action

    runner = tmp_path / "runner"
    runner.mkdir()
    run = run_action(Workspace(root=repo, runner=runner),
                     {"profiles": " ".join(bigger), "component": "svc",
                      "fail-on-regression": "false"})
    assert run.returncode == 0, run.stdout + run.stderr
    put_line = next(i for i, ln in enumerate(
        (repo / "ingest" / "cache.go").read_text().splitlines(), 1)
        if ln.startswith("func (c *Cache) Put("))
    notes = [a for a in run.annotations if f"%3A {put}::" in a]
    assert notes and all(a.startswith(f"::error file=ingest/cache.go,line={put_line},")
                         for a in notes), run.annotations

    # Day 4: the bigger cache is approved; its profiles become the baseline.
    r = memgate("baseline", "accept", "--from-report", "report.json", "--reason",
                f"cache of {CAND_CACHE} items approved in review", "--approved-by", "alice",
                cwd=repo)
    assert r.returncode == 0, r.stderr
    accepted = manifest(repo)
    # Same units and durations as the first baseline: the manifest diff shows rates, not
    # a change of units; rows in a stable order.
    assert accepted["summary_unit"] == "per_second"
    assert [p["duration_seconds"] for p in accepted["profiles"]] == [60.0] * 3  # type: ignore[attr-defined, index]
    for rows in accepted["summary"].values():  # type: ignore[attr-defined]
        assert [x["function"] for x in rows] == sorted(x["function"] for x in rows)
    assert put in [x["function"] for x in accepted["summary"]["inuse_space"]]  # type: ignore[index]
    # A later update with fewer runs is refused unless said so.
    r = memgate("baseline", "update", "-c", "svc", bigger[0], "--reason", "one run", cwd=repo)
    assert r.returncode == 3 and "--runs-may-shrink" in r.stderr

    # Day 5: the approved build passes against its new baseline.
    again = profile_runs(binaries, repo, "again", CAND_CACHE, range(31, 34))
    r = memgate("check", "-c", "svc", *again, cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("memgate: PASS (svc)\n")
