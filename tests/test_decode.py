"""Decoding: encodings sniffed by content, validation like pprof's CheckValid, bad input."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from memgate.errors import EXIT_ERROR, LimitError, ProfileError
from memgate.profile.decode import decode
from memgate.profile.limits import InputLimits
from memgate.table import aggregate
from tests import clirun
from tests.pbuild import gz, make_profile

PROFILES = Path(__file__).parent / "fixtures" / "profiles"
LOKI = PROFILES / "go-heap-loki.pb.gz"


def test_gzip_and_raw_protobuf_decode_the_same() -> None:
    raw = gzip.decompress(LOKI.read_bytes())
    a = decode(LOKI.read_bytes(), "a", InputLimits())
    b = decode(raw, "b", InputLimits())
    assert a.encoding == "gzip+protobuf" and b.encoding == "protobuf"
    assert np.array_equal(a.samples.values, b.samples.values)
    assert np.array_equal(a.samples.locations, b.samples.locations)
    assert a.sample_type_names() == ["alloc_objects", "alloc_space", "inuse_objects",
                                     "inuse_space"]
    # Go heap profiles carry the object size as the numeric label "bytes".
    assert (a.samples.num_labels["bytes"] > 0).all()
    assert a.samples.num_label_units["bytes"] == "bytes"


def test_sniffing_ignores_the_file_name(tmp_path: Path) -> None:
    misleading = tmp_path / "profile.txt"
    misleading.write_bytes(LOKI.read_bytes())
    out = clirun.run(["top", "-n", "1", misleading])
    assert out.returncode == 0, out.stderr
    assert "Type: alloc_space" in out.stdout


def test_unpacked_repeated_fields_decode_like_packed() -> None:
    """Some producers write location_id and value unpacked; pprof accepts both."""
    p = make_profile()
    packed = p.SerializeToString()
    # Re-encode samples by hand with unpacked fields (tag 0x08 / 0x10 per element).
    from google.protobuf.internal import encoder

    def varint(v: int) -> bytes:
        out: list[bytes] = []
        encoder._EncodeVarint(out.append, v & 0xFFFFFFFFFFFFFFFF)  # type: ignore[attr-defined]
        return b"".join(out)

    body = bytearray()
    for s in p.sample:
        inner = b"".join(b"\x08" + varint(x) for x in s.location_id)
        inner += b"".join(b"\x10" + varint(x) for x in s.value)
        body += b"\x12" + varint(len(inner)) + inner
    q = make_profile()
    del q.sample[:]
    unpacked = q.SerializeToString() + bytes(body)
    a = decode(packed, "packed", InputLimits())
    b = decode(unpacked, "unpacked", InputLimits())
    assert np.array_equal(a.samples.values, b.samples.values)
    assert np.array_equal(a.samples.offsets, b.samples.offsets)
    assert np.array_equal(a.samples.locations, b.samples.locations)


def test_negative_values_round_trip() -> None:
    p = make_profile(stacks=[(("f",), (-3, -1536)), (("g",), (1, 512))])
    prof = decode(p.SerializeToString(), "neg", InputLimits())
    assert prof.samples.values.tolist() == [[-3, -1536], [1, 512]]


def test_invalid_utf8_strings_are_accepted() -> None:
    prof = decode((PROFILES / "invalid-utf8.pb.gz").read_bytes(), "invalid-utf8", InputLimits())
    names = [f.name for f in prof.functions]
    assert any("\\xff" in n for n in names)  # escaped, not fatal


def _bad_string_index() -> bytes:
    p = make_profile()
    p.function[0].name = 999
    return p.SerializeToString()


def _wrong_value_count() -> bytes:
    p = make_profile()
    p.sample[1].value.append(7)
    return p.SerializeToString()


def _duplicate_location_ids() -> bytes:
    p = make_profile()
    p.location[1].id = p.location[0].id
    return p.SerializeToString()


def _duplicate_function_ids() -> bytes:
    p = make_profile()
    p.function[1].id = p.function[0].id
    return p.SerializeToString()


def _zero_location_id() -> bytes:
    p = make_profile()
    p.location[0].id = 0
    return p.SerializeToString()


def _unresolved_location() -> bytes:
    p = make_profile()
    p.sample[0].location_id.append(12345)
    return p.SerializeToString()


def _unresolved_function() -> bytes:
    p = make_profile()
    p.location[0].line[0].function_id = 777
    return p.SerializeToString()


def _bad_string_table() -> bytes:
    p = make_profile()
    p.string_table[0] = b"x"
    return p.SerializeToString()


def _concatenated() -> bytes:
    one = make_profile().SerializeToString()
    return one + one


def _no_sample_types() -> bytes:
    p = make_profile()
    del p.sample_type[:]
    for s in p.sample:
        del s.value[:]
    return p.SerializeToString()


def _truncated_protobuf() -> bytes:
    return make_profile().SerializeToString()[:-7]


def _truncated_gzip() -> bytes:
    data = LOKI.read_bytes()
    return data[: len(data) // 2]


def _corrupt_gzip() -> bytes:
    data = bytearray(LOKI.read_bytes())
    data[100:140] = b"\x00" * 40
    return bytes(data)


def _random_bytes() -> bytes:
    return np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()


def _bad_label_string() -> bytes:
    p = make_profile()
    lab = p.sample[0].label.add()
    lab.key = 4242
    lab.num = 5
    return p.SerializeToString()


MALFORMED = {
    "empty": (lambda: b"", "empty input"),
    "random bytes": (_random_bytes, "not a pprof profile"),
    "text that is no profile": (lambda: b"hello, world\n" * 10, "not a pprof profile"),
    "truncated gzip": (_truncated_gzip, "truncated gzip"),
    "corrupt gzip": (_corrupt_gzip, "gzip"),
    "truncated protobuf": (_truncated_protobuf, "not a pprof profile"),
    "bad string index": (_bad_string_index, "string index 999"),
    "bad label string index": (_bad_label_string, "string index 4242"),
    "wrong value count": (_wrong_value_count, "has 3 values but the profile has 2 sample types"),
    "duplicate location ids": (_duplicate_location_ids, "multiple locations with the same id"),
    "duplicate function ids": (_duplicate_function_ids, "multiple functions with the same id"),
    "zero location id": (_zero_location_id, "reserved id 0"),
    "unresolved location": (_unresolved_location, "location id 12345"),
    "unresolved function": (_unresolved_function, "unknown function id 777"),
    "string_table[0] not empty": (_bad_string_table, "string_table[0] must be ''"),
    "concatenated profiles": (_concatenated, "concatenated profiles"),
    "samples without sample types": (_no_sample_types, "missing sample type"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_a_one_line_error(case: str) -> None:
    make, expected = MALFORMED[case]
    with pytest.raises(ProfileError) as info:
        decode(make(), "bad.pb.gz", InputLimits())
    message = str(info.value)
    assert message.startswith("bad.pb.gz: ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize("case", ["empty", "truncated gzip", "wrong value count",
                                  "bad string index", "duplicate location ids"])
def test_malformed_input_through_the_cli_exits_3(tmp_path: Path, case: str) -> None:
    make, expected = MALFORMED[case]
    f = tmp_path / "bad.pb.gz"
    f.write_bytes(make())
    out = clirun.run(["top", f])
    assert out.returncode == EXIT_ERROR
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"memgate: {f}: ")
    assert expected in lines[0]
    assert "Traceback" not in out.stderr


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\x00" * (8 << 20))  # 8 MiB of zeros in ~8 KiB
    with pytest.raises(LimitError, match="exceeds the limit of 1048576 bytes"):
        decode(bomb, "bomb.gz", InputLimits(max_decompressed_bytes=1 << 20))


def test_gzip_bomb_limit_from_cli_and_env(tmp_path: Path) -> None:
    f = tmp_path / "bomb.gz"
    f.write_bytes(gzip.compress(b"\x00" * (4 << 20)))
    out = clirun.run(["top", "--max-decompressed", "1MiB", f])
    assert out.returncode == EXIT_ERROR
    assert "exceeds the limit of 1048576 bytes" in out.stderr
    env = dict(os.environ, MEMGATE_MAX_DECOMPRESSED_BYTES="2097152")
    out = clirun.run(["top", f], env=env)
    assert out.returncode == EXIT_ERROR
    assert "exceeds the limit of 2097152 bytes" in out.stderr


def test_default_limit_is_one_gib() -> None:
    assert InputLimits().max_decompressed_bytes == 1 << 30


def test_multi_member_gzip_is_read_like_go() -> None:
    data = make_profile().SerializeToString()
    half = len(data) // 2
    two = gzip.compress(data[:half]) + gzip.compress(data[half:])
    prof = decode(two, "two-members", InputLimits())
    assert len(prof.samples) == 2


def test_stdin_input() -> None:
    out = clirun.run(["top", "-", "--format", "json"],
                     input=gz(make_profile().SerializeToString()), text=False)
    assert out.returncode == 0, out.stderr
    assert b'"profile": "<stdin>"' in out.stdout


def test_missing_file_and_directory_errors(tmp_path: Path) -> None:
    for arg, msg in ((str(tmp_path / "nope.pb.gz"), "no such file"),
                     (str(tmp_path), "is a directory")):
        out = clirun.run(["top", arg])
        assert out.returncode == EXIT_ERROR
        assert out.stderr.strip() == f"memgate: {arg}: {msg}" or msg in out.stderr


def test_recursion_counts_cum_once_per_sample() -> None:
    p = make_profile(stacks=[(("f", "g", "f", "g", "main"), (1, 100)),
                             (("g", "main"), (1, 10))])
    table = aggregate(decode(p.SerializeToString(), "rec", InputLimits()), "functions")
    row = {n: (int(table.flat[i, 1]), int(table.cum[i, 1])) for i, n in enumerate(table.names)}
    assert row == {"f": (100, 100), "g": (10, 110), "main": (0, 110)}


def test_first_label_per_sample_matches_unique() -> None:
    """The linear first-label-per-sample shortcut equals np.unique, sorted input or not."""
    from memgate.profile.samples import _first_per_owner

    rng = np.random.default_rng(1)
    for owners in (np.zeros(0, dtype=np.int64), np.sort(rng.integers(0, 50, 1000)),
                   rng.integers(0, 50, 1000), np.array([3, 3, 3]), np.array([0])):
        got, want = _first_per_owner(owners), np.unique(owners, return_index=True)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
