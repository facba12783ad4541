"""The verdict scenario suite: how often memgate's gate is right on real Go runs.

Reads the profiles of ``tests/gen/scenarios.sh`` (``tests/fixtures/scenarios/``: a service-like
Go program with a bounded cache of decoded JSON and 24 MiB of long-lived buffers, see
``tests/gen/scenarios/main.go``) and gates them with the built-in policy, as a new user would:

* no change: a candidate against 1, 2 and 3 other runs of the same build, at two workload
  sizes, 30 comparisons each (180), with nominal durations and with each run's real wall-clock
  time (which varied by up to 1.5x on a shared 2-core runner);
* leaks retaining 0.2-5% of the payloads, in one place (literalStore) or spread over the
  interface{} decoding frames, each run against two baseline runs;
* the optimization (a pooled read buffer), a pure churn increase, the same build time-paced for
  15 s and for 60 s, and the same work on a runner 1.7x slower (wall-clock durations).

``python scripts/scenarios.py`` prints the table that docs/noise.md shows;
``tests/test_scenarios.py`` asserts the acceptance criteria on the same data.
"""

from __future__ import annotations

import csv
import random
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from memgate.compare import RunInput, compare  # noqa: E402
from memgate.gate import GateResult, critical_value, evaluate, growth_floor  # noqa: E402
from memgate.policy import default_policy  # noqa: E402
from memgate.profile.decode import decode  # noqa: E402
from memgate.profile.limits import InputLimits  # noqa: E402
from memgate.profile.model import Profile  # noqa: E402

SCENARIOS = ROOT / "tests" / "fixtures" / "scenarios"
MiB = 1024 * 1024
JSON = "encoding/json.Unmarshal"
#: Nominal durations a CI user would configure for the fixed-work runs (about their wall time).
NOMINAL = {"60k": 12.0, "120k": 24.0}


@dataclass(frozen=True)
class Outcome:
    scenario: str
    verdict: str
    #: The first failing finding's function, and the sample types that failed.
    first: str | None
    failed_types: tuple[str, ...]
    #: In-use growth of the candidate's total over the baseline's mean (bytes).
    inuse_growth: float
    #: The stated floor for a new in-use growth in one function (bytes), if any.
    floor: float | None
    #: The floor for in-use growth under encoding/json.Unmarshal, where every leak of the
    #: suite lands (its cum holds the cache's decoded payloads too).
    json_floor: float | None
    #: For a leak: the function where it is most visible (the largest ratio of its in-use cum
    #: growth to the floor stated for that function), that growth and that floor.
    carrier: str | None
    carrier_growth: float | None
    carrier_floor: float | None
    result: GateResult


@cache
def _profile(name: str) -> Profile:
    path = SCENARIOS / f"{name}.pb.gz"
    return decode(path.read_bytes(), source=str(path), limits=InputLimits())


@cache
def walls() -> dict[str, float]:
    with (SCENARIOS / "runs.tsv").open() as fh:
        rows = csv.DictReader(fh, delimiter="\t")
        return {row["name"]: float(row["wall_seconds"]) for row in rows}


def _run(name: str, duration: float) -> RunInput:
    return RunInput(path=name, sha256=name, duration_seconds=duration, duration_source="test",
                    profile=_profile(name))


def gate(scenario: str, base: Sequence[str], cand: str,
         durations: dict[str, float] | float, leak: bool = False) -> Outcome:
    def dur(n: str) -> float:
        return durations if isinstance(durations, float) else durations[n]

    comparison = compare([_run(b, dur(b)) for b in base], [_run(cand, dur(cand))])
    result = evaluate(comparison, default_policy())
    fails = [f for f in result.findings if f.severity == "fail"]
    named = [f for f in fails if f.function != "<total>"]
    t = next(i for i, st in enumerate(comparison.sample_types) if st.type == "inuse_space")
    growth = float(comparison.candidate.total[t] - comparison.baseline.total[t])
    floor = next((fl.new_function for fl in result.floors if fl.sample_type == "inuse_space"),
                 None)
    crit = critical_value(comparison, default_policy().defaults.confidence)
    json_floor = None
    if JSON in comparison.names:
        json_floor = growth_floor(comparison, comparison.names.index(JSON), t, "cum", crit)
    carrier = c_growth = c_floor = None
    if leak:
        grew = comparison.candidate.cum[:, t] - comparison.baseline.cum[:, t]
        best = 0.0
        for i in np.argsort(-grew)[:30].tolist():
            floor_i = growth_floor(comparison, i, t, "cum", crit)
            if grew[i] > 0 and floor_i and grew[i] / floor_i > best:
                best = float(grew[i] / floor_i)
                carrier, c_growth, c_floor = comparison.names[i], float(grew[i]), floor_i
    return Outcome(scenario, result.verdict, named[0].function if named else None,
                   tuple(sorted({f.sample_type for f in fails})), growth, floor, json_floor,
                   carrier, c_growth, c_floor, result)


def _names(prefix: str) -> list[str]:
    return sorted(p.name.removesuffix(".pb.gz") for p in SCENARIOS.glob(f"{prefix}*.pb.gz"))


def no_change(wall: bool) -> Iterator[Outcome]:
    """180 comparisons: 2 sizes x candidate vs 1, 2, 3 baseline runs x 30."""
    for size in ("60k", "120k"):
        runs = _names(f"noop-{size}-")
        for k in (1, 2, 3):
            rng = random.Random(f"{size}-{k}")
            for j in range(30):
                cand = runs[j % len(runs)]
                base = rng.sample([r for r in runs if r != cand], k)
                durations: dict[str, float] | float = walls() if wall else NOMINAL[size]
                yield gate(f"no-change {size} k={k}", base, cand, durations)


def leaks() -> Iterator[Outcome]:
    """Every leak run against two baseline runs (nominal durations)."""
    base = _names("noop-120k-")
    for name in _names("leak-"):
        shape, frac = name.split("-")[1:3]
        i = int(name.rsplit("-", 1)[1])
        pair = [base[(2 * i) % len(base)], base[(2 * i + 1) % len(base)]]
        yield gate(f"leak {shape} {frac}%", pair, name, NOMINAL["120k"], leak=True)


def variants() -> Iterator[Outcome]:
    base = _names("noop-120k-")
    for variant in ("pooled", "churn"):
        for i, name in enumerate(_names(f"{variant}-")):
            yield gate(variant, [base[2 * i % 12], base[(2 * i + 1) % 12]], name,
                       NOMINAL["120k"])
    for i, name in enumerate(_names("slow-")):
        if name not in walls():
            continue
        yield gate("slow runner (wall-clock)", [base[2 * i % 12], base[(2 * i + 1) % 12]],
                   name, walls())
    short, long_ = _names("paced-15s-"), _names("paced-60s-")
    for s in short:
        for lo in long_:
            yield gate("15 s vs 60 s (time-paced)", [lo], s, walls())
            yield gate("60 s vs 15 s (time-paced)", [s], lo, walls())


def table(outcomes: Sequence[Outcome]) -> list[str]:
    rows = ["| scenario | runs | failed | failed on | first failing function | in-use growth "
            "| where most visible: growth / stated floor | floor: new function |",
            "|:---|---:|---:|:---|:---|---:|---:|---:|"]
    by: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by.setdefault(o.scenario, []).append(o)
    for name, group in by.items():
        failed = [o for o in group if o.verdict == "fail"]
        firsts = sorted({o.first or "<total>" for o in failed})
        first = ", ".join(f.replace("encoding/json.(*decodeState).", "json.") for f in firsts[:2])
        floors = [o.floor for o in group if o.floor is not None]
        carried = [(o.carrier_growth, o.carrier_floor) for o in group
                   if o.carrier_growth is not None and o.carrier_floor is not None]
        lands = "-"
        if carried:
            ratio = statistics.mean(g / f for g, f in carried)
            lands = (f"{statistics.mean(g for g, _ in carried) / MiB:+.1f} / "
                     f"{statistics.mean(f for _, f in carried) / MiB:.1f} MiB ({ratio:.2f}x)")
        types = sorted({t for o in failed for t in o.failed_types})
        rows.append(
            f"| {name} | {len(group)} | {len(failed)} | {', '.join(types) or '-'} | "
            f"{first or '-'} | {statistics.mean(o.inuse_growth for o in group) / MiB:+.1f} MiB | "
            f"{lands} | {statistics.mean(floors) / MiB if floors else 0:.1f} MiB |")
    return rows


def main() -> None:
    outcomes = [*no_change(False)]
    nominal = sum(o.verdict == "fail" for o in outcomes)
    wall = [*no_change(True)]
    print(f"no change, nominal durations:   {nominal}/{len(outcomes)} failed")
    print(f"no change, wall-clock durations: {sum(o.verdict == 'fail' for o in wall)}/{len(wall)}"
          " failed")
    print()
    print("\n".join(table([*leaks(), *variants()])))


if __name__ == "__main__":
    main()
