"""Fuzzing, the default-suite sample: every hostile input ends in success or one clean error.

Each target (decoder, legacy text parsers, policy loader, baseline manifest loader, report
merger) runs a few hundred hypothesis cases in-process, derandomized so that CI is
deterministic; the long run (``python scripts/fuzz.py --cases 10000``) uses the same
strategies and targets (see docs/reliability.md); the targets are marked slow (``pytest -m
slow``, CI). A few cases also go through the CLI, in this process and (slow) in real processes:
exit 0 or 3, one stderr line, never a traceback. Every truncation of a real
gzip profile and of a raw one is a clean error too.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memgate.errors import ProfileError
from memgate.profile.decode import decode
from memgate.profile.limits import InputLimits
from tests import clirun
from tests import strategies as S

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "tests" / "fixtures" / "profiles"

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


# ---------------------------------------------------------------------------------------------
# Decoder and legacy parsers
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@FUZZ
@given(S.hostile_profile())
def test_fuzz_hostile_profiles(data: bytes) -> None:
    assert S.decode_target(data) in ("ok", "error")


@pytest.mark.slow
@FUZZ
@given(S.mutated_samples())
def test_fuzz_mutated_samples(data: bytes) -> None:
    assert S.decode_target(data) in ("ok", "error")


@pytest.mark.slow
@settings(FUZZ, max_examples=100)
@given(S.mutated_corpus())
def test_fuzz_mutated_corpus(data: bytes) -> None:
    assert S.decode_target(data) in ("ok", "error")


@pytest.mark.slow
@FUZZ
@given(S.legacy_text())
def test_fuzz_legacy_text(data: bytes) -> None:
    assert S.decode_target(data) in ("ok", "error")


@pytest.mark.slow
@settings(FUZZ, max_examples=100)
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(data: bytes) -> None:
    assert S.decode_target(data) in ("ok", "error")


# ---------------------------------------------------------------------------------------------
# Policy, manifest, report
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@FUZZ
@given(S.policy_text())
def test_fuzz_policy(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        assert S.policy_target(data, Path(d)) in ("ok", "error")


@pytest.fixture(scope="module")
def valid_baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], bytes, str]:
    from memgate.baseline.manifest import MANIFEST
    from memgate.baseline.store import Store

    root = tmp_path_factory.mktemp("store")
    b = Store(root).update("api", [str(PROFILES / "seedleak-noleak-1.pb.gz")], reason="fuzz")
    manifest = json.loads((b.directory / MANIFEST).read_text())
    sp = b.profiles[0]
    return manifest, sp.path.read_bytes(), sp.sha256


@pytest.fixture(scope="module")
def valid_report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "tests/fixtures/reports/fail.json").read_text())
    return data


@pytest.mark.slow
def test_fuzz_manifest(valid_baseline: tuple[dict[str, Any], bytes, str]) -> None:
    manifest, blob, sha = valid_baseline

    @settings(FUZZ, max_examples=100)
    @given(S.manifest_text(manifest))
    def run(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as d:
            assert S.manifest_target(data, Path(d), blob, sha) in ("ok", "error")

    run()
    # The unmodified manifest loads: the target is not failing everything.
    with tempfile.TemporaryDirectory() as d:
        assert S.manifest_target(json.dumps(manifest).encode(), Path(d), blob, sha) == "ok"


@pytest.mark.slow
def test_fuzz_report_merge(valid_report: dict[str, Any]) -> None:
    @settings(FUZZ, max_examples=100)
    @given(S.report_text(valid_report))
    def run(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as d:
            assert S.report_target(data, Path(d)) in ("ok", "error")

    run()
    with tempfile.TemporaryDirectory() as d:
        assert S.report_target(json.dumps(valid_report).encode(), Path(d)) == "ok"


# ---------------------------------------------------------------------------------------------
# Truncations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["seedleak-noleak-1.pb.gz", "nodejs-heap-uncompressed.pprof"])
def test_every_truncation_is_a_clean_error(name: str) -> None:
    data = (PROFILES / name).read_bytes()
    decode(data, name, InputLimits())  # the whole file is fine
    ok = 0
    for n in range(len(data)):
        try:
            decode(data[:n], name, InputLimits())
            ok += 1
        except ProfileError as e:
            S.check_message(e, name)
    if data[:2] == b"\x1f\x8b":
        assert ok == 0  # a gzip stream cut anywhere is detected (trailer CRC and size)
    else:
        # A raw protobuf cut at a field boundary can be a valid, smaller profile.
        assert ok < len(data) // 10


def test_every_truncation_of_the_decompressed_gzip_profile() -> None:
    data = gzip.decompress((PROFILES / "seedleak-noleak-1.pb.gz").read_bytes())
    for n in range(0, len(data), 3):
        try:
            decode(data[:n], "x", InputLimits())
        except ProfileError as e:
            S.check_message(e, "x")


# ---------------------------------------------------------------------------------------------
# Bombs: small inputs that declare or expand to a lot
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", S.declared_huge(), ids=lambda c: c[0])
def test_declared_lengths_do_not_allocate(case: tuple[str, bytes]) -> None:
    """A few bytes declaring 1 GiB or 2^64: a clean error, under a 512 MiB address-space cap."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))\n"
        "from memgate.profile.decode import decode\n"
        "from memgate.profile.limits import InputLimits\n"
        "from memgate.errors import ProfileError\n"
        "from memgate.table import aggregate\n"
        "try:\n"
        "    aggregate(decode(sys.stdin.buffer.read(), 'x', InputLimits()), 'functions')\n"
        "    print('ok')\n"
        "except ProfileError as e:\n"
        "    print('error', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=case[1], capture_output=True,
                         timeout=60, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert out.stdout.startswith((b"ok", b"error x: ")), out.stdout


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = S.gzip_bomb(64 << 20)
    assert len(bomb) < 100_000
    with pytest.raises(ProfileError, match="decompressed size exceeds the limit"):
        decode(bomb, "bomb", InputLimits(max_decompressed_bytes=8 << 20))


def test_many_tiny_elements_are_counted_before_parsing() -> None:
    """Two-byte Location fields cost ~70 bytes each in the protobuf runtime: the count limit
    is checked before it builds them (it used to be checked after)."""
    data = b"\x22\x00" * 200_000
    with pytest.raises(ProfileError, match=r"more than 1000 locations.*--max-locations"):
        decode(data, "x", InputLimits(max_locations=1000))
    with pytest.raises(ProfileError, match=r"more than 1000 samples.*--max-samples"):
        decode(b"\x12\x00" * 200_000, "x", InputLimits(max_samples=1000))
    with pytest.raises(ProfileError, match=r"more than 1000 functions"):
        decode(b"\x2a\x00" * 200_000, "x", InputLimits(max_locations=1000))


def test_count_walk_survives_garbage() -> None:
    """The pre-parse walk stops silently on malformed data; the parser reports it."""
    for data in (b"\x80" * 100_000, b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01" * 9000,
                 b"\x08" + b"\xff" * 100_000, b"\x0f" * 100_000):
        with pytest.raises(ProfileError):
            decode(data, "x", InputLimits(max_samples=10, max_locations=10))


# ---------------------------------------------------------------------------------------------
# Through the real CLI
# ---------------------------------------------------------------------------------------------


def _cli_cases() -> list[bytes]:
    cases = [case for _, case in S.declared_huge()]
    cases += [b"", b"\x1f\x8b", b"heap profile: 1: 1 [1: 1] @ heap/2\n1: 1 [1: 1] @ 0xzz\n",
              b"--- heapz 1 ---\nformat=java\n", b"\x00" * 100, b"<html>hi</html>"]
    return cases


@pytest.mark.slow
def test_cli_hostile_inputs_exit_cleanly(tmp_path: Path) -> None:
    for i, data in enumerate(_cli_cases()):
        p = tmp_path / f"case-{i}"
        p.write_bytes(data)
        out = subprocess.run([sys.executable, "-m", "memgate", "top", str(p)],
                             capture_output=True, text=True, timeout=60, cwd=ROOT,
                             check=False)
        assert out.returncode in (0, 3), (i, out.stderr)
        assert "Traceback" not in out.stderr
        if out.returncode == 3:
            lines = out.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"memgate: {p}: "), out.stderr


def test_cli_check_with_hostile_candidate(tmp_path: Path) -> None:
    base = PROFILES / "seedleak-noleak-1.pb.gz"
    digest = hashlib.sha256(b"").hexdigest()[:4]
    for i, data in enumerate(_cli_cases()[:4]):
        p = tmp_path / f"cand-{digest}-{i}.pb"
        p.write_bytes(data)
        out = clirun.run(["check", "--baseline", base, "--duration", "1m", "--json",
                          tmp_path / "r.json", p], cwd=ROOT)
        assert out.returncode == 3, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
        assert not (tmp_path / "r.json").exists()


# ---------------------------------------------------------------------------------------------
# String tables and drop_frames: every output stays safe
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(FUZZ, max_examples=60)
@given(S.mutated_strings())
def test_fuzz_string_tables_and_drop_frames(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        assert S.strings_target(data, Path(d)) in ("ok", "error")
