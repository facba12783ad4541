"""``memgate diff BASE NEW --output diff.pb.gz`` against ``go tool pprof -diff_base``.

The goldens in tests/fixtures/diffprofile/ are pprof's own output (tests/gen/diff_goldens.sh):
``diffbase.<i>.txt`` is ``go tool pprof -top -diff_base=BASE NEW``. No Go is needed here.

1. ``go tool pprof -top`` of the diff profile memgate wrote is that same text, headers
   included: the diff profile carries pprof's own ``pprof::base=true`` label on the negated
   base samples, so pprof takes its total (and so every percentage) from the base samples
   only, exactly as it does for ``-diff_base``. diff_goldens.sh compares the two outputs
   byte for byte and refuses to write goldens when they differ, so one copy is kept.
2. memgate's own ``top`` of a freshly written diff profile has the same rows (names, flat and
   cum in the same order). Its percentages differ: memgate's total is the sum of |value| over
   all samples (pprof's rule without the label), so only the absolute columns are compared.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from memgate.cli import main
from memgate.profile import profile_pb2
from memgate.profile.decode import decode
from memgate.profile.encode import BASE_LABEL, diff_profile, encode_gzip
from memgate.profile.limits import InputLimits
from memgate.report.top import build_top, render_text
from memgate.table import aggregate
from tests.pbuild import gz, make_profile

ROOT = Path(__file__).parent.parent
GOLDEN = ROOT / "tests" / "fixtures" / "diffprofile"
HEADER = "      flat  flat%   sum%        cum   cum%\n"
_INLINE = re.compile(r" \((?:partial-)?inline\)$")
PAIRS = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def _rows(text: str) -> list[tuple[str, str, str]]:
    """(flat, cum, name) of every row; pprof's " (inline)" markers dropped."""
    _, sep, body = text.partition(HEADER)
    assert sep, "no row header"
    out = []
    for line in body.splitlines():
        parts = line.split()
        name = line[line.index(parts[5]):] if len(parts) > 5 else ""
        out.append((parts[0], parts[3], _INLINE.sub("", name)))
    return out


def _indices(pair: str) -> list[int]:
    return sorted(int(p.name.split(".")[1]) for p in (GOLDEN / pair).glob("diffbase.*.txt"))


def test_goldens_present() -> None:
    assert {"seedleak", "noise-leak", "loki-delta"} <= set(PAIRS)
    for pair in PAIRS:
        assert _indices(pair) == [0, 1, 2, 3]


@pytest.mark.parametrize("pair", PAIRS)
def test_pprof_sees_diff_profile_as_diff_base(pair: str) -> None:
    """pprof's view of the diff profile was byte-identical to ``-diff_base`` when the goldens
    were made (diff_goldens.sh checks it, headers included); here: that golden has rows and
    no second copy is kept."""
    for i in _indices(pair):
        base = (GOLDEN / pair / f"diffbase.{i}.txt").read_text("utf-8", "backslashreplace")
        assert len(_rows(base)) > 5
        assert not (GOLDEN / pair / f"diffprofile.{i}.txt").exists()


@pytest.mark.parametrize("pair", PAIRS)
def test_memgate_top_of_written_diff_profile(pair: str, tmp_path: Path) -> None:
    base, new = (GOLDEN / pair / "pair.txt").read_text().split()
    out = tmp_path / "diff.pb.gz"
    res = CliRunner().invoke(main, ["diff", str(ROOT / base), str(ROOT / new), "--output",
                                    str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    prof = decode(out.read_bytes(), str(out), InputLimits())
    table = aggregate(prof, "functions")
    for i in _indices(pair):
        unit = "B" if prof.sample_types[i].unit == "bytes" else "minimum"
        text = render_text(build_top(prof, table, i), unit)
        golden = (GOLDEN / pair / f"diffbase.{i}.txt").read_text("utf-8", "backslashreplace")
        assert _rows(text) == _rows(golden), (pair, i)


def test_diff_profile_structure() -> None:
    base = decode(gz(make_profile(
        stacks=((("leaf", "main"), (1, 100)), (("gone", "main"), (2, 50))),
        time_nanos=2_000, duration_nanos=10,
    ).SerializeToString()), "base", InputLimits())
    new = decode(gz(make_profile(
        stacks=((("leaf", "main"), (3, 300)), (("leaf", "main"), (0, 0)),
                (("fresh", "main"), (1, 8))),
        time_nanos=1_000, duration_nanos=5,
    ).SerializeToString()), "new", InputLimits())
    data = encode_gzip(diff_profile(base, new))
    msg = profile_pb2.Profile()
    msg.ParseFromString(gzip.decompress(data))
    strings = [s.decode() for s in msg.string_table]
    assert strings[0] == ""
    # combineHeaders: earliest time, summed durations.
    assert msg.time_nanos == 1_000 and msg.duration_nanos == 15
    # The all-zero sample of NEW is dropped; BASE's two samples are negated and labelled.
    assert len(msg.sample) == 4
    labelled = [s for s in msg.sample
                if any(strings[lb.key] == BASE_LABEL[0] and strings[lb.str] == BASE_LABEL[1]
                       for lb in s.label)]
    assert sorted(tuple(s.value) for s in labelled) == [(-2, -50), (-1, -100)]
    prof = decode(data, "diff", InputLimits())
    t = aggregate(prof, "functions")
    flat = dict(zip(t.names, t.flat[:, 1].tolist()))
    assert flat == {"leaf": 200, "gone": -50, "fresh": 8, "main": 0}
    cum = dict(zip(t.names, t.cum[:, 1].tolist()))
    assert cum["main"] == 158
    assert np.array_equal(prof.samples.values.sum(axis=0), [1, 158])


def test_output_refuses_incompatible_profiles(tmp_path: Path) -> None:
    a = tmp_path / "a.pb.gz"
    b = tmp_path / "b.pb.gz"
    a.write_bytes(gz(make_profile().SerializeToString()))
    b.write_bytes(gz(make_profile(sample_types=(("alloc_space", "bytes"),),
                                  stacks=((("x",), (1,)),)).SerializeToString()))
    res = CliRunner().invoke(main, ["diff", str(a), str(b), "--output", str(tmp_path / "d")])
    assert res.exit_code == 3
    assert "incompatible" in res.output or "cannot diff" in res.output
    assert not (tmp_path / "d").exists()
