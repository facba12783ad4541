"""Inputs a pull request's author can write, for the tests (tests/test_untrusted.py) and the
benchmark of their cost (benchmarks/hostile.py): each builds what is needed in a directory and
returns the memgate command line that reads it.

:func:`measure` runs one command in a fresh process and reports its exit code, wall time and
peak RSS (the process's own ``ru_maxrss``, so that other processes do not count).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memgate.profile.wire import encode_varint
from tests.pbuild import gz, make_profile

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20

#: A Python program that runs the memgate command line and prints its peak RSS last.
_PEAK = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: sys.stderr.write("
    "'\\nPEAK_KB %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    "sys.argv = ['memgate', *sys.argv[1:]]\n"
    "from memgate.cli import entry\n"
    "entry()\n"
)


@dataclass(frozen=True)
class Measured:
    returncode: int
    seconds: float
    peak_mib: float
    stdout: str
    stderr: str


#: Address space a measured process may take: far above what memgate needs on any of these
#: inputs, and low enough that a regression fails with MemoryError instead of exhausting the
#: machine (reading /dev/zero without a bound would).
ADDRESS_SPACE = 8 << 30


def _cap_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def measure(args: list[str], cwd: Path, timeout: float = 300,
            env: dict[str, str] | None = None) -> Measured:
    """Run ``memgate ARGS`` in ``cwd``; exit code, wall seconds, peak RSS in MiB, output."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("GITHUB_ACTIONS", None)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _PEAK, *args], cwd=cwd, env=full_env,
                          capture_output=True, timeout=timeout, check=False,
                          preexec_fn=_cap_memory if sys.platform != "win32" else None)
    seconds = time.monotonic() - t0
    err = proc.stderr.decode("utf-8", "replace")
    peak = 0.0
    lines = err.rstrip("\n").split("\n")
    if lines and lines[-1].startswith("PEAK_KB "):
        peak = int(lines[-1].split()[1]) / 1024
        err = "\n".join(lines[:-1]).rstrip("\n") + "\n"
    return Measured(proc.returncode, seconds, peak, proc.stdout.decode("utf-8", "replace"),
                    err.lstrip("\n"))


# --------------------------------------------------------------------------- protobuf pieces


def _field_bytes(field: int, payload_len: int) -> bytes:
    """The key and length of a length-delimited field (its payload follows)."""
    return encode_varint(field << 3 | 2) + encode_varint(payload_len)


def profile_with_names(names: list[str], *, drop_frames: str = "") -> bytes:
    """A heap profile whose stacks are ``name -> main`` with growing values, gzipped."""
    stacks = [((n, "main.main"), (k + 1, (k + 1) * MiB)) for k, n in enumerate(names)]
    msg = make_profile(stacks)
    if drop_frames:
        msg.string_table.append(drop_frames.encode())
        msg.drop_frames = len(msg.string_table) - 1
    return gz(msg.SerializeToString())


def gzip_stream(pieces: Callable[[], list[bytes | tuple[bytes, int]]]) -> bytes:
    """Gzip what ``pieces`` yields: bytes, or ``(block, n)`` for a block repeated n times
    (compressed as it goes, so a gigabyte never sits in memory)."""
    c = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = []
    for p in pieces():
        if isinstance(p, tuple):
            block, n = p
            out += [c.compress(block) for _ in range(n)]
        else:
            out.append(c.compress(p))
    out.append(c.flush())
    return b"".join(out)


# --------------------------------------------------------------------------- the hostile inputs
#
# Each returns the command (after ``memgate``) that reads what it wrote into ``d``.


def many_strings(d: Path) -> list[str]:
    """39 million three-byte string-table entries in a 76 KB gzip file."""
    entry = _field_bytes(6, 1) + b"a"
    data = gzip_stream(lambda: [_field_bytes(6, 0), (entry * (1 << 20), 39)])
    (d / "strings.pb.gz").write_bytes(data)
    return ["top", "strings.pb.gz"]


def one_huge_string(d: Path) -> list[str]:
    """One 1000 MiB string in a 1 MB gzip file (under the 1 GiB decompressed limit)."""
    n = 1000 * MiB
    data = gzip_stream(lambda: [_field_bytes(6, 0), _field_bytes(6, n), (b"x" * (50 * MiB), 20)])
    (d / "string.pb.gz").write_bytes(data)
    return ["top", "string.pb.gz"]


def gzip_bomb(d: Path) -> list[str]:
    """2 GiB of zeros in a 2 MB gzip file."""
    data = gzip_stream(lambda: [(b"\0" * (64 * MiB), 32)])
    (d / "bomb.pb.gz").write_bytes(data)
    return ["top", "bomb.pb.gz"]


def dev_zero(d: Path) -> list[str]:
    """``memgate top /dev/zero``: a file whose size is 0 and whose content never ends."""
    return ["top", "/dev/zero"]


def baseline_link(d: Path) -> list[str]:
    """A baseline store whose profile is committed as a link to ``/dev/zero``."""
    import hashlib
    import json

    comp = d / "baselines" / "api"
    comp.mkdir(parents=True)
    data = profile_with_names(["main.x"])
    sha = hashlib.sha256(data).hexdigest()
    (comp / f"{sha[:16]}.pb.gz").symlink_to("/dev/zero")
    (comp / "manifest.json").write_text(json.dumps({
        "format": 1, "component": "api", "memgate_version": "0",
        "created": "2024-01-01T00:00:00Z", "updated": "2024-01-01T00:00:00Z",
        "git_commit": None, "reason": "r", "approved_by": None, "summary_unit": "per_second",
        "summary": {}, "summary_totals": {},
        "profiles": [{"file": f"{sha[:16]}.pb.gz", "sha256": sha, "original_name": "p",
                      "sample_types": [{"type": "inuse_objects", "unit": "count"},
                                       {"type": "inuse_space", "unit": "bytes"}],
                      "period_type": {"type": "space", "unit": "bytes"}, "period": 524288,
                      "duration_seconds": 60.0}]}))
    (d / "cand.pb.gz").write_bytes(data)
    return ["check", "-c", "api", "cand.pb.gz", "--duration", "60s"]


def memory_map_growth(d: Path) -> list[str]:
    """A memory map defining ``$a`` as 100,000 characters, then a line of 50,000 ``$a``."""
    text = ("heap profile: 1: 2 [3: 4] @ heap/1048576\n1: 2 [3: 4] @ 0x1000\n"
            "--- Memory map: ---\na=" + "x" * 100_000 + "\n" + "$a" * 50_000 + "\n")
    (d / "growth.heap").write_text(text)
    return ["top", "growth.heap"]


def drop_frames_bomb(d: Path) -> list[str]:
    """``drop_frames`` = ``(a+)+$`` and a function named ``a`` x 40 + ``b``."""
    (d / "drop.pb.gz").write_bytes(profile_with_names(["a" * 40 + "b"], drop_frames="(a+)+$"))
    return ["top", "drop.pb.gz"]


def legacy_digits(d: Path) -> list[str]:
    """A heap-format header followed by a 60,000-character line of digits."""
    text = "heap profile: 1: 2 [3: 4] @ heap/1048576\n" + "1" * 60_000 + "\n"
    (d / "digits.heap").write_text(text)
    return ["top", "digits.heap"]


def legacy_memory_map(d: Path) -> list[str]:
    """``--- Memory map: ---`` and a 1,000,000-character line."""
    text = ("heap profile: 1: 2 [3: 4] @ heap/1048576\n1: 2 [3: 4] @ 0x1000\n"
            "--- Memory map: ---\n" + "0" * 1_000_000 + "\n")
    (d / "map.heap").write_text(text)
    return ["top", "map.heap"]


def policy_regex_bomb(d: Path) -> list[str]:
    """A policy ``re:(a+)+b`` rule against a function named ``a`` x 5000."""
    (d / "base.pb.gz").write_bytes(profile_with_names(["main.x"]))
    (d / "cand.pb.gz").write_bytes(profile_with_names(["main.x", "a" * 5000]))
    (d / "policy.yml").write_text(
        "version: 1\nrules:\n  - name: bomb\n    match: 're:(a+)+b'\n    max_increase: 1%\n")
    return ["check", "--baseline", "base.pb.gz", "cand.pb.gz", "--duration", "60s",
            "--policy", "policy.yml"]


def big_policy(d: Path) -> list[str]:
    """A 200 MB policy file."""
    with open(d / "policy.yml", "w") as fh:
        fh.write("version: 1\nrules:\n")
        block = "".join(f"  - name: r{i}\n    match: f{i}\n    max_increase: 10%\n"
                        for i in range(1000))
        for _ in range(200 * MiB // len(block) + 1):
            fh.write(block)
    return ["policy", "check", "policy.yml"]


def json_bomb_report(d: Path) -> list[str]:
    """A 48 MB report of empty objects (the most Python objects per JSON byte)."""
    n = (48 * MiB - 32) // 3
    with open(d / "report.json", "w") as fh:
        fh.write('{"x": [')
        fh.write("{}," * (n - 1))
        fh.write("{}]}")
    return ["report", "merge", "report.json"]


#: name -> (what it is, builder); the benchmark's rows, in order.
HOSTILE: dict[str, tuple[str, Callable[[Path], list[str]]]] = {
    "many-strings": ("76 KB gzip, 39M three-byte strings", many_strings),
    "huge-string": ("1 MB gzip, one 1000 MiB string", one_huge_string),
    "gzip-bomb": ("2 MB gzip, 2 GiB of zeros", gzip_bomb),
    "dev-zero": ("`memgate top /dev/zero`", dev_zero),
    "baseline-link": ("a stored baseline profile linked to /dev/zero", baseline_link),
    "drop-frames": ("drop_frames `(a+)+$`, function a x 40 + b", drop_frames_bomb),
    "legacy-digits": ("heap header, then 60k digits on one line", legacy_digits),
    "legacy-map": ("`--- Memory map: ---`, then a 1M-character line", legacy_memory_map),
    "map-growth": ("`$a` of 100k characters, a line of 50k `$a`", memory_map_growth),
    "policy-regex": ("policy `re:(a+)+b` against a x 5000", policy_regex_bomb),
    "policy-size": ("a 200 MB policy file", big_policy),
    "report-json": ("48 MB report of `{}` objects (`report merge`)", json_bomb_report),
}


def gz_text(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)
