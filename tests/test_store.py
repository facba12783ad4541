"""The baseline store: layout, manifest, validation, refusals and the `memgate baseline` CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

from memgate import __version__
from memgate.baseline.fsops import Lock
from memgate.baseline.manifest import (
    FORMAT_VERSION,
    MANIFEST,
    baseline_schema,
    render_manifest,
)
from memgate.baseline.names import validate_component_name
from memgate.baseline.store import Store
from memgate.cli.baseline import baseline
from memgate.errors import BaselineError, ProfileError, ReportError
from tests.reports import check_report

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "tests" / "fixtures" / "profiles"
NOLEAK = [PROFILES / f"seedleak-noleak-{i}.pb.gz" for i in (1, 2, 3)]
LEAK = [PROFILES / f"seedleak-leak-{i}.pb.gz" for i in (1, 2, 3)]
DELTA = PROFILES / "seedleak-delta.pb.gz"
CPU = PROFILES / "go-cpu-labels.pb.gz"
NODEJS = PROFILES / "nodejs-heap.pb.gz"
NODEJS_RAW = PROFILES / "nodejs-heap-uncompressed.pprof"
LEGACY = PROFILES / "go-legacy-text.heap"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def memgate_baseline_cmd() -> list[str]:
    """`python -m memgate baseline`."""
    return [sys.executable, "-m", "memgate", "baseline"]


def run(args: Sequence[str | Path]) -> Result:
    return CliRunner().invoke(baseline, [str(a) for a in args], catch_exceptions=False)


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under root with its mtime and content (for "never writes" checks)."""
    out: dict[str, tuple[int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = Path(dirpath) / d
            out[str(p.relative_to(root)) + "/"] = (p.stat().st_mtime_ns, b"")
        for f in filenames:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = (p.stat().st_mtime_ns, p.read_bytes())
    return out


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "baselines")


# ---------------------------------------------------------------------------------------------
# Component names
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "../x", "a/b", "/abs", "x\n", ".", "..", "", "a\x00b", "a\\b", "C:\\x", "a..b",
    ".hidden", "-opt", "a b", "a\tb", "x" * 101, "ingest/../../etc", "é",
])
def test_invalid_component_names_are_refused(name: str, store: Store) -> None:
    with pytest.raises(BaselineError) as err:
        validate_component_name(name)
    assert "\n" not in str(err.value)
    with pytest.raises(BaselineError):
        store.update(name, [NOLEAK[0]], reason="r")
    with pytest.raises(BaselineError):
        store.load(name)
    assert not store.root.exists() or not any(store.root.iterdir())


@pytest.mark.parametrize("name", ["ingest", "api-v2", "svc_1.heap", "A", "x" * 100])
def test_valid_component_names(name: str) -> None:
    assert validate_component_name(name) == name


def test_invalid_name_on_the_cli_is_one_line(tmp_path: Path) -> None:
    res = run(["update", "--component", "../x", NOLEAK[0], "--reason", "r",
               "--baselines", tmp_path / "b"])
    assert res.exit_code == 3
    assert res.stderr.count("\n") == 1
    assert "invalid component name '../x'" in res.stderr


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------

def test_round_trip_via_cli(tmp_path: Path) -> None:
    b = tmp_path / "baselines"
    res = run(["update", "-c", "ingest", NOLEAK[0], "--reason", "first baseline",
               "--baselines", b])
    assert res.exit_code == 0, res.output
    assert "created baseline ingest" in res.stdout
    manifest = json.loads((b / "ingest" / MANIFEST).read_text())
    assert manifest["reason"] == "first baseline"
    assert manifest["approved_by"] is None
    assert manifest["summary_unit"] == "per_profile"
    assert [p["sha256"] for p in manifest["profiles"]] == [sha(NOLEAK[0])]
    assert (b / "ingest" / f"{sha(NOLEAK[0])[:16]}.pb.gz").read_bytes() == NOLEAK[0].read_bytes()

    res = run(["update", "-c", "ingest", NOLEAK[1], NOLEAK[2], "--reason", "Go 1.22 upgrade",
               "--approved-by", "alice", "--duration", "10m", "--baselines", b])
    assert res.exit_code == 0, res.output
    assert "updated baseline ingest: 2 profiles" in res.stdout
    files = sorted(p.name for p in (b / "ingest").iterdir())
    assert files == sorted([MANIFEST] + [f"{sha(p)[:16]}.pb.gz" for p in NOLEAK[1:]])
    # Nothing else is left in the store: no temporary directory, no lock file.
    assert sorted(p.name for p in b.iterdir()) == ["ingest"]

    res = run(["list", "--baselines", b])
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["COMPONENT", "PROFILES", "UPDATED", "REASON"]
    assert lines[1].split()[:2] == ["ingest", "2"]
    assert lines[1].endswith("Go 1.22 upgrade")

    res = run(["show", "ingest", "--baselines", b])
    assert res.exit_code == 0
    out = res.stdout
    assert "reason:       Go 1.22 upgrade" in out
    assert "approved by:  alice" in out
    assert "seedleak-noleak-2.pb.gz  600s" in out
    # In use in a snapshot is a level, as the gate compares it (bug #15.1: it was shown per
    # second); allocations are per second of the duration.
    assert "inuse_space (bytes), mean level in use" in out
    assert "alloc_space (bytes), mean rate over the profile duration" in out
    assert "main.newCacheEntry" in out
    assert "KiB/s" in out

    res = run(["verify", "--baselines", b])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("ok ingest: 2 profiles [")
    res = run(["verify", "ingest", "--baselines", b])
    assert res.exit_code == 0

    res = run(["remove", "ingest", "--baselines", b])
    assert res.exit_code == 0
    assert not (b / "ingest").exists()
    assert list(b.iterdir()) == []
    res = run(["list", "--baselines", b])
    assert res.exit_code == 0 and res.stdout == ""
    assert "no baselines" in res.stderr
    res = run(["remove", "ingest", "--baselines", b])
    assert res.exit_code == 3
    assert "no baseline for component ingest" in res.stderr


def test_round_trip_via_subprocess(tmp_path: Path) -> None:
    cmd = memgate_baseline_cmd()
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def call(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cmd, *map(str, args)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    r = call("update", "--component", "ingest", NOLEAK[0], NOLEAK[1], "--reason", "initial")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "baselines" / "ingest" / MANIFEST).is_file()  # default --baselines
    r = call("show", "ingest")
    assert r.returncode == 0 and "reason:       initial" in r.stdout
    r = call("verify")
    assert r.returncode == 0 and r.stdout.startswith("ok ingest: 2 profiles")
    r = call("update", "--component", "ingest", CPU, "--reason", "cpu")
    assert r.returncode == 3
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("memgate: ") and "incompatible" in r.stderr
    r = call("update", "--component", "ingest", NOLEAK[2])
    assert r.returncode == 2 and "Missing option '--reason'" in r.stderr
    r = call("show", "nope")
    assert r.returncode == 3 and "memgate baseline update" in r.stderr
    r = call("list")
    assert r.returncode == 0 and "ingest" in r.stdout
    r = call("remove", "ingest")
    assert r.returncode == 0
    r = call("verify", "ingest")
    assert r.returncode == 3


def test_load_returns_profiles_and_metadata(store: Store) -> None:
    store.update("ingest", [NOLEAK[2], NOLEAK[1]], reason="two runs", approved_by="bob",
                 duration_seconds=30)
    b = store.load("ingest")
    assert b.component == "ingest"
    assert b.directory == store.root / "ingest"
    assert b.reason == "two runs" and b.approved_by == "bob"
    assert [p.sha256 for p in b.profiles] == sorted([sha(NOLEAK[1]), sha(NOLEAK[2])])
    for p in b.profiles:
        assert p.duration_seconds == 30.0
        assert p.period == 524288 and p.period_type == ("space", "bytes")
        assert p.sample_types == (("alloc_objects", "count"), ("alloc_space", "bytes"),
                                  ("inuse_objects", "count"), ("inuse_space", "bytes"))
        assert p.read_bytes() == p.path.read_bytes()
    assert {p.original_name for p in b.profiles} == {NOLEAK[1].name, NOLEAK[2].name}
    assert store.components() == ["ingest"] and store.exists("ingest")
    assert not store.exists("other")


def test_missing_baseline_message_has_the_hint(store: Store) -> None:
    with pytest.raises(BaselineError) as err:
        store.load("ingest")
    msg = str(err.value)
    assert msg.startswith(f"{store.root}: no baseline for component ingest (")
    assert "memgate baseline update --component ingest" in msg
    assert store.verify() and "no baselines directory" in store.verify()[0]
    assert store.verify("ingest") == [
        ("ingest: no baseline for component ingest (create one with "
         "`memgate baseline update --component ingest PROFILE... --reason TEXT`)")]


def test_durations_and_summary_units(store: Store) -> None:
    store.update("delta", [DELTA], reason="delta")
    b = store.load("delta")
    from memgate.profile.source import load_profile

    assert b.profiles[0].duration_seconds == load_profile(str(DELTA)).duration_seconds
    assert b.manifest["summary_unit"] == "per_second"
    store.update("snap", [NOLEAK[0]], reason="snapshot")
    assert store.load("snap").manifest["summary_unit"] == "per_profile"
    store.update("snap", [NOLEAK[0]], reason="with duration", duration_seconds=60)
    m = store.load("snap").manifest
    assert m["summary_unit"] == "per_second"
    per_profile = json.loads(render_manifest(m))
    # Flows per second are the per-profile values divided by 60; in-use levels of a snapshot
    # are not divided (bug #15.1: the summary divided them, the gate never does).
    store.update("snap2", [NOLEAK[0]], reason="raw")
    raw = store.load("snap2").manifest
    top_raw = raw["summary"]["alloc_space"][0]  # type: ignore[index]
    top_ps = per_profile["summary"]["alloc_space"][0]
    assert top_raw["function"] == top_ps["function"]
    assert top_ps["flat_rate"] == pytest.approx(top_raw["flat_rate"] / 60, rel=1e-5)
    assert per_profile["summary"]["inuse_space"] == raw["summary"]["inuse_space"]  # type: ignore[index]
    assert per_profile["summary_kinds"]["inuse_space"] == "level"


def test_summary_is_top_functions_by_flat(store: Store) -> None:
    store.update("leak", LEAK, reason="leaky", duration_seconds=10)
    m = store.load("leak").manifest
    summary = m["summary"]
    assert isinstance(summary, dict)
    assert set(summary) == {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}
    from memgate.profile.source import load_profile
    from memgate.table import aggregate

    tables = [aggregate(load_profile(str(p)), "functions") for p in LEAK]
    types = [st.type for st in load_profile(str(LEAK[0])).sample_types]
    for stype, rows in summary.items():
        assert 0 < len(rows) <= 10
        for r in rows:
            assert r["cum_rate"] >= r["flat_rate"]
        # The ten largest by flat rate, written in order of the function's name (a stable key
        # for the pull-request diff), not by rate.
        names = [r["function"] for r in rows]
        assert names == sorted(names)
        col = types.index(stype)
        flat: dict[str, float] = {}
        for tab in tables:
            for name, v in zip(tab.names, tab.flat[:, col].tolist()):
                flat[name] = flat.get(name, 0.0) + v
        top = sorted((n for n in flat if flat[n]), key=lambda n: (-abs(flat[n]), n))[:10]
        assert set(names) == set(top), stype
    assert "main.newCacheEntry" in [r["function"] for r in summary["inuse_space"]]
    assert len(summary["inuse_space"]) == 10
    totals = m["summary_totals"]
    assert isinstance(totals, dict) and totals["inuse_space"] > 0


def test_created_is_kept_across_updates(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    store.update("ingest", [NOLEAK[0]], reason="first")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700003600")
    store.update("ingest", [NOLEAK[1]], reason="second")
    m = store.load("ingest").manifest
    assert m["created"] == "2023-11-14T22:13:20Z"
    assert m["updated"] == "2023-11-14T23:13:20Z"
    assert m["memgate_version"] == __version__
    assert m["format"] == FORMAT_VERSION


def test_raw_protobuf_and_legacy_text_are_stored_gzipped(store: Store) -> None:
    store.update("node", [NODEJS_RAW], reason="raw protobuf")
    p = store.load("node").profiles[0]
    data = p.path.read_bytes()
    assert data[:2] == b"\x1f\x8b"
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0: the same input gives the same file
    assert gzip.decompress(data) == NODEJS_RAW.read_bytes()
    assert p.original_name == NODEJS_RAW.name
    store.update("legacy", [LEGACY], reason="legacy text")
    assert gzip.decompress(store.load("legacy").profiles[0].path.read_bytes()) == (
        LEGACY.read_bytes())
    assert store.verify() == []


def test_manifest_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    a.update("ingest", [NOLEAK[1], NOLEAK[2], NODEJS_RAW.parent / NOLEAK[0].name],
             reason="r", duration_seconds=45)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    b.update("ingest", [NOLEAK[0], NOLEAK[2], NOLEAK[1]], reason="r", duration_seconds=45)
    ta = (a.root / "ingest" / MANIFEST).read_text()
    tb = (b.root / "ingest" / MANIFEST).read_text()
    assert ta.endswith("}\n") and not ta.endswith("\n\n")

    def drop_times(text: str) -> list[str]:
        return [ln for ln in text.splitlines()
                if not ln.lstrip().startswith(('"created"', '"updated"'))]

    assert drop_times(ta) == drop_times(tb)
    assert ta != tb  # only the times differ
    data = json.loads(ta)
    assert render_manifest(data) == ta  # sorted keys, two-space indent
    assert list(data) == sorted(data)
    for name in os.listdir(a.root / "ingest"):
        assert (a.root / "ingest" / name).read_bytes() == (b.root / "ingest" / name).read_bytes() \
            or name == MANIFEST
    # With the same SOURCE_DATE_EPOCH the manifests are byte-identical.
    c = Store(tmp_path / "c")
    c.update("ingest", [NOLEAK[2], NOLEAK[0], NOLEAK[1]], reason="r", duration_seconds=45)
    assert (c.root / "ingest" / MANIFEST).read_text() == tb


def test_git_commit_is_recorded_inside_git(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for cmd in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()
    s = Store(repo / "baselines")
    s.update("ingest", [NOLEAK[0]], reason="r")
    assert s.load("ingest").manifest["git_commit"] == head
    outside = Store(tmp_path / "plain")
    outside.update("ingest", [NOLEAK[0]], reason="r")
    assert outside.load("ingest").manifest["git_commit"] is None


def test_git_missing_is_not_an_error(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    store.update("ingest", [NOLEAK[0]], reason="r")
    assert store.load("ingest").manifest["git_commit"] is None


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("old,new,what", [
    (NOLEAK[0], CPU, "sample types"),
    (NOLEAK[0], NODEJS, "sample types"),
    (NODEJS, NOLEAK[0], "sample types"),
])
def test_incompatible_profile_is_refused_without_force(
    tmp_path: Path, old: Path, new: Path, what: str,
) -> None:
    b = tmp_path / "baselines"
    assert run(["update", "-c", "x", old, "--reason", "r", "--baselines", b]).exit_code == 0
    before = tree(b)
    res = run(["update", "-c", "x", new, "--reason", "r", "--baselines", b])
    assert res.exit_code == 3
    assert res.stderr.count("\n") == 1
    assert f"incompatible with the existing baseline of x: it has {what}" in res.stderr
    assert "--force" in res.stderr
    assert tree(b) == before
    res = run(["update", "-c", "x", new, "--reason", "new kind", "--force", "--baselines", b])
    assert res.exit_code == 0, res.output
    assert [p.sha256 for p in Store(b).load("x").profiles] == [sha(new)]
    assert Store(b).verify() == []


def test_other_sampling_period_is_refused(store: Store, tmp_path: Path) -> None:
    # Same sample types, other period: rewrite the period of a profile.
    from memgate.profile import profile_pb2

    msg = profile_pb2.Profile()
    msg.ParseFromString(gzip.decompress(NOLEAK[1].read_bytes()))
    msg.period = 1024
    other = tmp_path / "period-1024.pb.gz"
    other.write_bytes(gzip.compress(msg.SerializeToString(), mtime=0))
    store.update("ingest", [NOLEAK[0]], reason="r")
    with pytest.raises(BaselineError, match="sampled every 524288 bytes, the profile every 1024"):
        store.update("ingest", [other], reason="r")
    store.update("ingest", [other], reason="r", force=True)
    assert store.load("ingest").profiles[0].period == 1024
    # Within one update the profiles must be of one kind, with or without --force.
    with pytest.raises(BaselineError, match="runs of the same workload"):
        store.update("ingest", [NOLEAK[0], other], reason="r", force=True)


def test_mixed_profiles_in_one_update_are_refused(store: Store) -> None:
    with pytest.raises(BaselineError, match="runs of the same workload"):
        store.update("x", [NOLEAK[0], CPU], reason="r", force=True)
    assert not store.exists("x")


def test_same_profile_twice_is_refused(store: Store) -> None:
    with pytest.raises(BaselineError, match="the same profile is given twice"):
        store.update("x", [NOLEAK[0], NOLEAK[0]], reason="r")


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_empty_reason_is_refused(store: Store, reason: str, tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="a reason is required"):
        store.update("x", [NOLEAK[0]], reason=reason)
    res = run(["update", "-c", "x", NOLEAK[0], "--reason", reason, "--baselines", tmp_path])
    assert res.exit_code == 2
    assert "--reason" in res.stderr
    assert not store.root.exists()


def test_missing_reason_is_a_usage_error(tmp_path: Path) -> None:
    res = run(["update", "-c", "x", NOLEAK[0], "--baselines", tmp_path / "b"])
    assert res.exit_code == 2
    assert "Missing option '--reason'" in res.stderr
    res = run(["accept", "--from-report", tmp_path / "r.json", "--baselines", tmp_path / "b"])
    assert res.exit_code == 2
    assert not (tmp_path / "b").exists()


def test_bad_duration_is_a_usage_error(tmp_path: Path) -> None:
    res = run(["update", "-c", "x", NOLEAK[0], "--reason", "r", "--duration", "soon",
               "--baselines", tmp_path / "b"])
    assert res.exit_code == 2 and "--duration" in res.stderr


def test_unreadable_profile_is_one_line(tmp_path: Path) -> None:
    res = run(["update", "-c", "x", tmp_path / "nope.pb.gz", "--reason", "r",
               "--baselines", tmp_path / "b"])
    assert res.exit_code == 3
    assert res.stderr == f"memgate: {tmp_path / 'nope.pb.gz'}: no such file\n"
    truncated = tmp_path / "truncated.pb.gz"
    truncated.write_bytes(NOLEAK[0].read_bytes()[:100])
    with pytest.raises(ProfileError):
        Store(tmp_path / "b").update("x", [truncated], reason="r")
    assert not Store(tmp_path / "b").exists("x")


# ---------------------------------------------------------------------------------------------
# verify: damage is found and named
# ---------------------------------------------------------------------------------------------

def _manifest(store: Store, component: str = "ingest") -> dict[str, object]:
    data = json.loads((store.root / component / MANIFEST).read_text())
    assert isinstance(data, dict)
    return data


def _write_manifest(store: Store, data: object, component: str = "ingest") -> None:
    (store.root / component / MANIFEST).write_text(json.dumps(data, indent=2))


def test_checksum_tamper_is_reported(store: Store, tmp_path: Path) -> None:
    store.update("ingest", [NOLEAK[0], NOLEAK[1]], reason="r")
    victim = store.root / "ingest" / f"{sha(NOLEAK[1])[:16]}.pb.gz"
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF
    victim.write_bytes(bytes(data))
    problems = store.verify()
    assert len(problems) == 1
    assert problems[0].startswith(f"ingest: profiles[1] ({victim.name}): checksum mismatch")
    with pytest.raises(BaselineError, match="checksum mismatch"):
        store.load("ingest")
    res = run(["verify", "--baselines", store.root])
    assert res.exit_code == 3
    assert res.stderr.startswith("memgate: ingest: profiles[1]")
    assert res.stdout == ""
    # A damaged baseline is replaced only with --force (the new version is whole again).
    with pytest.raises(BaselineError, match="existing baseline of ingest is invalid"):
        store.update("ingest", [NOLEAK[2]], reason="r")
    store.update("ingest", [NOLEAK[2]], reason="r", force=True)
    assert store.verify() == []


def test_missing_and_unlisted_files_are_reported(store: Store) -> None:
    store.update("ingest", [NOLEAK[0]], reason="r")
    listed = store.root / "ingest" / f"{sha(NOLEAK[0])[:16]}.pb.gz"
    stray = store.root / "ingest" / "0123456789abcdef.pb.gz"
    shutil.copy(NOLEAK[1], stray)
    assert store.verify() == ["ingest: 0123456789abcdef.pb.gz is not listed in manifest.json"]
    listed.unlink()
    assert any("file is missing" in p for p in store.verify("ingest"))


def test_profile_that_does_not_parse_is_reported(store: Store) -> None:
    store.update("ingest", [NOLEAK[0]], reason="r")
    m = _manifest(store)
    garbage = gzip.compress(b"\xff\xff\xff garbage", mtime=0)
    digest = hashlib.sha256(garbage).hexdigest()
    (store.root / "ingest" / f"{sha(NOLEAK[0])[:16]}.pb.gz").unlink()
    (store.root / "ingest" / f"{digest[:16]}.pb.gz").write_bytes(garbage)
    entry = m["profiles"][0]  # type: ignore[index]
    entry.update(file=f"{digest[:16]}.pb.gz", sha256=digest)
    _write_manifest(store, m)
    problems = store.verify()
    assert len(problems) == 1 and "does not parse" in problems[0]
    store.load("ingest")  # load checks checksums only; verify is the thorough check


@pytest.mark.parametrize("mutate,expect", [
    (lambda m: m.pop("reason"), "(top level): 'reason' is a required property"),
    (lambda m: m.update(reason=" "), "reason: ' ' does not match"),
    (lambda m: m["profiles"][0].update(period="x"), "profiles[0].period: 'x' is not of type"),
    (lambda m: m["profiles"][0].update(sha256="abc"), "profiles[0].sha256: 'abc' does not match"),
    (lambda m: m.update(extra=1), "Additional properties are not allowed ('extra'"),
    (lambda m: m.update(profiles=[]), "profiles: [] should be non-empty"),
    (lambda m: m.update(component="other"), "is for component 'other'"),
    (lambda m: m["summary"]["inuse_space"][0].update(flat_rate=1.0), "summary does not match"),
])
def test_manifest_schema_violation_is_reported(store: Store, mutate: object,
                                               expect: str) -> None:
    store.update("ingest", [NOLEAK[0]], reason="r")
    m = _manifest(store)
    mutate(m)  # type: ignore[operator]
    _write_manifest(store, m)
    problems = store.verify()
    assert problems and all(p.startswith("ingest: ") for p in problems)
    assert any(expect in p for p in problems), problems
    assert all("\n" not in p for p in problems)
    res = run(["verify", "ingest", "--baselines", store.root])
    assert res.exit_code == 3
    if "summary" not in expect:
        with pytest.raises(BaselineError):
            store.load("ingest")


@pytest.mark.parametrize("text,expect", [
    ("{", "manifest.json is not valid JSON: line 1"),
    ("[]", "manifest.json must hold a JSON object"),
    ("", "not valid JSON"),
])
def test_broken_manifest_is_reported(store: Store, text: str, expect: str) -> None:
    store.update("ingest", [NOLEAK[0]], reason="r")
    (store.root / "ingest" / MANIFEST).write_text(text)
    assert any(expect in p for p in store.verify())
    with pytest.raises(BaselineError, match="run `memgate baseline verify ingest`"):
        store.load("ingest")
    # An invalid existing baseline is replaced only with --force.
    with pytest.raises(BaselineError, match="the existing baseline of ingest is invalid"):
        store.update("ingest", [NOLEAK[1]], reason="r")
    store.update("ingest", [NOLEAK[1]], reason="r", force=True)
    assert store.verify() == []


@pytest.mark.parametrize("fmt,expect", [
    (2, "has format 2, written by a newer memgate"),
    (0, "has unknown format 0"),
    ("1", 'has unknown format "1"'),
    (None, "has unknown format null"),
    (True, "has unknown format true"),
])
def test_unknown_format_version_is_refused(store: Store, fmt: object, expect: str) -> None:
    store.update("ingest", [NOLEAK[0]], reason="r")
    m = _manifest(store)
    if fmt is None:
        m.pop("format")
    else:
        m["format"] = fmt
    _write_manifest(store, m)
    with pytest.raises(BaselineError, match=expect):
        store.load("ingest")
    assert store.verify() == [f"ingest: {MANIFEST} {expect}" + (
        f"; this memgate {__version__} reads format 1: upgrade memgate" if fmt == 2
        else "; this memgate reads format 1")]
    if fmt == 2:
        # Never silently downgrade a newer baseline, not even with --force.
        with pytest.raises(BaselineError, match="newer memgate"):
            store.update("ingest", [NOLEAK[1]], reason="r", force=True)


def test_stray_directory_with_invalid_name_is_reported(store: Store) -> None:
    store.update("ingest", [NOLEAK[0]], reason="r")
    (store.root / "bad name").mkdir()
    (store.root / "README.md").write_text("baselines of this repository\n")
    assert store.components() == ["ingest"]
    problems = store.verify()
    assert len(problems) == 1 and problems[0].startswith("'bad name': not a baseline")


def test_component_directory_without_manifest(store: Store) -> None:
    (store.root / "empty").mkdir(parents=True)
    assert store.verify() == ["empty: manifest.json is missing"]
    with pytest.raises(BaselineError, match="manifest.json is missing"):
        store.load("empty")


def test_schema_is_valid_and_matches_what_is_written(store: Store) -> None:
    schema = baseline_schema()
    Draft202012Validator.check_schema(schema)
    store.update("ingest", [NOLEAK[0], NOLEAK[1]], reason="r", duration_seconds=5)
    store.update("cpu", [CPU], reason="r")
    for c in ("ingest", "cpu"):
        assert list(Draft202012Validator(schema).iter_errors(_manifest(store, c))) == []
    shipped = json.loads((REPO / "memgate" / "schemas" / "baseline.schema.json").read_text())
    assert shipped == schema


# ---------------------------------------------------------------------------------------------
# Read-only operations never write
# ---------------------------------------------------------------------------------------------

def test_read_only_operations_never_write(store: Store) -> None:
    store.update("ingest", [NOLEAK[0]], reason="r")
    store.update("cpu", [CPU], reason="r")
    before = tree(store.root)
    store.components()
    store.exists("ingest")
    store.load("ingest")
    assert store.verify() == [] and store.notes() == []
    for args in (["list"], ["show", "ingest"], ["verify"], ["verify", "cpu"]):
        assert run([*args, "--baselines", store.root]).exit_code == 0
    assert tree(store.root) == before
    nowhere = Store(store.root.parent / "nowhere")
    assert nowhere.components() == [] and not nowhere.exists("x")
    nowhere.verify()
    with pytest.raises(BaselineError):
        nowhere.load("x")
    assert not nowhere.root.exists()


def test_interrupted_update_is_resolved_without_writing(store: Store) -> None:
    """The state between the two renames: <component>/ is missing, .old- and .new- exist."""
    store.update("ingest", [NOLEAK[0]], reason="old")
    other = Store(store.root.parent / "other")
    other.update("ingest", [NOLEAK[1], NOLEAK[2]], reason="new")
    token = "0123456789abcdef"
    os.rename(store.root / "ingest", store.root / f".ingest.old-{token}")
    shutil.copytree(other.root / "ingest", store.root / f".ingest.new-{token}")
    before = tree(store.root)
    b = store.load("ingest")
    assert [p.sha256 for p in b.profiles] == [sha(NOLEAK[0])]
    assert b.directory.name == f".ingest.old-{token}"
    assert store.components() == ["ingest"] and store.exists("ingest")
    assert store.verify() == []
    notes = store.notes()
    assert len(notes) == 1 and "the previous baseline is in effect" in notes[0]
    res = run(["verify", "--baselines", store.root])
    assert res.exit_code == 0
    assert "memgate: note: ingest: an update was interrupted" in res.stderr
    assert "(in effect from .ingest.old-0123456789abcdef" in res.stdout
    assert tree(store.root) == before
    # recover puts it back and deletes the leftovers.
    res = run(["recover", "--baselines", store.root])
    assert res.exit_code == 0 and "restored the previous baseline" in res.stdout
    assert sorted(p.name for p in store.root.iterdir()) == ["ingest"]
    assert [p.sha256 for p in store.load("ingest").profiles] == [sha(NOLEAK[0])]
    assert run(["recover", "--baselines", store.root]).stdout == "nothing to recover\n"


def test_leftovers_next_to_a_complete_baseline_are_ignored(store: Store) -> None:
    store.update("ingest", [NOLEAK[0]], reason="old")
    junk = store.root / ".ingest.new-00000000000000aa"
    junk.mkdir()
    (junk / "half.pb.gz").write_bytes(b"\x1f\x8b")
    shutil.copytree(store.root / "ingest", store.root / ".ingest.old-00000000000000bb")
    assert store.verify() == []
    assert "leftovers of an interrupted update are ignored" in store.notes("ingest")[0]
    assert store.load("ingest").directory == store.root / "ingest"
    # The next update cleans them up.
    store.update("ingest", [NOLEAK[1]], reason="new")
    assert sorted(p.name for p in store.root.iterdir()) == ["ingest"]


def test_temporary_names_of_one_component_do_not_match_another(store: Store) -> None:
    store.update("a", [NOLEAK[0]], reason="r")
    store.update("a.new-0123456789abcdef", [NOLEAK[1]], reason="r")
    (store.root / ".a.new-0123456789abcdef.new-00000000000000aa").mkdir()
    store.update("a", [NOLEAK[2]], reason="r")
    assert (store.root / ".a.new-0123456789abcdef.new-00000000000000aa").is_dir()
    assert store.components() == ["a", "a.new-0123456789abcdef"]
    assert store.verify() == []


# ---------------------------------------------------------------------------------------------
# Locking
# ---------------------------------------------------------------------------------------------

def test_locked_component_fails_at_once(store: Store, tmp_path: Path) -> None:
    store.update("ingest", [NOLEAK[0]], reason="r")
    before = tree(store.root / "ingest")
    store.root.mkdir(exist_ok=True)
    with store._writing("ingest"):
        with pytest.raises(BaselineError) as err:
            store.update("ingest", [NOLEAK[1]], reason="r")
        msg = str(err.value)
        assert msg.startswith("baseline ingest is being updated by another process (lock ")
        assert f"held by pid {os.getpid()} on host" in msg
        with pytest.raises(BaselineError, match="being updated by another process"):
            store.remove("ingest")
        # Another component is not affected.
        store.update("other", [NOLEAK[1]], reason="r")
        assert "ingest: an update is running right now" in store.notes()
        res = subprocess.run(
            [*memgate_baseline_cmd(), "update", "-c", "ingest", str(NOLEAK[2]), "--reason",
             "r", "--baselines", str(store.root)],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        assert res.returncode == 3
        assert "is being updated by another process" in res.stderr
        assert res.stderr.count("\n") == 1
    assert tree(store.root / "ingest") == before
    assert not (store.root / ".ingest.lock").exists()
    store.update("ingest", [NOLEAK[1]], reason="r")


def test_stale_lock_file_does_not_block(store: Store) -> None:
    """A killed process leaves the lock file, but not the lock: the kernel dropped it."""
    store.root.mkdir(parents=True)
    (store.root / ".ingest.lock").write_text("pid 999999 on host elsewhere since 2001")
    store.update("ingest", [NOLEAK[0]], reason="r")
    assert not (store.root / ".ingest.lock").exists()


def test_lock_is_released_on_errors(store: Store) -> None:
    store.update("ingest", [NOLEAK[0]], reason="r")
    with pytest.raises(BaselineError):
        store.update("ingest", [CPU], reason="r")
    assert not (store.root / ".ingest.lock").exists()
    lock = Lock(store.root, "ingest")
    with lock:
        assert (store.root / ".ingest.lock").read_text().startswith(f"pid {os.getpid()} ")
    store.update("ingest", [NOLEAK[1]], reason="r")


# ---------------------------------------------------------------------------------------------
# accept --from-report
# ---------------------------------------------------------------------------------------------

def _report(tmp_path: Path, names: Sequence[str], component: str | None = "ingest",
            durations: Sequence[float | None] | None = None,
            baseline: Sequence[Path] = ()) -> Path:
    cands = []
    for i, name in enumerate(names):
        src = PROFILES / name
        shutil.copy(src, tmp_path / name)
        cands.append({"path": name, "sha256": sha(src),
                      "duration_seconds": durations[i] if durations else None})
    report = check_report(cands, component=component,
                          baseline=[{"path": str(b), "sha256": sha(b)} for b in baseline])
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    return path


def test_accept_from_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    names = ["seedleak-leak-1.pb.gz", "seedleak-leak-2.pb.gz"]
    _report(tmp_path, names, durations=[60.0, 90.0], baseline=[NOLEAK[0]])
    assert run(["update", "-c", "ingest", NOLEAK[0], "--reason", "r"]).exit_code == 0
    res = run(["accept", "--from-report", "report.json", "--reason", "approved: new cache",
               "--approved-by", "carol"])
    assert res.exit_code == 0, res.output
    assert "accepted a new baseline ingest: 2 profiles" in res.stdout
    b = Store("baselines").load("ingest")
    assert b.reason == "approved: new cache" and b.approved_by == "carol"
    by_name = {p.original_name: p for p in b.profiles}
    assert by_name["seedleak-leak-1.pb.gz"].duration_seconds == 60.0
    assert by_name["seedleak-leak-2.pb.gz"].duration_seconds == 90.0
    assert {p.sha256 for p in b.profiles} == {sha(PROFILES / n) for n in names}
    assert b.manifest["summary_unit"] == "per_second"


def test_accept_refuses_when_the_baseline_changed_since_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The approval covers the change against the baseline the check saw, not whatever
    someone put in the store since."""
    monkeypatch.chdir(tmp_path)
    _report(tmp_path, ["seedleak-leak-1.pb.gz"], baseline=[NOLEAK[0]])
    assert run(["update", "-c", "ingest", NOLEAK[1], NOLEAK[2], "--reason", "someone else"]
               ).exit_code == 0
    res = run(["accept", "--from-report", "report.json", "--reason", "r"])
    assert res.exit_code == 3 and res.stderr.count("\n") == 1
    assert "the baseline of ingest is not the one this report was checked against" in res.stderr
    assert Store("baselines").load("ingest").reason == "someone else"
    res = run(["accept", "--from-report", "report.json", "--reason", "r", "--force"])
    assert res.exit_code == 0, res.output
    assert Store("baselines").load("ingest").reason == "r"


def test_accept_refuses_a_file_changed_since_the_check(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _report(tmp_path, ["seedleak-leak-1.pb.gz", "seedleak-leak-2.pb.gz"])
    shutil.copy(PROFILES / "seedleak-leak-3.pb.gz", tmp_path / "seedleak-leak-2.pb.gz")
    res = run(["accept", "--from-report", "report.json", "--reason", "r"])
    assert res.exit_code == 3
    assert res.stderr.startswith("memgate: seedleak-leak-2.pb.gz: changed since the check")
    assert res.stderr.count("\n") == 1
    assert not Path("baselines").exists() or not Store("baselines").exists("ingest")


def test_accept_component_handling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store("baselines")
    _report(tmp_path, ["seedleak-noleak-1.pb.gz"], component=None)
    with pytest.raises(BaselineError, match="names no component; give one with --component"):
        store.accept("report.json", reason="r")
    store.accept("report.json", reason="r", component="api")
    assert store.exists("api")
    _report(tmp_path, ["seedleak-noleak-2.pb.gz"], component="ingest")
    with pytest.raises(BaselineError, match="the report is for component ingest, not api"):
        store.accept("report.json", reason="r", component="api")
    with pytest.raises(BaselineError, match="a reason is required"):
        store.accept("report.json", reason=" ")


_ZEROS = "0" * 64


@pytest.mark.parametrize("content,expect", [
    ("not json", "not a memgate JSON report: invalid JSON"),
    ("[]", "not a valid memgate report: at (top level): [] is not of type 'object'"),
    (json.dumps({"component": "x"}), "not a valid memgate report: at (top level): 'format'"),
    (json.dumps(check_report([{"path": "a"}])), "at inputs/candidate/0: 'sha256' is a "
                                                "required property"),
    (json.dumps(check_report([{"path": "a", "sha256": "abc"}])), "does not match"),
    (json.dumps(check_report([], component="x")), "has no candidate profiles"),
    (json.dumps(check_report([{"path": "a", "sha256": _ZEROS}], component="../x")),
     "invalid component name"),
    (json.dumps(check_report([{"path": "-", "sha256": _ZEROS}])), "standard input or a URL"),
    (json.dumps(check_report([{"path": "a", "sha256": _ZEROS, "duration_seconds": -1}])),
     "duration_seconds must be a positive number"),
])
def test_accept_refuses_bad_reports(tmp_path: Path, content: str, expect: str) -> None:
    (tmp_path / "r.json").write_text(content)
    with pytest.raises((ReportError, BaselineError), match=re.escape(expect)):
        Store(tmp_path / "b").accept(tmp_path / "r.json", reason="r")
    res = run(["accept", "--from-report", tmp_path / "r.json", "--reason", "r",
               "--baselines", tmp_path / "b"])
    assert res.exit_code == 3 and res.stderr.count("\n") == 1


def test_accept_missing_report(tmp_path: Path) -> None:
    res = run(["accept", "--from-report", tmp_path / "nope.json", "--reason", "r",
               "--baselines", tmp_path / "b"])
    assert res.exit_code == 3
    assert res.stderr == f"memgate: {tmp_path / 'nope.json'}: no such file\n"


def test_accept_the_report_of_a_real_check(tmp_path: Path) -> None:
    """update -> check (fails on the leak) -> accept its report -> check passes."""
    from memgate.cli import main
    from tests import clirun

    if "check" not in getattr(main, "commands", {}):
        pytest.skip("memgate check is not available yet")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("GITHUB_ACTIONS", None)

    def memgate(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return clirun.run(args, cwd=tmp_path, env=env)

    for p in LEAK[:2]:
        shutil.copy(p, tmp_path / p.name)
    r = memgate("baseline", "update", "-c", "ingest", *NOLEAK[:2], "--duration", "60s",
                "--reason", "initial")
    assert r.returncode == 0, r.stderr
    r = memgate("check", "-c", "ingest", LEAK[0].name, LEAK[1].name, "--duration", "60s",
                "--json", "report.json")
    assert r.returncode in (0, 1), r.stderr
    r = memgate("baseline", "accept", "--from-report", "report.json", "--reason",
                "the cache is intended", "--approved-by", "dana")
    assert r.returncode == 0, r.stderr
    b = Store(tmp_path / "baselines").load("ingest")
    assert {p.sha256 for p in b.profiles} == {sha(p) for p in LEAK[:2]}
    assert all(p.duration_seconds == 60.0 for p in b.profiles)
    r = memgate("check", "-c", "ingest", LEAK[0].name, LEAK[1].name, "--duration", "60s")
    assert r.returncode == 0, r.stdout + r.stderr


def test_summary_of_another_memgate_version_is_not_recomputed(store: Store) -> None:
    store.update("ingest", [NOLEAK[0]], reason="r")
    m = _manifest(store)
    m["memgate_version"] = "0.0.1"
    m["summary"]["inuse_space"][0]["flat_rate"] = 1.0  # type: ignore[index]
    _write_manifest(store, m)
    assert store.verify() == []


def test_check_compares_with_the_baseline_it_loaded_even_if_replaced_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The candidates may take minutes to read (a delta URL); an update of the baseline in
    the meantime must not make the check read half of the new one, or fail on checksums."""
    import memgate.checkrun as checkrun
    from memgate.config import Config
    from memgate.progress import Progress

    root = tmp_path / "b"
    store = Store(root)
    store.update("api", [str(NOLEAK[0])], reason="old", duration_seconds=60)
    old_sha = hashlib.sha256(NOLEAK[0].read_bytes()).hexdigest()
    real = checkrun.load_runs

    def slow_candidates(specs, *args, **kwargs):  # type: ignore[no-untyped-def]
        # While the candidates are read, someone replaces the baseline.
        store.update("api", [str(LEAK[1])], reason="new", duration_seconds=60)
        return real(specs, *args, **kwargs)

    monkeypatch.setattr(checkrun, "load_runs", slow_candidates)
    opts = checkrun.CheckOptions(candidate=[str(NOLEAK[1])], component="api",
                                 baselines=str(root), duration=60.0)
    report = checkrun.run_check_full(opts, Config(), Progress(False)).report
    assert [i["sha256"] for i in report["inputs"]["baseline"]] == [old_sha]
    assert store.load("api").reason == "new"


def test_show_recomputes_a_summary_written_before_summary_kinds(tmp_path: Path) -> None:
    """A manifest without summary_kinds (written before bug #15.1's fix) divided in-use levels
    by the duration: `show` prints what the gate computes from the stored profiles instead,
    and says so; a current manifest is shown as written."""
    store = Store(tmp_path / "b")
    store.update("svc", NOLEAK[:2], reason="r", duration_seconds=60.0)
    current = run(["show", "svc", "--baselines", tmp_path / "b"])
    assert current.exit_code == 0, current.output
    assert "recomputed" not in current.output
    manifest_path = tmp_path / "b" / "svc" / MANIFEST
    old = json.loads(manifest_path.read_text())
    # As the old formula wrote it: every value per second of the 60 s duration.
    for rows in old["summary"].values():
        for r in rows:
            r["flat_rate"], r["cum_rate"] = r["flat_rate"] / 60, r["cum_rate"] / 60
    del old["summary_kinds"]
    manifest_path.write_text(render_manifest(old))
    shown = run(["show", "svc", "--baselines", tmp_path / "b"])
    assert shown.exit_code == 0, shown.output
    assert "summary:      recomputed from the profiles" in shown.output
    # The in-use section is the same as the current manifest's: levels, not per second.
    def section(out: str) -> str:
        return out.split("inuse_space (bytes)")[1].split("\n\n")[0]

    assert section(shown.output) == section(current.output)
    assert "/s" not in section(shown.output)


@pytest.mark.parametrize("command", [["show", "svc"], ["verify", "svc"], ["list"]])
def test_commands_that_read_stored_profiles_take_the_limits_their_errors_name(
        tmp_path: Path, command: list[str]) -> None:
    """A limit's error says "raise it with --max-decompressed or MEMGATE_..."; every command
    that can hit it takes the flag."""
    Store(tmp_path / "b").update("svc", NOLEAK[:1], reason="r")
    res = run([*command, "--baselines", tmp_path / "b", "--max-decompressed", "1k"])
    assert "raise it with --max-decompressed" in res.output + res.stderr
    roomy = run([*command, "--baselines", tmp_path / "b", "--max-decompressed", "1GiB"])
    assert roomy.exit_code == 0, roomy.output
