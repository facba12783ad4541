"""The sampling-noise model, checked by simulation, and the gate's error rates on real Go runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from memgate.profile.builder import ProfileBuilder
from memgate.stats import mann_whitney_p, normal_quantile, normal_sf, sampling_variance
from tests import clirun

RATE = 524288
NOISE = Path(__file__).parent / "fixtures" / "noise"


def go_scale(count: np.ndarray, size: float, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """runtime/pprof scaleHeapSample: the unsampled (count, bytes) Go writes."""
    scale = 1.0 / (1.0 - math.exp(-size / rate))
    return np.floor(count * scale), np.floor(count * size * scale)


def profile_of(counts: list[int], sizes: list[float], period: int = RATE):  # type: ignore[no-untyped-def]
    b = ProfileBuilder([("alloc_objects", "count"), ("alloc_space", "bytes"),
                        ("inuse_objects", "count"), ("inuse_space", "bytes")],
                       period_type=("space", "bytes"), period=period)
    for i, (k, s) in enumerate(zip(counts, sizes)):
        n, byt = go_scale(np.array([k]), s, period) if period > 1 else (np.array([k]),
                                                                        np.array([k * s]))
        loc = b.location(0, [(f"f{i}", "f.go", 1)])
        b.add_sample([int(n[0]), int(byt[0]), int(n[0]), int(byt[0])], [loc],
                     {"bytes": int(s)})
    return b.build()


@pytest.mark.parametrize("size", [64.0, 4096.0, 65536.0, 2_000_000.0])
def test_variance_model_matches_simulated_sampling(size: float) -> None:
    """Simulate Go's Poisson byte sampling; the model's variance must match the spread."""
    rng = np.random.default_rng(42)
    n_true = 200_000 if size < 100_000 else 2_000
    p = 1 - math.exp(-size / RATE)
    k = rng.binomial(n_true, p, size=4000)
    est_n, est_b = go_scale(k, size, RATE)
    # The estimator is (nearly) unbiased...
    assert est_n.mean() == pytest.approx(n_true, rel=0.03)
    # ...and the plug-in variance computed from each observed profile matches the spread.
    predicted_n = []
    predicted_b = []
    for kk in k[:300]:
        prof = profile_of([int(kk)], [size])
        var = sampling_variance(prof)
        assert var is not None
        predicted_n.append(var[0, 0])
        predicted_b.append(var[0, 1])
    assert np.mean(predicted_n) == pytest.approx(est_n.var(), rel=0.12)
    assert np.mean(predicted_b) == pytest.approx(est_b.var(), rel=0.12)


def test_unsampled_profiles_have_no_sampling_error() -> None:
    prof = profile_of([10, 20], [64.0, 128.0], period=1)
    var = sampling_variance(prof)
    assert var is not None and not var.any()


def test_cpu_profiles_have_no_byte_sampling_model() -> None:
    b = ProfileBuilder([("samples", "count"), ("cpu", "nanoseconds")],
                       period_type=("cpu", "nanoseconds"), period=10_000_000)
    b.add_sample([1, 10_000_000], [b.location(0, [("f", "f.go", 1)])])
    assert sampling_variance(b.build()) is None


def test_variances_add_up_like_values_through_aggregation() -> None:
    from memgate.compare import aggregate_run

    prof = profile_of([5, 7, 9], [64.0, 64.0, 1024.0])
    table = aggregate_run(prof)
    var = sampling_variance(prof)
    assert var is not None and table.flat_extra is not None
    assert table.flat_extra.sum(axis=0) == pytest.approx(var.sum(axis=0))


def test_normal_helpers() -> None:
    assert normal_quantile(0.995) == pytest.approx(2.5758293, abs=1e-6)
    assert normal_quantile(0.5) == pytest.approx(0.0, abs=1e-9)
    assert normal_sf(1.6448536) == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize(("xs", "ys", "p"), [
    ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 1 / 252),
    ([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], 1.0),
    ([1, 2, 3], [4, 5, 6], 1 / 20),
    ([1, 3], [2, 4], 2 / 6),
])
def test_mann_whitney_exact(xs: list[float], ys: list[float], p: float) -> None:
    assert mann_whitney_p(xs, ys) == pytest.approx(p)


needs_noise = pytest.mark.skipif(not (NOISE / "leak-20.pb.gz").exists(),
                                 reason="noise fixtures missing: run tests/gen/noise.sh")


@pytest.mark.slow
@needs_noise
def test_no_false_alarms_and_leaks_detected_on_real_go_runs() -> None:
    """Acceptance: 20 no-leak pairs never fail; the 1% leak is caught in at least 19 of 20."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from noise_rates import rates

    false_alarm, detection = rates()
    failed = [(p.base, p.cand, [f.message for f in p.result.findings if f.severity == "fail"])
              for p in false_alarm if p.failed]
    assert failed == []
    detected = [p for p in detection if p.failed and p.names_decoder()]
    assert len(detected) >= 19, [(p.cand, p.result.verdict) for p in detection]
    # The in-use types are the ones that show the retention.
    types = {f.sample_type for p in detected for f in p.result.findings
             if f.function == "encoding/json.(*decodeState).literalStore"}
    assert types & {"inuse_space", "inuse_objects"}
    # The leak signature: literalStore's retention is leak-shaped; nothing is without a leak.
    assert [p.cand for p in false_alarm if p.leak_shaped] == []
    assert sum("encoding/json.(*decodeState).literalStore" in p.leak_shaped
               for p in detection) >= 19


@needs_noise
def test_six_no_leak_runs_against_six_do_not_fail() -> None:
    """With 6 runs a side, the run-to-run spread and the sampling model both speak."""
    import json

    noise = Path(__file__).resolve().parent / "fixtures" / "noise"
    base = [a for i in range(1, 7) for a in ("--baseline", str(noise / f"noleak-{i:02d}.pb.gz"))]
    cand = [str(noise / f"noleak-{i:02d}.pb.gz") for i in range(21, 27)]
    r = clirun.run(["check", *base, "--duration", "15s", *cand, "--format", "json"])
    rep = json.loads(r.stdout)
    # No-leak runs against no-leak runs: nothing fails (the rank tests of every crossing, with
    # flat and cum tested, cannot reach the family's level with 6 runs; the model decides).
    assert r.returncode == 0, r.stderr
    assert rep["verdict"] in ("pass", "warn") and rep["summary"]["fail"] == 0
