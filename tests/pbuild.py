"""Build pprof protobuf messages for tests (valid ones, and deliberately broken ones)."""

from __future__ import annotations

import gzip
from collections.abc import Sequence

from memgate.profile import profile_pb2


def make_profile(
    stacks: Sequence[tuple[Sequence[str], Sequence[int]]] = (
        (("leaf", "mid", "main"), (1, 512)),
        (("other", "main"), (2, 1024)),
    ),
    sample_types: Sequence[tuple[str, str]] = (("inuse_objects", "count"),
                                               ("inuse_space", "bytes")),
    *,
    duration_nanos: int = 0,
    time_nanos: int = 1_700_000_000_000_000_000,
    period: int = 524288,
) -> profile_pb2.Profile:
    """A small valid profile: each stack is (function names leaf first, values)."""
    p = profile_pb2.Profile()
    strings: dict[str, int] = {"": 0}

    def s(text: str) -> int:
        if text not in strings:
            strings[text] = len(strings)
        return strings[text]

    for t, u in sample_types:
        st = p.sample_type.add()
        st.type = s(t)
        st.unit = s(u)
    p.period_type.type = s("space")
    p.period_type.unit = s("bytes")
    p.period = period
    p.time_nanos = time_nanos
    p.duration_nanos = duration_nanos
    funcs: dict[str, int] = {}
    for names, values in stacks:
        sample = p.sample.add()
        for name in names:
            if name not in funcs:
                fid = len(funcs) + 1
                funcs[name] = fid
                f = p.function.add()
                f.id = fid
                f.name = s(name)
                f.system_name = s(name)
                f.filename = s(f"{name}.go")
                loc = p.location.add()
                loc.id = fid
                loc.address = 0x1000 + fid
                ln = loc.line.add()
                ln.function_id = fid
                ln.line = 10 + fid
            sample.location_id.append(funcs[name])
        sample.value.extend(values)
    table = [""] * len(strings)
    for text, i in strings.items():
        table[i] = text
    p.string_table.extend(t.encode() for t in table)
    return p


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)
