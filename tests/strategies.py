"""Hypothesis strategies for hostile inputs, and the harness that runs one input in-process.

The profile generator writes the protobuf wire format by hand, so that it can produce what no
well-behaved encoder does: structurally valid profiles whose contents are wrong (ids out of
range or near 2^64, negative or huge string indices, duplicate ids, stacks that repeat a
location, samples with no locations or the wrong number of values, labels with wrong wire
types, unknown and fixed-width fields), declared lengths far beyond the data, truncations and
byte flips of real corpus profiles. :func:`run_target` runs one input through one target and
returns ``"ok"`` or ``"error"``; anything else (another exception, a message on several lines
or not naming its source) fails the test that calls it.

Used by ``tests/test_fuzz.py`` (a deterministic sample in the default suite) and
``scripts/fuzz.py`` (the long run).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "tests" / "fixtures" / "profiles"
U64 = (1 << 64) - 1

# ---------------------------------------------------------------------------------------------
# Wire format
# ---------------------------------------------------------------------------------------------


def varint(v: int) -> bytes:
    """Protobuf varint of ``v`` (negative values as 64-bit two's complement, like int64)."""
    v &= U64
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def f_varint(field: int, v: int) -> bytes:
    return tag(field, 0) + varint(v)


def f_bytes(field: int, payload: bytes, declared: int | None = None) -> bytes:
    """A length-delimited field; ``declared`` lies about the length."""
    n = len(payload) if declared is None else declared
    return tag(field, 2) + varint(n) + payload


def f_fixed64(field: int, v: int) -> bytes:
    return tag(field, 1) + (v & U64).to_bytes(8, "little")


def f_fixed32(field: int, v: int) -> bytes:
    return tag(field, 5) + (v & 0xFFFFFFFF).to_bytes(4, "little")


def packed(field: int, values: list[int]) -> bytes:
    return f_bytes(field, b"".join(varint(v) for v in values))


# ---------------------------------------------------------------------------------------------
# Strategies: numbers that break things
# ---------------------------------------------------------------------------------------------

EDGE_INTS = [0, 1, -1, 2, 127, 128, 255, 256, 1 << 31, (1 << 31) - 1, 1 << 32, 1 << 62,
             (1 << 63) - 1, -(1 << 63), 1 << 63, U64, U64 - 1]


def edge_ints() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(EDGE_INTS), st.integers(-(1 << 63), U64))


def _rare(draw: st.DrawFn, n: int) -> bool:
    """True about once in ``n`` draws (hypothesis favours small integers, so not ``== 0``)."""
    # Hypothesis favours small values and the ends of a range: mix the bits first.
    x = draw(st.integers(0, (1 << 32) - 1))
    return bool(((x * 2654435761 + 12345) >> 11) % n == 1)


@st.composite
def indices(draw: st.DrawFn, n: int) -> int:
    """A string (or other) index: usually valid, sometimes out of range or negative."""
    if _rare(draw, 60):
        return draw(st.sampled_from([n, n + 1, -1, -2, (1 << 63) - 1, -(1 << 63), 1 << 40]))
    return draw(st.integers(0, max(0, n - 1)))


@st.composite
def ids(draw: st.DrawFn, n: int) -> int:
    """An id that refers to 1..n: usually valid, sometimes 0, out of range or near 2^64."""
    if _rare(draw, 40):
        return draw(st.sampled_from([0, n + 1, 1 << 32, (1 << 63) - 1, 1 << 63, U64, U64 - 1]))
    return draw(st.integers(1, max(1, n)))


# ---------------------------------------------------------------------------------------------
# Structurally valid profiles with wrong contents
# ---------------------------------------------------------------------------------------------


@st.composite
def _sample(draw: st.DrawFn, n_locs: int, n_types: int, n_strings: int) -> bytes:
    parts: list[bytes] = []
    n_stack = draw(st.integers(0, 6))
    stack = [draw(ids(n_locs)) for _ in range(n_stack)]
    if stack and draw(st.booleans()):
        # A location repeated in its own stack: recursion, a "cycle" pprof accepts.
        stack += stack[: draw(st.integers(1, len(stack)))]
    n_vals = draw(st.one_of(st.just(n_types), st.just(n_types), st.integers(0, n_types + 2)))
    values = [draw(st.one_of(st.integers(-1000, 10**9), edge_ints())) for _ in range(n_vals)]
    if draw(st.booleans()):
        parts.append(packed(1, stack) if stack else b"")
        parts.append(packed(2, values) if values else b"")
    else:
        parts += [f_varint(1, x) for x in stack]
        parts += [f_varint(2, x) for x in values]
    for _ in range(draw(st.integers(0, 3))):
        label = bytearray()
        for fno in (1, 2, 3, 4):
            if draw(st.integers(0, 3)):
                kind = draw(st.integers(0, 9)) if _rare(draw, 40) else 9
                v = draw(indices(n_strings)) if fno != 3 else draw(edge_ints())
                if kind == 0:
                    label += f_fixed64(fno, v)
                elif kind == 1:
                    label += f_bytes(fno, varint(v))
                elif kind == 2:
                    label += f_fixed32(fno, v)
                else:
                    label += f_varint(fno, v)
        if _rare(draw, 150):
            parts.append(f_varint(3, len(label)))  # a label that is not a message
        else:
            parts.append(f_bytes(3, bytes(label)))
    junk = draw(st.integers(0, 6)) if _rare(draw, 25) else 7
    if junk == 0:
        parts.append(f_fixed64(draw(st.integers(1, 20)), draw(edge_ints())))
    elif junk == 1:
        parts.append(f_fixed32(draw(st.integers(1, 20)), draw(edge_ints())))
    elif junk == 2:
        parts.append(f_bytes(draw(st.integers(4, 20)), draw(st.binary(max_size=8))))
    elif junk == 3:
        parts.append(f_bytes(1, b"", declared=draw(st.sampled_from([5, 1 << 30, 1 << 62]))))
    elif junk == 4:
        parts.append(tag(draw(st.integers(1, 4)), draw(st.sampled_from([3, 4, 6, 7]))))
    elif junk == 5:
        parts.append(b"\x80" * draw(st.integers(1, 12)))  # an unterminated / over-long varint
    elif junk == 6:
        parts.append(tag(0, 0) + b"\x01")  # field number 0
    body = b"".join(parts)
    if _rare(draw, 100) and body:
        body = body[: draw(st.integers(0, len(body) - 1))]
    return body


@st.composite
def hostile_profile(draw: st.DrawFn) -> bytes:
    """A pprof Profile message that is well-formed protobuf (mostly) but wrong inside."""
    n_strings = 0 if _rare(draw, 40) else draw(st.integers(1, 8))
    strings = [b""] if n_strings else []
    strings += [draw(st.binary(min_size=1, max_size=12)) for _ in range(max(0, n_strings - 1))]
    if strings and _rare(draw, 40):
        strings[0] = b"x"
    n_types = 0 if _rare(draw, 30) else draw(st.integers(1, 3))
    n_funcs = draw(st.integers(0, 5))
    n_maps = draw(st.integers(0, 2))
    n_locs = draw(st.integers(0, 6))
    out: list[bytes] = []
    for _ in range(n_types):
        out.append(f_bytes(1, f_varint(1, draw(indices(n_strings)))
                           + f_varint(2, draw(indices(n_strings)))))
    for _ in range(draw(st.integers(0, 6))):
        out.append(f_bytes(2, draw(_sample(n_locs, n_types, n_strings))))
    for i in range(n_maps):
        m = f_varint(1, (draw(ids(n_maps)) if _rare(draw, 15) else i + 1)) + f_varint(
            2, draw(edge_ints())) + f_varint(3, draw(edge_ints())) + f_varint(
            5, draw(indices(n_strings))) + f_varint(6, draw(indices(n_strings)))
        out.append(f_bytes(3, m))
    for i in range(n_locs):
        loc = f_varint(1, (draw(ids(n_locs)) if _rare(draw, 15) else i + 1))
        if draw(st.booleans()):
            loc += f_varint(2, draw(ids(n_maps)))
        loc += f_varint(3, draw(edge_ints()))
        for _ in range(draw(st.integers(0, 3)) if n_funcs or _rare(draw, 10) else 0):
            loc += f_bytes(4, f_varint(1, draw(ids(n_funcs))) + f_varint(2, draw(edge_ints()))
                           + f_varint(3, draw(edge_ints())))
        out.append(f_bytes(4, loc))
    for i in range(n_funcs):
        fn = f_varint(1, (draw(ids(n_funcs)) if _rare(draw, 15) else i + 1))
        fn += f_varint(2, draw(indices(n_strings))) + f_varint(3, draw(indices(n_strings)))
        fn += f_varint(4, draw(indices(n_strings))) + f_varint(5, draw(edge_ints()))
        out.append(f_bytes(5, fn))
    out += [f_bytes(6, s) for s in strings]
    for fno in (7, 8, 13, 14, 15):
        if draw(st.integers(0, 3)) == 0:
            out.append(f_varint(fno, draw(indices(n_strings))))
    for fno in (9, 10, 12):
        if draw(st.booleans()):
            out.append(f_varint(fno, draw(edge_ints())))
    if _rare(draw, 30):
        out.append(f_varint(9, 1) + f_varint(9, 2))  # two time_nanos: concatenated profiles
    if draw(st.booleans()):
        out.append(f_bytes(11, f_varint(1, draw(indices(n_strings)))
                           + f_varint(2, draw(indices(n_strings)))))
    tail = draw(st.integers(9, 10)) if _rare(draw, 10) else 0
    if tail == 9:
        # A huge declared length with almost nothing behind it.
        out.append(f_bytes(draw(st.integers(1, 6)), b"\x00" * 8,
                           declared=draw(st.sampled_from([1 << 20, 1 << 30, (1 << 31) - 1,
                                                          1 << 32, 1 << 62, U64]))))
    elif tail == 10:
        out.append(tag(draw(st.integers(1, 15)), draw(st.sampled_from([3, 4, 6, 7]))))
    data = b"".join(out)
    if _rare(draw, 5):
        data = gzip.compress(data, mtime=0)
    return data


# ---------------------------------------------------------------------------------------------
# Mutations of the corpus
# ---------------------------------------------------------------------------------------------

CORPUS = ["seedleak-noleak-1.pb.gz", "nodejs-heap-uncompressed.pprof", "go-cpu-labels.pb.gz",
          "malformed-no-addr-no-line.pb.gz", "invalid-utf8.pb.gz", "nodejs-heap.pb.gz"]


def _corpus_raw() -> list[bytes]:
    out = []
    for name in CORPUS:
        data = (PROFILES / name).read_bytes()
        out.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return out


_RAW_CACHE: list[bytes] = []


def corpus_raw() -> list[bytes]:
    if not _RAW_CACHE:
        _RAW_CACHE.extend(_corpus_raw())
    return _RAW_CACHE


@st.composite
def mutated_corpus(draw: st.DrawFn) -> bytes:
    """A real profile with a few bytes flipped, inserted, deleted or overwritten by a varint."""
    data = bytearray(draw(st.sampled_from(corpus_raw())))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(data) - 1))
        if op == 0:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[pos] = draw(st.integers(0, 255))
        elif op == 2:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == 3:
            del data[pos: pos + draw(st.integers(1, 8))]
        else:
            data[pos: pos + 1] = varint(draw(st.sampled_from([1 << 31, 1 << 62, U64, 1 << 40])))
        if not data:
            data = bytearray(b"\x00")
    out = bytes(data)
    if draw(st.booleans()):
        out = gzip.compress(out, mtime=0)
    return out


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    """A real profile whose sample messages (decoded in bulk by memgate's own wire code) have
    bytes flipped, inserted, deleted or replaced: the rest of the profile stays valid."""
    from memgate.profile import profile_pb2

    msg = profile_pb2.ProfileRaw()
    msg.ParseFromString(draw(st.sampled_from(corpus_raw())))
    samples = list(msg.sample)
    if not samples:
        return msg.SerializeToString()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(samples) - 1))
        body = bytearray(samples[i])
        op = draw(st.integers(0, 5))
        pos = draw(st.integers(0, max(0, len(body) - 1)))
        if op == 0 and body:
            body[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == 1 and body:
            body[pos] = draw(st.integers(0, 255))
        elif op == 2:
            body[pos:pos] = draw(st.one_of(st.binary(min_size=1, max_size=6),
                                           st.sampled_from([varint(U64), varint(1 << 63),
                                                            f_fixed64(1, 7), f_fixed32(2, 7),
                                                            f_bytes(3, b"\x0d\x01\x00\x00\x00"),
                                                            f_bytes(3, b"\x12\x00"),
                                                            b"\x1a\x00", b"\x0a\x00"])))
        elif op == 3:
            del body[pos: pos + draw(st.integers(1, 6))]
        elif op == 4:
            body[pos: pos + 1] = varint(draw(st.sampled_from([1 << 31, 1 << 62, U64, 1 << 40])))
        else:
            body = bytearray(draw(st.binary(max_size=24)))
        samples[i] = bytes(body)
    del msg.sample[:]
    msg.sample.extend(samples)
    out = msg.SerializeToString()
    if _rare(draw, 4):
        out = gzip.compress(out, mtime=0)
    return out


# ---------------------------------------------------------------------------------------------
# String tables and drop_frames
# ---------------------------------------------------------------------------------------------

#: What a pull request's profile can name a function, a file, a sample type or a mapping:
#: every kind of character that means something to a terminal, the runner, markdown or HTML.
HOSTILE_STRINGS = [
    "evil\r\r## \u2705 memgate: **PASS** (forged) @octocat\r\r<!--", "x\n::error title=f::x",
    "##[error]legacy", "  ::stop-commands::pwn", "\x1b]8;;https://e/\x1b\\link\x1b]8;;\x1b\\",
    "\x1b[2J\x1b[H", "\u202e\u2066bidi", "\u2028\u2029", "a|b`c``d", "%SCRIPT%</script>",
    "<img src=x onerror=alert(1)>", "\x00\x01\x7f\x85\x9b", "\ufeff\u200b", "%0A%25",
    "a" * 5000, "a" * 40 + "b", "x" * 70_000, "",
]
#: drop_frames / keep_frames a profile may carry: catastrophic for a backtracking engine,
#: invalid for RE2, huge.
HOSTILE_PATTERNS = [
    "(a+)+$", "(a|aa)*b", "(.*)*x", "(a*)*b", "((a+)+)+c", "(x+x+)+y", "(\\w+\\s?)*$",
    "(a)\\1", "(?=a)", "(", "[", "a{1001}", "(a{1000}){1000}", "a" * 70_000, ".*",
    "runtime\\..*", "\\C", "\\p{Greek}+", "(?i)MAIN.*",
]


@st.composite
def mutated_strings(draw: st.DrawFn) -> bytes:
    """A real profile whose string table has hostile entries (function and file names,
    sample types, mapping files, build ids) and whose drop_frames / keep_frames are hostile
    patterns: what memgate reads, renders and matches must stay one line, linear and
    escaped."""
    from memgate.profile import profile_pb2

    original = draw(st.sampled_from(corpus_raw()))
    msg = profile_pb2.ProfileRaw()
    msg.ParseFromString(original)
    table = list(msg.string_table)
    hostile = st.one_of(
        st.sampled_from(HOSTILE_STRINGS).map(lambda t: t.encode("utf-8")),
        st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=40),
    )
    for _ in range(draw(st.integers(1, 6))):
        if len(table) > 1:
            i = draw(st.integers(1, len(table) - 1))
            table[i] = draw(hostile) if draw(st.integers(0, 3)) else table[i] + draw(hostile)
    if draw(st.booleans()):
        table.append(draw(st.sampled_from(HOSTILE_PATTERNS)).encode())
        msg.drop_frames = len(table) - 1
    if draw(st.integers(0, 3)) == 0:
        table.append(draw(st.sampled_from(HOSTILE_PATTERNS)).encode())
        msg.keep_frames = len(table) - 1
    del msg.string_table[:]
    msg.string_table.extend(table)
    out = msg.SerializeToString()
    if _rare(draw, 4):
        out = gzip.compress(out, mtime=0)
    # The original goes with it, as the baseline of a diff (see split_pair).
    return PAIR + len(original).to_bytes(8, "little") + original + out


#: A fuzz input made of two profiles: a baseline and a candidate.
PAIR = b"MGPAIR"


def split_pair(data: bytes) -> tuple[bytes | None, bytes]:
    """(baseline, candidate) of a :func:`mutated_strings` input; (None, data) otherwise."""
    if not data.startswith(PAIR) or len(data) < len(PAIR) + 8:
        return None, data
    n = int.from_bytes(data[len(PAIR):len(PAIR) + 8], "little")
    base = data[len(PAIR) + 8:len(PAIR) + 8 + n]
    return base, data[len(PAIR) + 8 + n:]


# ---------------------------------------------------------------------------------------------
# Legacy text
# ---------------------------------------------------------------------------------------------

_LEGACY_HEADERS = [
    "heap profile: 1: 2 [3: 4] @ heap/1048576",
    "heap profile: 1: 2 [1: 2] @ heap/1048576",
    "heap profile: 0: 0 [0: 0] @ heapprofile",
    "heap profile: 9: 9 [9: 9] @ heapz_v2/524288",
    "heap profile: 9: 9 [9: 9] @ heap_v2/99999999999999999999999",
    "heap profile: 1: 1 [1: 1] @ growthz",
    "heap profile: 1: 1 [1: 1] @ fragmentationz",
    "heap profile: 1: 1 [1: 1] @ heap/0",
    "heap profile: 1: 1 [1: 1] @ heap/1",
    "--- heapz 1 ---",
    "--- contentionz 1 ---",
    "goroutine profile: total 3",
]
_LEGACY_LINES = [
    "1: 2 [3: 4] @ 0x1 0x2 0x3",
    "-1: -2 [3: 4] @ 0x1",
    "9223372036854775807: 9223372036854775807 [9223372036854775807: 9223372036854775807] @ 0x1",
    "99999999999999999999: 1 [1: 1] @ 0x1",
    "1: 1 [1: 1] @ 0xffffffffffffffffffff",
    "1: 1 [1: 1] @ 0x0",
    "1: 1 [1: 1] @",
    "1: 1 [0: 0] @ 0x10 0x10 0x10",
    "0: 0 [0: 0] @ 0x1",
    "1: 1e9 [1: 1] @ 0x1",
    "# comment",
    "",
    "--- Memory map: ---",
    "MAPPED_LIBRARIES:",
    "00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/x",
    "ffffffffffffffffffff-0 r-xp 00000000 08:02 173521 /usr/bin/x",
    "0-10 r-xp",
    "a=b",
    "$a",
    "format=java",
    "format=cpp",
    "resolution=bytes",
    "unknown=1",
    " 100 0 @ 0x1",
    " 100 1 @ 0x1 0x2",
    " 09 010 @ 0x1",
    " 99999999999999999999 1 @ 0x1",
    " 1 99999999999999999999 @ 0x1",
    " 9223372036854775807 1 @ 0x1",
    "0x1 com.example.Foo.bar (Foo.java:12)",
    "0x2 libc.so.6 (/lib/libc.so.6)",
    "0xffffffffffffffffffffffff X (X.java:1)",
    "0x1 generated stub/JIT",
    "0x3 GC",
    "\x00\xff garbage \u2028",
]


@st.composite
def legacy_text(draw: st.DrawFn) -> bytes:
    lines = [draw(st.sampled_from(_LEGACY_HEADERS))]
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.text(max_size=30)))
        else:
            lines.append(draw(st.sampled_from(_LEGACY_LINES)))
    sep = draw(st.sampled_from(["\n", "\r\n"]))
    text = sep.join(lines)
    if draw(st.booleans()):
        text += sep
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 5)) == 0:
        data = gzip.compress(data, mtime=0)
    return data


# ---------------------------------------------------------------------------------------------
# JSON-ish documents (policy, manifest, report)
# ---------------------------------------------------------------------------------------------

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    key = st.one_of(st.sampled_from(keys), st.text(max_size=8))
    return st.recursive(
        _SCALARS,
        lambda inner: st.one_of(st.lists(inner, max_size=4),
                                st.dictionaries(key, inner, max_size=5)),
        max_leaves=25,
    )


def _valid_policy() -> dict[str, Any]:
    return {"version": 1, "defaults": {"max_increase": "10%", "confidence": 0.99},
            "rules": [{"name": "r", "match": "re:.*json.*", "max_increase": "5%"}],
            "components": {"api": {"duration": "10m"}}}


POLICY_KEYS = ["version", "defaults", "rules", "components", "total", "new_functions",
               "name", "match", "max_increase", "max_rate", "confidence", "severity",
               "sample_types", "duration", "noise_floor", "metric", "min_increase"]


@st.composite
def policy_text(draw: st.DrawFn) -> bytes:
    """Policy files: mutated valid policies, random documents, hostile YAML."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        doc = _valid_policy()
        path_key = draw(st.sampled_from(["version", "defaults", "rules", "components"]))
        doc[path_key] = draw(json_values(POLICY_KEYS))
        text = json.dumps(doc, allow_nan=True)
    elif kind == 1:
        doc = _valid_policy()
        doc["rules"][0][draw(st.sampled_from(POLICY_KEYS))] = draw(json_values(POLICY_KEYS))
        text = json.dumps(doc, allow_nan=True)
    elif kind == 2:
        text = json.dumps(draw(json_values(POLICY_KEYS)), allow_nan=True)
    elif kind == 3:
        text = draw(st.sampled_from(_HOSTILE_YAML))
    elif kind == 4:
        doc = _valid_policy()
        doc["rules"][0]["match"] = draw(st.one_of(
            st.sampled_from(["re:(", "re:(a+)+$", "re:" + "(" * 200 + ")" * 200, "[", "**",
                             "re:\\", "re:(?P<x>", "*" * 1000]), st.text(max_size=20)))
        text = json.dumps(doc)
    else:
        text = draw(st.text(max_size=80))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 10)) == 0:
        data = b"\xff\xfe" + data
    return data


_HOSTILE_YAML = [
    # billion laughs: aliases are shared, never copied
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
    "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\nj: &j [*i, *i, *i, *i, *i, *i, *i, *i, *i]\n"
    "version: 1\nrules: *j\n"),
    "version: 1\nrules: " + "[" * 5000 + "]" * 5000 + "\n",
    "version: 1\ndefaults: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "&a [*a]",
    "a: &a {b: *a}\nversion: 1\ncomponents: *a\n",
    "!!python/object/apply:os.system ['echo hi']",
    "version: !!binary aGVsbG8=",
    "version: 1\nversion: 1\n",
    "? [a, b]\n: 1\n",
    "version: 1\n1: x\n",
    "version: 1\ncomponents: {api: {duration: 1e400}}\n",
    "version: 1\ncomponents: {api: {duration: -1}}\n",
    "version: 1\ndefaults: {confidence: .nan}\n",
    "version: 1\ndefaults: {max_increase: 1e999%}\n",
    "version: 1\ndefaults: {max_rate: 99999999999999999999999999999999999EiB/s}\n",
    "version: 1\ndefaults: {max_rate: 1MiB/0s}\n",
    "\t- x",
    "%YAML 9.9\n---\nversion: 1\n",
    "---\nversion: 1\n---\nversion: 2\n",
    "version: 1\nrules:\n  - name: a\n    match: 're:(?<=a+)b'\n",
    "version: 1\ncomponents: {'../../etc': {duration: 10m}}\n",
    "\x00\x01",
]

MANIFEST_KEYS = ["format", "component", "memgate_version", "created", "updated", "git_commit",
                 "reason", "approved_by", "profiles", "summary_unit", "summary",
                 "summary_totals", "file", "sha256", "original_name", "sample_types",
                 "period_type", "period", "duration_seconds", "type", "unit", "function",
                 "flat_rate", "cum_rate"]


@st.composite
def manifest_text(draw: st.DrawFn, valid: dict[str, Any]) -> bytes:
    """Mutations of a valid manifest (``valid``) and random documents."""
    kind = draw(st.integers(0, 4))
    if kind <= 1:
        doc = json.loads(json.dumps(valid))
        target: Any = doc
        if kind == 1 and doc.get("profiles"):
            target = doc["profiles"][0]
        key = draw(st.sampled_from(MANIFEST_KEYS))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(json_values(MANIFEST_KEYS))
        text = json.dumps(doc, allow_nan=True)
    elif kind == 2:
        doc = json.loads(json.dumps(valid))
        if doc.get("profiles"):
            doc["profiles"][0]["file"] = draw(st.sampled_from(
                ["../../../etc/passwd", "/etc/passwd", "..", ".", "", "a/b.pb.gz",
                 "x" * 300, "\x00.pb.gz", doc["profiles"][0]["sha256"][:16] + ".pb.gz/"]))
        text = json.dumps(doc)
    elif kind == 3:
        text = json.dumps(draw(json_values(MANIFEST_KEYS)), allow_nan=True)
    else:
        text = draw(st.sampled_from(["", "{", "[]", "null", '{"format": 1e999}',
                                     "[" * 100000, '{"format": 1, "format": 2}']))
    return text.encode("utf-8", "surrogatepass")


REPORT_KEYS = ["format", "verdict", "component", "summary", "findings", "inputs", "candidate",
               "baseline", "path", "sha256", "duration_seconds", "fail", "warn",
               "within_noise", "severity", "rule", "message", "function", "sample_type"]


@st.composite
def report_text(draw: st.DrawFn, valid: dict[str, Any]) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind <= 1:
        doc = json.loads(json.dumps(valid))
        key = draw(st.sampled_from(REPORT_KEYS))
        if kind == 1 and doc.get("findings"):
            doc["findings"][0][key] = draw(json_values(REPORT_KEYS))
        elif kind == 1 and isinstance(doc.get("summary"), dict):
            doc["summary"][key] = draw(json_values(REPORT_KEYS))
        else:
            doc[key] = draw(json_values(REPORT_KEYS))
        text = json.dumps(doc, allow_nan=True)
    elif kind == 2:
        text = json.dumps(draw(json_values(REPORT_KEYS)), allow_nan=True)
    else:
        text = draw(st.sampled_from(["", "{", "[" * 100000, "NaN", '{"format": 1}', "\ufeff{}"]))
    return text.encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------------
# Bombs
# ---------------------------------------------------------------------------------------------


def gzip_bomb(size: int) -> bytes:
    """A small gzip member that decompresses to ``size`` zero bytes (streamed, never built)."""
    co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    parts = []
    left = size
    while left:
        n = min(left, len(chunk))
        parts.append(co.compress(chunk[:n]))
        left -= n
    parts.append(co.flush())
    return b"".join(parts)


def declared_huge() -> list[tuple[str, bytes]]:
    """Inputs of a few bytes that declare gigabytes: each must fail fast and small."""
    return [
        ("string 1GiB", f_bytes(6, b"", declared=1 << 30)),
        ("sample 1GiB", f_bytes(6, b"") + f_bytes(2, b"\x08\x01", declared=1 << 30)),
        ("sample 2^62", f_bytes(6, b"") + f_bytes(2, b"\x08\x01", declared=1 << 62)),
        ("sample 2^64-1", f_bytes(6, b"") + f_bytes(2, b"\x08\x01", declared=U64)),
        ("location 1GiB", f_bytes(6, b"") + f_bytes(4, b"\x08\x01", declared=1 << 30)),
        ("packed ids 1GiB", f_bytes(6, b"") + f_bytes(1, f_bytes(1, b""))
         + f_bytes(2, f_bytes(1, b"\x01", declared=1 << 30))),
        ("label 1GiB", f_bytes(6, b"") + f_bytes(1, f_bytes(1, b""))
         + f_bytes(2, f_bytes(3, b"\x08", declared=1 << 30))),
        ("location id 2^64-1", f_bytes(6, b"") + f_bytes(1, f_varint(1, 0))
         + f_bytes(4, f_varint(1, U64)) + f_bytes(2, packed(1, [U64]) + packed(2, [1]))),
        ("location id 2^30 (sparse table)", f_bytes(6, b"") + f_bytes(1, f_varint(1, 0))
         + f_bytes(4, f_varint(1, 1 << 30)) + f_bytes(2, packed(1, [1 << 30]) + packed(2, [1]))),
    ]


# ---------------------------------------------------------------------------------------------
# The in-process harness
# ---------------------------------------------------------------------------------------------


class Unexpected(AssertionError):
    """An input made a target fail in a way a user must never see."""


def check_message(err: BaseException, source: str) -> None:
    text = str(err)
    if "\n" in text or "\r" in text:
        raise Unexpected(f"multi-line error message: {text!r}")
    if not text.startswith(f"{source}: "):
        raise Unexpected(f"error message does not start with the source {source!r}: {text!r}")


def decode_target(data: bytes) -> str:
    """decode, then everything `memgate top` does with the profile."""
    from memgate.errors import ProfileError
    from memgate.profile.decode import decode
    from memgate.profile.limits import InputLimits
    from memgate.report.top import build_top, render_json, render_text
    from memgate.table import aggregate

    source = "fuzz.pb"
    try:
        prof = decode(data, source, InputLimits(max_decompressed_bytes=64 << 20))
    except ProfileError as e:
        check_message(e, source)
        return "error"
    table = aggregate(prof, "functions")
    for i in range(len(prof.sample_types)):
        rep = build_top(prof, table, i, limit=None, cum_sort=False)
        render_text(rep, "minimum")
        render_json(rep)
    aggregate(prof, "lines")
    aggregate(prof, "addresses")
    return "ok"


def assert_safe_output(text: str, what: str) -> None:
    """Text or markdown memgate prints: no control character but the line break, no line
    that starts a workflow command, no ``##[`` anywhere."""
    from memgate.escape import is_unsafe_char

    for line in text.split("\n"):
        if line.lstrip().startswith("::") or "##[" in line:
            raise Unexpected(f"{what}: a line a runner would take for a command: {line!r}")
        bad = [c for c in line if is_unsafe_char(c)]
        if bad:
            raise Unexpected(f"{what}: raw control character {bad[0]!r} in {line[:200]!r}")


def strings_target(data: bytes, tmp: Path) -> str:
    """Every output a reviewer reads of a profile with hostile strings (drop_frames applied):
    ``top`` as text, markdown and JSON, and ``diff`` against the unmutated original as text,
    markdown, JSON and the HTML page, through the command line. Each printed output must be
    safe (:func:`assert_safe_output`); an error must be one line naming its source."""
    from click.testing import CliRunner

    base, cand = split_pair(data)
    (tmp / "cand.pb").write_bytes(cand)
    runner = CliRunner()
    for fmt in ("text", "markdown", "json"):
        if not _invoke(runner, ["top", str(tmp / "cand.pb"), "--format", fmt],
                       str(tmp / "cand.pb")):
            return "error"
    if base is None:
        return "ok"
    (tmp / "base.pb").write_bytes(base)
    for fmt in ("text", "markdown", "json"):
        args = ["diff", str(tmp / "base.pb"), str(tmp / "cand.pb"), "--format", fmt]
        if fmt == "json":
            args += ["--html", str(tmp / "page.html")]
        if not _invoke(runner, args, ""):
            return "error"
        if fmt == "json":
            page = (tmp / "page.html").read_text("utf-8")
            if page.count("</script>") != 2:
                raise Unexpected("the HTML page has a </script> it did not write")
    return "ok"


def _invoke(runner: Any, args: list[str], source: str) -> bool:
    """Run one command in-process and check its output safe (and valid JSON with --format
    json): True; False when it exited 3 with a one-line error naming ``source``."""
    from memgate.cli import main

    res = runner.invoke(main, args)
    if res.exit_code == 3:
        _one_line_error(res.output, source)
        return False
    if res.exit_code != 0:
        raise Unexpected(f"{args[0]} exited {res.exit_code}: {res.output[-500:]!r}")
    fmt = args[args.index("--format") + 1]
    assert_safe_output(res.output, f"{args[0]} {fmt}")
    if fmt == "json":
        json.loads(res.output)
    return True


def _one_line_error(output: str, source: str) -> None:
    lines = output.strip().split("\n")
    if len(lines) != 1 or not lines[0].startswith(f"memgate: {source}"):
        raise Unexpected(f"not a one-line error: {output[-500:]!r}")
    assert_safe_output(output, "error")


def policy_target(data: bytes, tmp: Path) -> str:
    from memgate.errors import PolicyError
    from memgate.policy import load_policy

    path = tmp / "policy.yml"
    path.write_bytes(data)
    try:
        pol = load_policy(path)
    except PolicyError as e:
        check_message(e, str(path))
        return "error"
    pol.resolve("encoding/json.(*decodeState).literalStore", "inuse_space")
    pol.resolve_total("alloc_space")
    if "api" in pol.components:
        pol.for_component("api")
    return "ok"


def manifest_target(data: bytes, tmp: Path, profile_bytes: bytes, sha: str) -> str:
    from memgate.baseline.store import Store
    from memgate.errors import MemgateError

    root = tmp / "baselines"
    comp = root / "api"
    comp.mkdir(parents=True, exist_ok=True)
    (comp / f"{sha[:16]}.pb.gz").write_bytes(profile_bytes)
    (comp / "manifest.json").write_bytes(data)
    store = Store(root)
    try:
        store.load("api")
        result = "ok"
    except MemgateError as e:
        check_message(e, str(comp))
        result = "error"
    for problem in store.verify("api"):
        if "\n" in problem:
            raise Unexpected(f"multi-line verify problem: {problem!r}")
    return result


def report_target(data: bytes, tmp: Path) -> str:
    from memgate.cli.report import (
        load_reports,
        merge_json,
        render_merged_markdown,
        render_merged_text,
    )
    from memgate.errors import ReportError

    path = tmp / "report.json"
    path.write_bytes(data)
    twin = tmp / "report-2.json"  # the same component twice, as a matrix may produce
    twin.write_bytes(data)
    try:
        loaded = load_reports([str(path), str(twin)])
    except ReportError as e:
        check_message(e, str(path))
        return "error"
    render_merged_markdown(loaded)
    render_merged_text(loaded)
    json.dumps(merge_json(loaded), allow_nan=False)
    return "ok"


Target = Callable[[bytes], str]
