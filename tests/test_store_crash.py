"""The store's guarantees under SIGKILL and concurrency, with real processes.

* An update killed at any moment leaves the old baseline or the new one, never a mix, and
  ``verify`` passes: first at every step of the write (deterministically, through the
  ``MEMGATE_TEST_STORE_KILL_AT`` hook), then at 50+ random moments of a running
  ``memgate baseline update`` (``MEMGATE_TEST_STORE_DELAY`` stretches the steps so that the
  random moments fall into them, not only into interpreter start-up).
* Updates of different components at once all succeed; updates of the same component at once:
  the lock holder wins, the others fail at once with the lock message, the result is whole.
* Readers running during updates always see one complete version.

Set MEMGATE_CRASH_SEED to replay a run of the random test.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from memgate.baseline.fsops import STEPS
from memgate.baseline.manifest import MANIFEST
from memgate.baseline.store import Store
from memgate.errors import BaselineError

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")]

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "tests" / "fixtures" / "profiles"
NOLEAK = [PROFILES / f"seedleak-noleak-{i}.pb.gz" for i in (1, 2, 3)]
LEAK = [PROFILES / f"seedleak-leak-{i}.pb.gz" for i in (1, 2, 3)]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
for _var in ("MEMGATE_TEST_STORE_KILL_AT", "MEMGATE_TEST_STORE_DELAY"):
    ENV.pop(_var, None)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


OLD = frozenset({sha(NOLEAK[0])})
NEW = frozenset({sha(NOLEAK[1]), sha(NOLEAK[2])})


def memgate_baseline_cmd() -> list[str]:
    """`python -m memgate baseline`."""
    return [sys.executable, "-m", "memgate", "baseline"]


CMD = memgate_baseline_cmd()


def update_cmd(root: Path, profiles: Sequence[Path] = (NOLEAK[1], NOLEAK[2]),
               component: str = "ingest") -> list[str]:
    return [*CMD, "update", "--component", component, *map(str, profiles), "--reason", "new",
            "--baselines", str(root)]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the old baseline of `ingest` (noleak-1)."""
    root = tmp_path_factory.mktemp("template") / "baselines"
    Store(root).update("ingest", [NOLEAK[0]], reason="old")
    return root


def fresh(template: Path, where: Path) -> Path:
    root = where / "baselines"
    shutil.copytree(template, root)
    return root


def state(root: Path) -> str:
    """'old' or 'new' after checking that the store is sound and holds exactly one of them."""
    store = Store(root)
    problems = store.verify()
    assert problems == [], problems
    b = store.load("ingest")
    got = frozenset(p.sha256 for p in b.profiles)
    assert got in (OLD, NEW), f"neither the old nor the new baseline: {sorted(got)}"
    # The version in effect holds its manifest and its profiles and nothing else.
    assert sorted(os.listdir(b.directory)) == sorted(
        [MANIFEST, *(p.path.name for p in b.profiles)])
    assert b.reason == ("old" if got == OLD else "new")
    return "old" if got == OLD else "new"


def assert_recovers(root: Path, expected: str) -> None:
    """After recovery the store is clean and unchanged; the next update works."""
    store = Store(root)
    store.recover()
    assert sorted(os.listdir(root)) == ["ingest"]
    assert state(root) == expected
    store.update("ingest", [LEAK[0]], reason="after recovery", runs_may_shrink=True)
    assert store.verify() == [] and sorted(os.listdir(root)) == ["ingest"]


UPDATE_STEPS = [s for s in STEPS if not s.startswith("remove-")]


@pytest.mark.parametrize("step", UPDATE_STEPS)
def test_kill_at_every_step_of_an_update(template: Path, tmp_path: Path, step: str) -> None:
    root = fresh(template, tmp_path)
    proc = subprocess.run(update_cmd(root), env={**ENV, "MEMGATE_TEST_STORE_KILL_AT": step},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # The commit point is the rename of the new version into place ("moved-new").
    expected = "new" if UPDATE_STEPS.index(step) >= UPDATE_STEPS.index("moved-new") else "old"
    assert state(root) == expected
    assert_recovers(root, expected)


def test_kill_between_the_renames_leaves_the_old_baseline_readable(template: Path,
                                                                   tmp_path: Path) -> None:
    root = fresh(template, tmp_path)
    proc = subprocess.run(update_cmd(root),
                          env={**ENV, "MEMGATE_TEST_STORE_KILL_AT": "moved-old"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL
    names = sorted(os.listdir(root))
    assert "ingest" not in names
    assert [n.split("-")[0] for n in names if not n.endswith(".lock")] == [
        ".ingest.new", ".ingest.old"]
    r = subprocess.run([*CMD, "verify", "--baselines", str(root)], env=ENV,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert "an update was interrupted before it took effect" in r.stderr
    assert "in effect from .ingest.old-" in r.stdout
    assert sorted(os.listdir(root)) == names  # verify wrote nothing
    # A second update recovers first, then replaces the old baseline as usual.
    r = subprocess.run(update_cmd(root), env=ENV, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert state(root) == "new" and sorted(os.listdir(root)) == ["ingest"]


@pytest.mark.parametrize("step", ["remove-moved", "remove-deleted"])
def test_kill_during_remove(template: Path, tmp_path: Path, step: str) -> None:
    root = fresh(template, tmp_path)
    proc = subprocess.run([*CMD, "remove", "ingest", "--baselines", str(root)],
                          env={**ENV, "MEMGATE_TEST_STORE_KILL_AT": step},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL
    store = Store(root)
    assert not store.exists("ingest") and store.components() == []
    assert store.verify() == []
    store.recover()
    assert [n for n in os.listdir(root) if not n.endswith(".lock")] == []


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> bool:
    """Poll until ``path`` exists; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.0005)
    raise AssertionError(f"{path} did not appear within {timeout}s")


def test_sigkill_at_random_moments(template: Path, tmp_path: Path) -> None:
    seed = int(os.environ.get("MEMGATE_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    env = {**ENV, "MEMGATE_TEST_STORE_DELAY": "0.01"}
    # Calibrate: how long a whole run takes, and how long it holds the lock.
    root = fresh(template, tmp_path / "calibrate")
    t0 = time.monotonic()
    proc = subprocess.Popen(update_cmd(root), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert _wait_for(root / ".ingest.lock", proc)
    t_lock = time.monotonic()
    assert proc.wait(timeout=60) == 0
    total, window = time.monotonic() - t0, time.monotonic() - t_lock
    assert state(root) == "new"

    outcomes: Counter[tuple[bool, str]] = Counter()
    kills = attempts = 0
    while kills < 50:
        attempts += 1
        assert attempts <= 150, f"only {kills} kills landed in {attempts} attempts (seed {seed})"
        root = fresh(template, tmp_path / f"run{attempts}")
        proc = subprocess.Popen(update_cmd(root), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if attempts % 2:
            # Any moment of the whole run, start-up included.
            time.sleep(rng.uniform(0, total))
        elif _wait_for(root / ".ingest.lock", proc):
            # A moment while the lock is held: the writing, renaming and cleaning up.
            time.sleep(rng.uniform(0, window))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=60)
        killed = code == -signal.SIGKILL
        assert killed or code == 0, f"exit {code} (seed {seed})"
        kills += killed
        try:
            outcome = state(root)
        except AssertionError as e:
            raise AssertionError(f"attempt {attempts} (seed {seed}): {e}") from None
        outcomes[(killed, outcome)] += 1
        if attempts % 8 == 0:
            assert_recovers(root, outcome)
    # Both outcomes happen: kills before and after the commit point.
    assert outcomes[(True, "old")] > 0 and outcomes[(True, "new")] > 0, (outcomes, seed)


GATED = """
import os, sys, time
from memgate.cli.baseline import baseline
import memgate.baseline.store, memgate.table  # import everything before the start signal
gate = sys.argv[1]
open(f"{gate}.ready.{os.getpid()}", "w").close()
while not os.path.exists(gate):
    time.sleep(0.0005)
baseline(sys.argv[2:], prog_name="memgate baseline")
"""


def _gated(gate: Path, args: Sequence[str], delay: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", GATED, str(gate), *args],
                            env={**ENV, "MEMGATE_TEST_STORE_DELAY": delay},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ready_all(gate: Path, procs: Sequence[subprocess.Popen[str]]) -> None:
    from tests.waiting import wait_until

    # Every interpreter has finished its imports and waits at the gate.
    wait_until(lambda: all(Path(f"{gate}.ready.{p.pid}").exists() or p.poll() is not None
                           for p in procs), "the updates to wait at the gate", 60)
    gate.write_text("go")
    for p in procs:
        p.wait(timeout=60)


def test_concurrent_updates_of_different_components(tmp_path: Path) -> None:
    root = tmp_path / "baselines"
    gate = tmp_path / "go"
    sets = {f"c{i}": [NOLEAK[i % 3], LEAK[(i + 1) % 3]] for i in range(4)}
    procs = [_gated(gate, [a for a in update_cmd(root, sets[c], component=c)[len(CMD):]], "0.01")
             for c in sets]
    _ready_all(gate, procs)
    for p in procs:
        assert p.returncode == 0, p.stderr.read() if p.stderr else ""
    store = Store(root)
    assert store.verify() == []
    assert store.components() == sorted(sets)
    for c, profiles in sets.items():
        assert {p.sha256 for p in store.load(c).profiles} == {sha(p) for p in profiles}
    assert sorted(os.listdir(root)) == sorted(sets)


def test_concurrent_updates_of_the_same_component(template: Path, tmp_path: Path) -> None:
    root = fresh(template, tmp_path)
    gate = tmp_path / "go"
    candidates = [[NOLEAK[1]], [NOLEAK[2]], [NOLEAK[1], NOLEAK[2]], [LEAK[0], LEAK[1]]]
    procs = [_gated(gate, update_cmd(root, c)[len(CMD):], "0.05") for c in candidates]
    _ready_all(gate, procs)
    winners: list[frozenset[str]] = []
    losers = 0
    for p, c in zip(procs, candidates):
        err = p.stderr.read() if p.stderr else ""
        if p.returncode == 0:
            winners.append(frozenset(sha(x) for x in c))
        else:
            assert p.returncode == 3, err
            assert "baseline ingest is being updated by another process (lock " in err, err
            assert err.count("\n") == 1
            losers += 1
    assert winners and losers, (len(winners), losers)
    store = Store(root)
    assert store.verify() == []
    final = frozenset(p.sha256 for p in store.load("ingest").profiles)
    assert final in winners
    assert sorted(os.listdir(root)) == ["ingest"]  # no leftovers, no lock file


def test_readers_see_whole_versions_during_updates(template: Path, tmp_path: Path) -> None:
    root = fresh(template, tmp_path)
    a = [NOLEAK[1], NOLEAK[2]]
    b = [LEAK[0]]
    script = (
        "import sys\n"
        "from memgate.baseline.store import Store\n"
        "s = Store(sys.argv[1])\n"
        "for i in range(40):\n"
        "    s.update('ingest', sys.argv[2:4] if i % 2 else sys.argv[4:5], reason='r',\n"
        "             runs_may_shrink=True)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script, str(root),
                               *map(str, a), *map(str, b)], env=ENV)
    allowed = {OLD, frozenset(map(sha, a)), frozenset(map(sha, b))}
    seen: Counter[frozenset[str]] = Counter()
    errors: list[str] = []
    store = Store(root)

    def read() -> None:
        while writer.poll() is None:
            try:
                bl = store.load("ingest")
            except BaselineError as e:
                errors.append(str(e))
                return
            got = frozenset(p.sha256 for p in bl.profiles)
            seen[got] += 1
            if got not in allowed:
                errors.append(f"mixed baseline {sorted(got)}")
                return

    # Several readers: the windows between an update's renames are short, and each reader
    # thread is one more chance to land in one (two real races were caught this way).
    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    assert writer.wait(timeout=120) == 0
    for t in threads:
        t.join()
    assert errors == []
    assert set(seen) <= allowed and seen
    assert store.verify() == []
