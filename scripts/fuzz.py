#!/usr/bin/env python3
"""The long fuzz run: every target, many hypothesis cases, bounded time and memory per input.

    python scripts/fuzz.py --cases 10000            # every target, 10,000 cases each
    python scripts/fuzz.py --cases 500 --targets policy,report --seed 7

Targets (strategies and harness in tests/strategies.py): ``hostile`` (structurally valid
profiles with wrong contents), ``samples`` (corpus profiles with damaged sample messages),
``mutated`` (corpus profiles with damaged bytes anywhere), ``legacy`` (legacy text),
``bytes`` (random bytes), ``policy``, ``manifest`` (baseline manifest loader), ``report``
(report merge) and ``strings`` (corpus profiles whose string tables hold hostile names and
whose ``drop_frames``/``keep_frames`` are catastrophic or invalid patterns, rendered through
``top`` and ``diff`` as text, markdown, JSON and HTML: every output must stay escaped).
Each target runs in its own process under an address-space limit (``--max-memory``, default
4 GiB) and every input under an alarm (``--timeout``, default 10 s);
an input that raises anything but the one-line error, hangs or runs out of memory is a
failure, printed with its bytes and written to ``fuzz-failures/``. Prints, per target, the
cases run, how many ended ok / in a clean error, the failures, the slowest input and the peak
RSS of the process. Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["hostile", "samples", "mutated", "legacy", "bytes", "policy", "manifest", "report",
           "strings"]


class InputTimeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise InputTimeout()


def worker(target: str, cases: int, seed: int, timeout: int, out_dir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    from tests import strategies as S

    tmp_root = Path(tempfile.mkdtemp(prefix="memgate-fuzz-"))
    run: Any
    strat: Any
    if target in ("hostile", "samples", "mutated", "legacy", "bytes"):
        strat = {"hostile": S.hostile_profile(), "samples": S.mutated_samples(),
                 "mutated": S.mutated_corpus(), "legacy": S.legacy_text(),
                 "bytes": st.binary(max_size=256)}[target]

        def run(data: bytes, tmp: Path) -> str:
            return S.decode_target(data)
    elif target == "policy":
        strat = S.policy_text()
        run = S.policy_target
    elif target == "strings":
        strat = S.mutated_strings()
        run = S.strings_target
    elif target == "report":
        valid = json.loads((ROOT / "tests/fixtures/reports/fail.json").read_text())
        strat = S.report_text(valid)
        run = S.report_target
    elif target == "manifest":
        from memgate.baseline.manifest import MANIFEST
        from memgate.baseline.store import Store

        b = Store(tmp_root / "valid").update(
            "api", [str(S.PROFILES / "seedleak-noleak-1.pb.gz")], reason="fuzz")
        manifest = json.loads((b.directory / MANIFEST).read_text())
        blob, sha = b.profiles[0].path.read_bytes(), b.profiles[0].sha256
        strat = S.manifest_text(manifest)

        def run(data: bytes, tmp: Path) -> str:
            return S.manifest_target(data, tmp, blob, sha)
    else:
        raise SystemExit(f"unknown target {target}")

    stats: dict[str, Any] = {"target": target, "cases": 0, "ok": 0, "error": 0,
                             "failures": 0, "max_seconds": 0.0, "slowest": ""}
    signal.signal(signal.SIGALRM, _alarm)

    @hseed(seed)
    @settings(max_examples=cases, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strat)
    def one(data: bytes) -> None:
        stats["cases"] += 1
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=tmp_root) as d:
            signal.alarm(timeout)
            try:
                stats[run(data, Path(d))] += 1
            except BaseException as e:
                signal.alarm(0)
                stats["failures"] += 1
                kind = "hang" if isinstance(e, InputTimeout) else type(e).__name__
                name = f"{target}-{stats['failures']}"
                out_dir.mkdir(exist_ok=True)
                (out_dir / f"{name}.bin").write_bytes(data)
                (out_dir / f"{name}.txt").write_text(traceback.format_exc())
                print(f"FAIL {target}: {kind}: {str(e)[:200]!r} (input {len(data)} bytes, "
                      f"saved as {out_dir / name}.bin)", file=sys.stderr, flush=True)
                if isinstance(e, KeyboardInterrupt):
                    raise
            finally:
                signal.alarm(0)
        elapsed = time.perf_counter() - t0
        if elapsed > stats["max_seconds"]:
            stats["max_seconds"] = elapsed
            stats["slowest"] = data[:60].hex()

    one()
    stats["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000, help="cases per target")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=10, help="seconds per input")
    ap.add_argument("--max-memory", type=int, default=4096, help="MiB of address space")
    ap.add_argument("--out", type=Path, default=ROOT / "fuzz-failures")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        limit = args.max_memory << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        print(json.dumps(worker(args.worker, args.cases, args.seed, args.timeout, args.out)))
        return 0

    rows = []
    failed = False
    for target in args.targets.split(","):
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", target, "--cases", str(args.cases),
             "--seed", str(args.seed), "--timeout", str(args.timeout),
             "--max-memory", str(args.max_memory), "--out", str(args.out)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT, check=False)
        wall = time.monotonic() - t0
        if proc.returncode != 0 or not proc.stdout.strip():
            failed = True
            print(f"{target}: worker died with status {proc.returncode} (out of memory?)")
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["wall_seconds"] = wall
        rows.append(row)
        failed |= row["failures"] > 0
        print(f"{target:<9} {row['cases']:>6} cases  {row['ok']:>6} ok  {row['error']:>6} "
              f"clean errors  {row['failures']:>3} failures  slowest {row['max_seconds']:.3f}s  "
              f"peak RSS {row['peak_rss_mib']:.0f} MiB  ({wall:.0f}s)", flush=True)
    total = sum(r["cases"] for r in rows)
    print(f"total: {total} cases, {sum(r['failures'] for r in rows)} failures, slowest input "
          f"{max((r['max_seconds'] for r in rows), default=0):.3f}s, peak RSS "
          f"{max((r['peak_rss_mib'] for r in rows), default=0):.0f} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
