"""The optional C loops give exactly what the numpy code gives, on every real profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memgate import speedups
from memgate.errors import LimitError
from memgate.profile.decode import decode
from memgate.profile.limits import InputLimits
from memgate.profile.prescan import check_counts
from memgate.stats import sampling_variance
from memgate.table import aggregate
from tests.pbuild import make_profile

FIX = Path(__file__).parent / "fixtures"
PROFILES = sorted((FIX / "profiles").iterdir()) + sorted((FIX / "noise").glob("*-0[12].pb.gz"))

pytestmark = pytest.mark.skipif(speedups.module() is None,
                                reason="memgate._speedups is not built (no C compiler)")


def both(monkeypatch: pytest.MonkeyPatch, func, *args):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("MEMGATE_NO_SPEEDUPS", raising=False)
    fast = func(*args)
    monkeypatch.setenv("MEMGATE_NO_SPEEDUPS", "1")
    slow = func(*args)
    monkeypatch.delenv("MEMGATE_NO_SPEEDUPS")
    return fast, slow


@pytest.mark.parametrize("path", PROFILES, ids=[p.name for p in PROFILES])
def test_decode_and_aggregate_agree(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = path.read_bytes()
    fast, slow = both(monkeypatch, decode, data, path.name, InputLimits())
    for attr in ("values", "offsets", "locations"):
        assert np.array_equal(getattr(fast.samples, attr), getattr(slow.samples, attr)), attr
    assert fast.samples.num_labels.keys() == slow.samples.num_labels.keys()
    for key in fast.samples.num_labels:
        assert np.array_equal(fast.samples.num_labels[key], slow.samples.num_labels[key])
    assert fast.samples.num_label_units == slow.samples.num_label_units
    extra = sampling_variance(fast)
    for gran in ("functions", "lines"):
        ta, tb = both(monkeypatch, aggregate, fast, gran, extra)
        assert ta.names == tb.names
        assert np.array_equal(ta.flat, tb.flat) and np.array_equal(ta.cum, tb.cum)
        if extra is not None:
            assert ta.flat_extra is not None and tb.flat_extra is not None
            assert ta.cum_extra is not None and tb.cum_extra is not None
            assert np.allclose(ta.flat_extra, tb.flat_extra)
            assert np.allclose(ta.cum_extra, tb.cum_extra)


def test_unusual_samples_fall_back_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fixed64 field in a sample (field 9, unknown to pprof) is legal protobuf: the C loop
    # skips unknown fields too, and a wrong value count makes it hand over to numpy, whose
    # error names the sample.
    from memgate.profile import profile_pb2

    p = make_profile()
    head = profile_pb2.Profile()
    head.CopyFrom(p)
    del head.sample[:]
    extra_field = b"\x49" + (12345).to_bytes(8, "little")  # field 9, fixed64
    body = b"".join(b"\x12" + bytes([len(s.SerializeToString()) + 9]) + s.SerializeToString()
                    + extra_field for s in p.sample)
    fast, slow = both(monkeypatch, decode, head.SerializeToString() + body, "p", InputLimits())
    assert np.array_equal(fast.samples.values, slow.samples.values)
    assert fast.samples.values.tolist() == [list(s.value) for s in p.sample]
    p.sample[1].value.append(9)
    with pytest.raises(Exception, match="sample 1 has 3 values"):
        decode(p.SerializeToString(), "bad", InputLimits())


def test_recursion_counts_cum_once(monkeypatch: pytest.MonkeyPatch) -> None:
    p = make_profile(stacks=[(("f", "g", "f", "g", "main"), (1, 100)),
                             (("g", "main"), (1, 10))])
    prof = decode(p.SerializeToString(), "rec", InputLimits())
    fast, slow = both(monkeypatch, aggregate, prof, "functions")
    rows = {n: (int(fast.flat[i, 1]), int(fast.cum[i, 1])) for i, n in enumerate(fast.names)}
    assert rows == {"f": (100, 100), "g": (10, 110), "main": (0, 110)}
    assert np.array_equal(fast.cum, slow.cum)


def _count_outcome(data: bytes, limits: InputLimits) -> str | None:
    try:
        check_counts(data, "x", limits)
    except LimitError as e:
        return str(e)
    return None


def test_pre_parse_count_walk_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """The element-count walk before parsing (C when built, Python otherwise) stops at the same
    limit with the same message, and stays silent on garbage, on both paths."""
    real = (FIX / "profiles" / "seedleak-leak-1.pb.gz").read_bytes()
    import gzip

    real = gzip.decompress(real)
    rng = np.random.default_rng(7)
    # Records of random top-level fields: tiny elements that stress every counter.
    mixed = b"".join(bytes([(int(f) << 3) | 2, 0]) for f in rng.integers(1, 16, 300_000))
    cases = [
        (b"\x22\x00" * 200_000, InputLimits(max_locations=1000)),
        (b"\x12\x00" * 200_000, InputLimits(max_samples=1000)),
        (b"\x1a\x00" * 200_000, InputLimits(max_locations=1000)),
        (b"\x2a\x00" * 200_000, InputLimits(max_locations=1000)),
        (b"\x32\x00" * 200_000, InputLimits(max_samples=10_000, max_locations=10_000)),
        (mixed, InputLimits(max_samples=20_000, max_locations=20_000)),
        (mixed, InputLimits(max_samples=200_000, max_locations=200_000)),
        (real, InputLimits(max_samples=10, max_locations=10_000)),
        (real, InputLimits(max_samples=10_000, max_locations=10)),
        (real, InputLimits(max_samples=100, max_locations=100)),
        (b"\x80" * 100_000, InputLimits(max_samples=10, max_locations=10)),
        (b"\x08" + b"\xff" * 100_000, InputLimits(max_samples=10, max_locations=10)),
        (b"\x0f" * 100_000, InputLimits(max_samples=10, max_locations=10)),
        (b"\x12\x03abc" * 50_000, InputLimits(max_samples=10, max_locations=10)),
        (b"\x12\x03abc" * 50_000 + b"\x12\x09", InputLimits(max_samples=10**6, max_locations=10)),
        # a key of more than 64 bits (the 10th byte above 1): malformed for both walks
        ((bytes([0x92] + [0x80] * 8 + [0x02]) + b"\0") * 100_000,
         InputLimits(max_samples=3, max_locations=3)),
        # limits beyond C's long long: no limit, no OverflowError
        (mixed, InputLimits(max_samples=10**20, max_locations=10**20)),
    ]
    outcomes = []
    for data, limits in cases:
        fast, slow = both(monkeypatch, _count_outcome, data, limits)
        assert fast == slow, (data[:8], limits)
        outcomes.append(fast)
    # The cases do reach each limit (and the garbage ones stay silent).
    assert "more than 1000 locations" in (outcomes[0] or "")
    assert "more than 1000 samples" in (outcomes[1] or "")
    assert "more than 1000 mappings" in (outcomes[2] or "")
    assert "more than 1000 functions" in (outcomes[3] or "")
    assert "top-level fields besides samples" in (outcomes[4] or "")
    assert outcomes[5] is not None and outcomes[6] is None
    assert "more than 10 samples" in (outcomes[7] or "")
    assert "more than 10 " in (outcomes[8] or "")
    assert outcomes[10:13] == [None, None, None]
    assert "more than 10 samples" in (outcomes[13] or "")
    assert outcomes[14] is None  # a last field running past the end: the parser reports it
    assert outcomes[15] is None and outcomes[16] is None
