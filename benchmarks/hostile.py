#!/usr/bin/env python3
"""Peak memory and wall time of memgate on each hostile input (docs/reliability.md).

    python benchmarks/hostile.py                      # every input, a markdown table
    python benchmarks/hostile.py gzip-bomb dev-zero   # some of them
    python benchmarks/hostile.py --tree ../old-checkout --timeout 60   # another checkout

Each input (tests/hostile_inputs.py: a string table of 39 million entries, a 1000 MiB
string, a gzip bomb, /dev/zero, a catastrophic drop_frames pattern, quadratic legacy text, a
policy regex bomb, a 200 MB policy, a JSON report of empty objects) is written to a fresh
temporary directory and read by one ``memgate`` process with the default limits; the table
has its exit code, wall time, peak RSS (the process's own ``ru_maxrss``) and the first line it
printed on stderr. ``--tree`` runs the memgate of another checkout (to measure what a fix
changed); a run that exceeds ``--timeout`` is reported as killed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import hostile_inputs as H  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*",
                    help=f"inputs to run (default all: {', '.join(H.HOSTILE)})")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the memgate checkout to run")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per input")
    args = ap.parse_args()
    names = args.names or list(H.HOSTILE)
    unknown = [n for n in names if n not in H.HOSTILE]
    if unknown:
        ap.error(f"unknown input(s): {', '.join(unknown)}")
    print("| input | what | exit | wall time | peak RSS | message |")
    print("|---|---|---:|---:|---:|---|")
    for name in names:
        what, build = H.HOSTILE[name]
        with tempfile.TemporaryDirectory(prefix="memgate-hostile-") as tmp:
            cmd = build(Path(tmp))
            try:
                m = H.measure(cmd, Path(tmp), timeout=args.timeout,
                              env={"PYTHONPATH": str(args.tree.resolve())})
            except subprocess.TimeoutExpired:
                print(f"| {name} | {what} | killed | > {args.timeout:.0f} s | | |", flush=True)
                continue
            first = (m.stderr.strip().splitlines() or [""])[0]
            first = first.replace(tmp + "/", "").replace("|", "\\|")
            if len(first) > 90:
                first = first[:87] + "..."
            print(f"| {name} | {what} | {m.returncode} | {m.seconds:.2f} s | "
                  f"{m.peak_mib:.0f} MiB | {first} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
