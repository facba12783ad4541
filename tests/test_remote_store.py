"""Baselines in object storage, through the CLI: memory:// and file:// (fsspec's own
backends) and s3:// against a local S3 server (moto in server mode on 127.0.0.1).

What a user relies on: the gate reads the version the committed pointer file names, and a
missing or different remote object fails the job (exit 3), never passes it; concurrent updates
lose nothing; a reader never sees a mix of two versions.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fsspec", reason="the remote store needs fsspec (pip install memgate[remote])")

from click.testing import CliRunner  # noqa: E402

from memgate.cli import main  # noqa: E402
from memgate.errors import EXIT_ERROR, EXIT_FAIL, EXIT_OK  # noqa: E402
from tests import clirun  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOISE = ROOT / "tests" / "fixtures" / "noise"
NOLEAK, NOLEAK2, LEAK = (NOISE / "noleak-01.pb.gz", NOISE / "noleak-02.pb.gz",
                         NOISE / "leak-01.pb.gz")


def cli(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def memgate(*args: str | Path, env: dict[str, str] | None = None,
            cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "MEMGATE_"))}
    full.update(env or {})
    return clirun.run(args, cwd=cwd, env=full)


def variant(i: int) -> bytes:
    """A real profile made distinct by a leading duration_nanos field (30 s + i ns)."""
    raw = gzip.decompress(NOLEAK.read_bytes())
    nanos, out = 30_000_000_000 + i, bytearray([0x50])
    while True:
        b, nanos = nanos & 0x7F, nanos >> 7
        out.append(b | (0x80 if nanos else 0))
        if not nanos:
            return bytes(out) + raw


# ---------------------------------------------------------------------------------------------
# memory:// in this process
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    url = f"memory://memgate-test-{uuid.uuid4().hex}"
    yield url, tmp_path / "pointers"
    import fsspec

    fsspec.filesystem("memory").rm(url.split("://")[1], recursive=True)


def test_memory_store_gates_like_the_local_store(mem: tuple[str, Path]) -> None:
    url, pointers = mem
    where = ["--baselines", url, "--pointers", pointers]
    r = cli("baseline", "update", "-c", "api", *where, "--reason", "first", "--duration",
            "30s", NOLEAK)
    assert r.exit_code == 0, r.output
    assert f"version 1 in {url}" in r.output and "api.remote.json" in r.output
    pointer = json.loads((pointers / "api.remote.json").read_text())
    assert pointer["version"] == 1 and pointer["manifest"]["reason"] == "first"
    # The gate against it: the leak fails, another no-leak run passes.
    assert cli("check", "-c", "api", *where, "--duration", "30s", LEAK).exit_code == EXIT_FAIL
    assert cli("check", "-c", "api", *where, "--duration", "30s", NOLEAK2).exit_code == EXIT_OK
    r = cli("baseline", "update", "-c", "api", *where, "--reason", "second", "--duration",
            "30s", NOLEAK2)
    assert r.exit_code == 0 and "version 2" in r.output
    r = cli("baseline", "verify", *where)
    assert r.exit_code == 0 and "ok api: 1 profile" in r.output
    assert "second" in cli("baseline", "list", *where).output
    assert "version 2" in cli("baseline", "show", "api", *where).output
    r = cli("baseline", "remove", "api", *where)
    assert r.exit_code == 0 and not (pointers / "api.remote.json").exists()
    r = cli("check", "-c", "api", *where, "--duration", "30s", NOLEAK2)
    assert r.exit_code == EXIT_ERROR and "no baseline for component" in r.output


@pytest.mark.slow
def test_lock_object_backends_lose_no_update(tmp_path: Path) -> None:
    """The lock-object protocol (gs://, az://, or forced): 3 processes x 4 concurrent updates
    of one component through a file:// store all land, in one linear history."""
    url = (tmp_path / "store").as_uri()
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for i in range(12):
        (profiles / f"v{i}.pb").write_bytes(variant(i))
    full = {k: v for k, v in os.environ.items() if not k.startswith("MEMGATE_")}
    full.update({"MEMGATE_STORE_LOCKING": "lock-object", "MEMGATE_STORE_LOCK_SETTLE": "0.05"})
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(tmp_path / "pointers"),
                               str(profiles), str(4 * k), "4"], cwd=ROOT, env=full,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
             for k in range(3)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    assert sorted(history(url, "api")) == sorted(f"update {i}" for i in range(12))
    assert not (tmp_path / "store" / "api" / "lock.json").exists()  # released


def history(url: str, component: str) -> list[str]:
    """The reasons of every committed version, checking the chain has no gap or fork."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{base}/{component}/versions",
                                                       detail=False))
    assert names == [f"{n:010d}.json" for n in range(1, len(names) + 1)]
    reasons = []
    for n, name in enumerate(names, 1):
        commit = json.loads(fs.cat_file(f"{base}/{component}/versions/{name}"))
        assert commit["version"] == n and commit["parent"] == (n - 1 or None)
        reasons.append(commit["reason"])
    return reasons


# ---------------------------------------------------------------------------------------------
# file:// through the command line: fail closed
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def filestore(tmp_path: Path) -> tuple[str, Path, Path]:
    store = tmp_path / "store"
    url = store.as_uri()
    r = cli("baseline", "update", "-c", "api", "--baselines", url, "--pointers",
            tmp_path / "p", "--reason", "reviewed", "--duration", "30s", NOLEAK)
    assert r.exit_code == 0, r.output
    return url, store, tmp_path / "p"


def gate(url: str, pointers: Path, *extra: str) -> Any:
    """``memgate check`` in this process (file:// needs no network); returncode, stdout and
    stderr like a subprocess's."""
    r = cli("check", "-c", "api", "--baselines", url, "--pointers", pointers,
            "--duration", "30s", *extra, NOLEAK2)
    return subprocess.CompletedProcess([], r.exit_code, r.stdout, r.stderr)


def test_file_store_passes_when_intact(filestore: tuple[str, Path, Path]) -> None:
    url, _, pointers = filestore
    assert gate(url, pointers).returncode == EXIT_OK


@pytest.mark.parametrize("damage,message", [
    ("delete-profile", "file is missing"),
    ("change-profile", "checksum mismatch"),
    ("delete-manifest", "the manifest is missing from the store"),
    ("change-manifest", "checksum mismatch"),
    ("delete-version", "version 1 of api is not in the store"),
    ("pointer-version", "version 7 of api is not in the store"),
    ("pointer-sha", "the pointer file says"),
    ("pointer-copy", "differs from version 1's in the store"),
])
def test_missing_or_mismatching_objects_fail_closed(filestore: tuple[str, Path, Path],
                                                    damage: str, message: str) -> None:
    url, store, pointers = filestore
    comp = store / "api"
    pointer_file = pointers / "api.remote.json"
    pointer = json.loads(pointer_file.read_text())
    if damage == "delete-profile":
        next((comp / "profiles").iterdir()).unlink()
    elif damage == "change-profile":
        shutil.copy(LEAK, next((comp / "profiles").iterdir()))
    elif damage == "delete-manifest":
        next((comp / "manifests").iterdir()).unlink()
    elif damage == "change-manifest":
        m = next((comp / "manifests").iterdir())
        m.write_text(m.read_text().replace("reviewed", "reviewee"))
    elif damage == "delete-version":
        (comp / "versions" / "0000000001.json").unlink()
    elif damage == "pointer-version":
        pointer["version"] = 7
    elif damage == "pointer-sha":
        pointer["manifest_sha256"] = "0" * 64
    elif damage == "pointer-copy":
        pointer["manifest"]["summary_totals"]["inuse_space"] = 1.0
    pointer_file.write_text(json.dumps(pointer))
    for extra in ((), ("--allow-missing-baseline",)):
        r = gate(url, pointers, *extra)
        assert r.returncode == EXIT_ERROR, (damage, r.stdout, r.stderr)
        assert message in r.stderr
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    r = cli("baseline", "verify", "--baselines", url, "--pointers", pointers)
    assert r.exit_code == EXIT_ERROR and message in r.stderr
    # And through a real process, once: the exit code a CI step sees.
    if damage == "delete-profile":
        p = memgate("check", "-c", "api", "--baselines", url, "--pointers", pointers,
                    "--duration", "30s", NOLEAK2)
        assert p.returncode == EXIT_ERROR and message in p.stderr


def test_no_pointer_is_a_missing_baseline(tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    r = gate(url, tmp_path / "p")
    assert r.returncode == EXIT_ERROR and "no baseline for component 'api'" in r.stderr
    r = gate(url, tmp_path / "p", "--allow-missing-baseline")
    assert r.returncode == EXIT_OK


def test_unknown_backend_and_bad_pointer_are_one_line(tmp_path: Path) -> None:
    r = cli("baseline", "update", "-c", "api", "--baselines", "nosuchproto://b/p",
            "--pointers", tmp_path, "--reason", "r", NOLEAK)
    assert r.exit_code == EXIT_ERROR
    assert r.output.startswith("memgate: nosuchproto://b/p: cannot open the store")
    assert len(r.output.splitlines()) == 1
    (tmp_path / "api.remote.json").write_text("{}")
    r = cli("check", "-c", "api", "--baselines", "memory://nothing", "--pointers", tmp_path,
            "--duration", "30s", NOLEAK2)
    assert r.exit_code == EXIT_ERROR and "invalid pointer file" in r.output
    assert len(r.output.splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# s3:// against a local S3 server
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """moto's S3 server in its own process (so that it does not share this process's GIL
    with the reader of the concurrency test), on 127.0.0.1 and a free port."""
    pytest.importorskip("s3fs", reason="s3:// needs s3fs (pip install memgate[remote])")
    pytest.importorskip("moto.server", reason="the local S3 server is moto's")
    boto3 = pytest.importorskip("boto3")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = subprocess.Popen([sys.executable, "-c", "from moto.server import main; main()",
                            "-H", "127.0.0.1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "FSSPEC_S3_ENDPOINT_URL": endpoint,
           "AWS_EC2_METADATA_DISABLED": "true"}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    for _ in range(300):
        try:
            client.create_bucket(Bucket="memgate")
            break
        except Exception:  # noqa: BLE001 - not listening yet
            if srv.poll() is not None:
                pytest.fail("the moto S3 server did not start")
            time.sleep(0.05)
    else:
        srv.kill()
        pytest.fail("the moto S3 server did not answer")
    # fsspec reads FSSPEC_* variables when it is imported: the CLI processes see them in
    # their environment, this process needs them in fsspec's configuration.
    import fsspec.config

    saved = fsspec.config.conf.get("s3")
    fsspec.config.conf["s3"] = {"endpoint_url": endpoint, "key": "test", "secret": "test"}
    yield env
    if saved is None:
        fsspec.config.conf.pop("s3", None)
    else:
        fsspec.config.conf["s3"] = saved
    srv.terminate()
    srv.wait(10)


@pytest.mark.slow
def test_s3_store_end_to_end(s3: dict[str, str], tmp_path: Path) -> None:
    url = "s3://memgate/e2e"
    where = ["--baselines", url, "--pointers", tmp_path]
    r = memgate("baseline", "update", "-c", "api", *where, "--reason", "prod week 47",
                "--duration", "30s", NOLEAK, env=s3)
    assert r.returncode == 0, r.stderr
    assert memgate("check", "-c", "api", *where, "--duration", "30s", LEAK,
                   env=s3).returncode == EXIT_FAIL
    r = memgate("check", "-c", "api", *where, "--duration", "30s", "--format", "json",
                NOLEAK2, env=s3)
    assert r.returncode == EXIT_OK, r.stderr
    base = json.loads(r.stdout)["inputs"]["baseline"][0]["path"]
    assert base.startswith(f"{url}/api/profiles/")
    assert memgate("baseline", "verify", *where, env=s3).returncode == 0
    # A profile object gone from the bucket: the gate fails closed.
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3["FSSPEC_S3_ENDPOINT_URL"], key="test",
                           secret="test")
    fs.rm(fs.ls("memgate/e2e/api/profiles")[0])
    r = memgate("check", "-c", "api", *where, "--duration", "30s", NOLEAK2, env=s3)
    assert r.returncode == EXIT_ERROR and "file is missing" in r.stderr


WORKER = """
import sys, threading
from memgate.cli import main
url, pointers, profiles, first = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
count = int(sys.argv[5]) if len(sys.argv) > 5 else 25
codes = {}
def one(i):
    args = ["baseline", "update", "-c", "api", "--baselines", url, "--pointers", pointers,
            "--reason", f"update {i}", "--duration", "30s", f"{profiles}/v{i}.pb"]
    try:
        main.main(args, standalone_mode=False)
        codes[i] = 0
    except SystemExit as e:
        codes[i] = e.code
threads = [threading.Thread(target=one, args=(i,)) for i in range(first, first + count)]
for t in threads: t.start()
for t in threads: t.join()
bad = {i: c for i, c in codes.items() if c}
print("failed:", bad, file=sys.stderr)
sys.exit(1 if bad or len(codes) != count else 0)
"""


@pytest.mark.slow
def test_100_concurrent_updates_from_4_processes(s3: dict[str, str], tmp_path: Path) -> None:
    """No update is lost (100 versions, a linear chain, every reason once) and a reader,
    running all along, only ever sees complete versions whose profile is the one its reason
    names."""
    from memgate.baseline.remote import RemoteStore

    url = f"s3://memgate/concurrent-{uuid.uuid4().hex[:8]}"
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    import hashlib

    expected = {}
    for i in range(100):
        data = variant(i)
        (profiles / f"v{i}.pb").write_bytes(data)
        expected[f"update {i}"] = hashlib.sha256(gzip.compress(data, 9, mtime=0)).hexdigest()
    pointers = tmp_path / "pointers"
    full = {k: v for k, v in os.environ.items() if not k.startswith("MEMGATE_")}
    full.update(s3)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(pointers), str(profiles),
                               str(25 * k)], cwd=ROOT, env=full, stderr=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, text=True) for k in range(4)]
    seen: list[str] = []
    problems: list[str] = []
    old_env = {k: os.environ.get(k) for k in s3}
    os.environ.update(s3)
    try:
        reader = RemoteStore(url, pointers)
        while any(p.poll() is None for p in procs):
            if not (pointers / "api.remote.json").exists():
                time.sleep(0.05)
                continue
            b = reader.load("api")
            reason = b.reason
            seen.append(reason)
            if [p.sha256 for p in b.profiles] != [expected[reason]]:
                problems.append(f"{reason}: {[p.sha256 for p in b.profiles]}")
            time.sleep(0.05)
        errs = [p.communicate()[1] for p in procs]
        assert all(p.returncode == 0 for p in procs), errs
        chain = history_s3(url)
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert not problems, problems
    assert len(set(seen)) > 1, "the reader did not read while the updates ran"
    assert sorted(chain) == sorted(expected)  # every update, each once: none lost
    final = json.loads((pointers / "api.remote.json").read_text())
    assert final["version"] == 100  # the pointer ends at the head, never behind it


def history_s3(url: str) -> list[str]:
    return history(url, "api")


def test_accept_into_a_remote_store(mem: tuple[str, Path], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """accept commits the checked candidate as the next version, and refuses once the store
    has moved on from the baseline the report was checked against."""
    url, pointers = mem
    monkeypatch.chdir(tmp_path)
    shutil.copy(NOLEAK2, tmp_path / "cand.pb.gz")
    where = ["--baselines", url, "--pointers", pointers]
    assert cli("baseline", "update", "-c", "api", *where, "--reason", "first",
               "--duration", "30s", NOLEAK).exit_code == 0
    r = cli("check", "-c", "api", *where, "--duration", "30s", "--json", "report.json",
            "cand.pb.gz")
    assert r.exit_code == EXIT_OK, r.output
    r = cli("baseline", "accept", "--from-report", "report.json", *where, "--reason", "ok")
    assert r.exit_code == 0 and "version 2" in r.output, r.output
    pointer = json.loads((pointers / "api.remote.json").read_text())
    assert pointer["version"] == 2 and pointer["manifest"]["reason"] == "ok"
    r = cli("baseline", "accept", "--from-report", "report.json", *where, "--reason", "again")
    assert r.exit_code == EXIT_ERROR and "not the one this report was checked against" in \
        r.output
