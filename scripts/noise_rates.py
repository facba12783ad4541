#!/usr/bin/env python3
"""False-alarm and detection rates of the gate on real Go runs (tests/fixtures/noise/).

The fixtures are independent runs of one workload (tests/gen/noise.sh): 40 without the leak,
20 retaining 1% of the decoded JSON payloads. Pairs:

* false alarms: noleak-(2i-1) as baseline vs noleak-(2i) as candidate, i = 1..20;
* detection:    noleak-(2i-1) as baseline vs leak-i as candidate, i = 1..20.

Each pair is gated with the built-in default policy (or --policy). A false alarm is a failing
gate on a no-leak pair; a detection is a failing gate on a leak pair whose failing findings name
an ``encoding/json.(*decodeState)`` function. Run: ``python scripts/noise_rates.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memgate.compare import RunInput, compare  # noqa: E402
from memgate.gate import GateResult, evaluate  # noqa: E402
from memgate.policy import Policy, default_policy, load_policy  # noqa: E402
from memgate.profile.decode import decode  # noqa: E402
from memgate.profile.limits import InputLimits  # noqa: E402
from memgate.report.build import build_report  # noqa: E402

NOISE = ROOT / "tests" / "fixtures" / "noise"
#: The workload runs about 15 s; both sides use the same duration, so only the rate's scale
#: depends on it, and the default policy's absolute limits are per minute.
DURATION = 15.0
PAIRS = 20


LITERAL_STORE = "encoding/json.(*decodeState).literalStore"


@dataclass(frozen=True)
class PairResult:
    base: str
    cand: str
    result: GateResult
    #: Functions the report marks leak-shaped (docs/noise.md, "Leak signature").
    leak_shaped: frozenset[str] = frozenset()

    @property
    def failed(self) -> bool:
        return self.result.verdict == "fail"

    def names_decoder(self) -> bool:
        return any(f.function.startswith("encoding/json.(*decodeState)")
                   for f in self.result.findings if f.severity == "fail")


def run(path: Path) -> RunInput:
    data = path.read_bytes()
    return RunInput(path=str(path), sha256=hashlib.sha256(data).hexdigest(),
                    duration_seconds=DURATION, duration_source="--duration",
                    profile=decode(data, str(path), InputLimits()))


def gate_pair(base: Path, cand: Path, policy: Policy) -> PairResult:
    comparison = compare([run(base)], [run(cand)])
    result = evaluate(comparison, policy)
    report = build_report(comparison, result, component=None, policy=policy)
    shaped = frozenset(f["name"] for f in report["functions"] if f.get("leak_shaped"))
    return PairResult(base.name, cand.name, result, shaped)


def rates(policy: Policy | None = None, directory: Path = NOISE
          ) -> tuple[list[PairResult], list[PairResult]]:
    policy = policy or default_policy()
    false_alarm = [gate_pair(directory / f"noleak-{2 * i - 1:02d}.pb.gz",
                             directory / f"noleak-{2 * i:02d}.pb.gz", policy)
                   for i in range(1, PAIRS + 1)]
    detection = [gate_pair(directory / f"noleak-{2 * i - 1:02d}.pb.gz",
                           directory / f"leak-{i:02d}.pb.gz", policy)
                 for i in range(1, PAIRS + 1)]
    return false_alarm, detection


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", help="policy file (default: the built-in policy)")
    ap.add_argument("--verbose", "-v", action="store_true", help="list every pair")
    args = ap.parse_args()
    policy = load_policy(args.policy) if args.policy else default_policy()
    fa, det = rates(policy)
    n_fa = sum(p.failed for p in fa)
    n_det = sum(p.failed and p.names_decoder() for p in det)
    if args.verbose:
        for p in [*fa, *det]:
            names = sorted({f"{f.function} {f.sample_type}" for f in p.result.findings
                            if f.severity == "fail"})
            print(f"{p.base} -> {p.cand}: {p.result.verdict}"
                  f"{' (' + '; '.join(names) + ')' if names else ''}")
    print(f"false alarms: {n_fa}/{len(fa)} no-leak pairs failed the gate "
          f"({n_fa / len(fa):.0%})")
    print(f"detection:    {n_det}/{len(det)} leak pairs failed naming encoding/json "
          f"decodeState functions ({n_det / len(det):.0%})")
    noise = sum(len(p.result.within_noise) for p in fa)
    print(f"crossings shown as ~ (within noise) on no-leak pairs: {noise} in {len(fa)} pairs")
    n_shaped = sum(LITERAL_STORE in p.leak_shaped for p in det)
    n_fa_shaped = sum(bool(p.leak_shaped) for p in fa)
    print(f"leak-shaped:  literalStore in {n_shaped}/{len(det)} leak pairs; any function in "
          f"{n_fa_shaped}/{len(fa)} no-leak pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
