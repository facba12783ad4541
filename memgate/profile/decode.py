"""Decode pprof profiles: sniff the encoding, decompress within limits, parse, validate.

The input is recognised by its content, never its name: gzip magic ``1f 8b``, legacy text
headers (``heap profile:``, ``--- heapz``), otherwise raw protobuf. The protobuf runtime does
the wire decoding of everything but the samples, which :mod:`memgate.profile.wire` decodes in
bulk. Validation follows pprof's ``CheckValid`` and ``postDecode``: every problem becomes a
:class:`~memgate.errors.ProfileError` naming the source.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

import numpy as np
from google.protobuf.message import DecodeError

from memgate import speedups
from memgate.errors import LimitError, ProfileError, ReportError
from memgate.parallel import parallel_map
from memgate.profile import profile_pb2
from memgate.profile.model import (
    Function,
    Locations,
    Mapping,
    Profile,
    Samples,
    ValueType,
    num_label_unit,
)
from memgate.profile.wire import (
    Fields,
    NotTokenizable,
    TokenFields,
    Tokens,
    WireError,
    repeated_varints,
    token_field_values,
    tokenize,
    walk_messages,
    walk_tokens,
)
from memgate.units import parse_size

GZIP_MAGIC = b"\x1f\x8b"
GiB = 1 << 30


def _env_int(name: str, default: int, size: bool = False) -> int:
    """A positive limit from the environment: a count, or (``size``) a size with the
    command line's syntax (``100M``, ``2GiB``, a plain number of bytes)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if size:
        try:
            return parse_size(raw)
        except ValueError as e:
            raise ProfileError(f"{name}: {e}", source="environment", slug="bad-limit") from None
    try:
        value = int(raw)
    except ValueError:
        raise ProfileError(
            f"{name} must be an integer, got {raw!r}", source="environment", slug="bad-limit"
        ) from None
    if value <= 0:
        raise ProfileError(
            f"{name} must be positive, got {value}", source="environment", slug="bad-limit"
        )
    return value


@dataclass(frozen=True)
class Limits:
    """Bounds on what one input (and one run) may make memgate allocate.

    A 1 KB gzip file can expand to gigabytes; a hostile profile can declare millions of
    locations or strings. Each bound has a flag and an environment variable so that CI can
    raise it without code (``LIMIT_FLAGS``); docs/reliability.md has the memory they allow.
    """

    max_decompressed_bytes: int = GiB
    max_samples: int = 20_000_000
    max_locations: int = 5_000_000
    #: Entries of a profile's string table, and their bytes together: the protobuf runtime
    #: keeps 16 bytes per entry, Python 80 more once decoded; 39 million empty strings fit in
    #: a 76 KB gzip file.
    max_strings: int = 4_000_000
    max_string_bytes: int = 256 << 20
    #: Decompressed bytes of all profiles one command reads together (a check with many runs).
    max_total_bytes: int = 2 * GiB
    #: A JSON report read by ``report merge`` or ``baseline accept``: parsing JSON costs up to
    #: 25 times its size (``[{},{},...]``); a real report is about 1.3 KB per function.
    max_report_bytes: int = 48 << 20

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, then the environment variables, then :func:`set_limit_overrides`."""
        limits = cls(
            max_decompressed_bytes=_env_int("MEMGATE_MAX_DECOMPRESSED_BYTES", GiB, size=True),
            max_samples=_env_int("MEMGATE_MAX_SAMPLES", 20_000_000),
            max_locations=_env_int("MEMGATE_MAX_LOCATIONS", 5_000_000),
            max_strings=_env_int("MEMGATE_MAX_STRINGS", 4_000_000),
            max_string_bytes=_env_int("MEMGATE_MAX_STRING_BYTES", 256 << 20, size=True),
            max_total_bytes=_env_int("MEMGATE_MAX_TOTAL_BYTES", 2 * GiB, size=True),
            max_report_bytes=_env_int("MEMGATE_MAX_REPORT_BYTES", 48 << 20, size=True),
        )
        overrides = _OVERRIDES.get()
        return replace(limits, **overrides) if overrides else limits


#: The flag and the environment variable that raise each limit, for messages and ``--help``.
LIMIT_FLAGS = {
    "max_decompressed_bytes": ("--max-decompressed", "MEMGATE_MAX_DECOMPRESSED_BYTES"),
    "max_samples": ("--max-samples", "MEMGATE_MAX_SAMPLES"),
    "max_locations": ("--max-locations", "MEMGATE_MAX_LOCATIONS"),
    "max_strings": ("--max-strings", "MEMGATE_MAX_STRINGS"),
    "max_string_bytes": ("--max-string-bytes", "MEMGATE_MAX_STRING_BYTES"),
    "max_total_bytes": ("--max-total", "MEMGATE_MAX_TOTAL_BYTES"),
}


def read_report_bytes(path: str | Path) -> bytes:
    """The bytes of a JSON report file, at most ``max_report_bytes`` of any kind of file.

    ``OSError`` as usual; a larger input is a :class:`ReportError` naming the variable.
    """
    from memgate.fs import ReadLimitExceeded, read_limited

    limit = Limits.from_env().max_report_bytes
    try:
        return read_limited(path, limit)
    except ReadLimitExceeded:
        raise ReportError(f"larger than the limit of {limit} bytes for a JSON report (raise "
                          "it with MEMGATE_MAX_REPORT_BYTES)", source=str(path),
                          slug="limit-exceeded") from None


def _raise_with(attr: str) -> str:
    flag, env = LIMIT_FLAGS[attr]
    return f"raise it with {flag} or {env}"


class RunBudget:
    """The decompressed bytes the profiles of one command have used so far, against
    ``Limits.max_total_bytes``. The CLI (and the Action) open one per command with
    :func:`run_budget`; decoding outside of one is not counted."""

    def __init__(self) -> None:
        self.used = 0

    def charge(self, size: int, source: str, limits: Limits) -> None:
        self.used += size
        if self.used > limits.max_total_bytes:
            raise LimitError(
                f"the profiles of this run decompress to more than {limits.max_total_bytes} "
                f"bytes together ({_raise_with('max_total_bytes')})", source=source)


_BUDGET: ContextVar[RunBudget | None] = ContextVar("memgate_budget", default=None)


def restart_run_budget() -> None:
    """Forget what the running command decoded so far (it starts over with new settings and
    the first attempt's profiles are gone)."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.used = 0


class run_budget:
    """``with run_budget():`` counts every decode inside against ``max_total_bytes``."""

    def __enter__(self) -> RunBudget:
        self.budget = RunBudget()
        self.token = _BUDGET.set(self.budget)
        return self.budget

    def __exit__(self, *exc: object) -> None:
        _BUDGET.reset(self.token)


#: Limits given on the command line (``--max-samples`` ...) for the running command: every
#: ``Limits.from_env()`` of it (the store's included) sees them. Set by the CLI, reset when
#: the command ends.
_OVERRIDES: ContextVar[dict[str, int] | None] = ContextVar("memgate_limits", default=None)


def set_limit_overrides(**values: int) -> object:
    """Override fields of :meth:`Limits.from_env` (e.g. ``max_samples=10``); returns a token
    for :func:`reset_limit_overrides`."""
    merged = dict(_OVERRIDES.get() or {})
    merged.update(values)
    return _OVERRIDES.set(merged)


def reset_limit_overrides(token: object) -> None:
    _OVERRIDES.reset(token)  # type: ignore[arg-type]


#: Output of one zlib call: the decompressed data grows in steps of this size, so that memory
#: never exceeds the limit by more than a step (one call for everything doubles its buffer
#: as it goes, and a 1 GiB limit cost 2 GiB).
_GUNZIP_STEP = 16 << 20


def gunzip(data: bytes, source: str, limit: int) -> bytes:
    """Decompress gzip data (several members are concatenated, like Go's reader) within a limit.

    The result is a ``bytearray`` grown in place (the allocator extends it without a copy),
    which every reader of the decoded data accepts as bytes; it is never copied whole.
    """
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        chunk_in = rest
        while True:
            try:
                chunk = d.decompress(chunk_in, min(limit - len(out) + 1, _GUNZIP_STEP))
            except zlib.error as e:
                raise ProfileError(
                    f"corrupt gzip data ({e})", source=source, slug="gzip-corrupt"
                ) from None
            out += chunk
            if len(out) > limit:
                raise LimitError(
                    f"decompressed size exceeds the limit of {limit} bytes "
                    "(raise it with --max-decompressed or MEMGATE_MAX_DECOMPRESSED_BYTES)",
                    source=source,
                )
            if d.eof:
                break
            chunk_in = d.unconsumed_tail
            # No input left: zlib may still hold output back (the step was full); another
            # call with no input gets it. No input and no output means the stream ended early.
            if not chunk_in and not chunk:
                raise ProfileError(
                    "truncated gzip data (unexpected end of stream)",
                    source=source,
                    slug="gzip-truncated",
                )
        rest = d.unused_data
        # Trailing zero padding after the last member is tolerated (as gzip(1) does).
        if rest and not rest.strip(b"\x00"):
            break
    return out  # type: ignore[return-value]  # a bytearray: see the docstring


def decode(
    data: bytes,
    source: str,
    limits: Limits | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Profile:
    """Decode a profile from bytes; ``source`` names it in errors."""
    limits = limits or Limits()
    if not data:
        raise ProfileError("empty input: not a profile", source=source, slug="empty")
    encoding = "protobuf"
    if data[:2] == GZIP_MAGIC:
        data = gunzip(data, source, limits.max_decompressed_bytes)
        encoding = "gzip+protobuf"
        if not data:
            raise ProfileError(
                "empty input after decompression: not a profile", source=source, slug="empty"
            )
    elif len(data) > limits.max_decompressed_bytes:
        raise LimitError(
            f"input size exceeds the limit of {limits.max_decompressed_bytes} bytes "
            "(raise it with --max-decompressed or MEMGATE_MAX_DECOMPRESSED_BYTES)",
            source=source,
        )
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(len(data), source, limits)
    if _looks_like_text(data):
        from memgate.profile import legacy

        if legacy.looks_like_legacy(data):
            return legacy.parse_legacy(data, source)
    prof = decode_protobuf(data, source, limits, on_progress)
    if encoding != "protobuf":
        prof = _with_encoding(prof, encoding)
    return prof


def _looks_like_text(data: bytes) -> bool:
    """Legacy formats are ASCII text; a protobuf profile starts with a field tag byte."""
    head = data[:256].lstrip()
    return bool(head) and all(32 <= c < 127 or c in (9, 10, 13) for c in head[:64])


def _with_encoding(prof: Profile, encoding: str) -> Profile:
    return replace(prof, encoding=encoding)


class _Strings:
    """The string table, decoded leniently, with checked lookups."""

    def __init__(self, raw: Iterable[bytes], source: str) -> None:
        # pprof accepts invalid UTF-8; a backslash escape keeps distinct names distinct and
        # printable (and pprof's own output, decoded the same way, compares equal).
        self.table = [b.decode("utf-8", "backslashreplace") for b in raw]
        self.source = source

    def __len__(self) -> int:
        return len(self.table)

    def get(self, index: int, what: str) -> str:
        if index < 0 or index >= len(self.table):
            raise ProfileError(
                f"{what} refers to string index {index}, but the string table has "
                f"{len(self.table)} entries",
                source=self.source,
                slug="bad-string-index",
            )
        return self.table[index]


def _check_ids(ids: list[int], what: str, source: str) -> None:
    seen: set[int] = set()
    for i in ids:
        if i == 0:
            raise ProfileError(f"found {what} with reserved id 0", source=source, slug="zero-id")
        if i in seen:
            raise ProfileError(
                f"multiple {what}s with the same id {i}", source=source, slug="duplicate-id"
            )
        seen.add(i)


def decode_protobuf(
    data: bytes,
    source: str,
    limits: Limits,
    on_progress: Callable[[float], None] | None = None,
) -> Profile:
    """Decode an uncompressed protobuf profile."""
    _check_counts(data, source, limits)
    msg = profile_pb2.ProfileRaw()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        detail = str(e) or "malformed protobuf"
        if "Error parsing message" in detail or "Wire format" in detail:
            # The runtime names our internal message type, which means nothing to a user.
            detail = "the protobuf data is corrupt"
        raise ProfileError(
            f"not a pprof profile: {detail} (truncated or not protobuf?)",
            source=source,
            slug="protobuf-invalid",
        ) from None
    _check_concatenated(data, msg, source)

    if len(msg.string_table) == 0 or msg.string_table[0] != b"":
        if len(msg.string_table) == 0 and len(msg.sample) == 0 and len(msg.sample_type) == 0:
            raise ProfileError(
                "not a pprof profile: no string table, no samples",
                source=source,
                slug="protobuf-invalid",
            )
        raise ProfileError("string_table[0] must be ''", source=source, slug="bad-string-table")
    # Decoded one entry at a time: no list of bytes beside the list of str.
    strings = _Strings(msg.string_table, source)

    sample_types = tuple(
        ValueType(
            strings.get(st.type, f"sample_type[{i}].type"),
            strings.get(st.unit, f"sample_type[{i}].unit"),
        )
        for i, st in enumerate(msg.sample_type)
    )
    period_type = ValueType(
        strings.get(msg.period_type.type, "period_type.type"),
        strings.get(msg.period_type.unit, "period_type.unit"),
    )
    n_samples = len(msg.sample)
    if n_samples > limits.max_samples:
        raise LimitError(
            f"{n_samples} samples exceed the limit of {limits.max_samples} "
            "(raise it with --max-samples or MEMGATE_MAX_SAMPLES)",
            source=source,
        )
    if n_samples and not sample_types:
        raise ProfileError("missing sample type information", source=source, slug="no-sample-types")
    if len(msg.location) > limits.max_locations:
        raise LimitError(
            f"{len(msg.location)} locations exceed the limit of {limits.max_locations} "
            "(raise it with --max-locations or MEMGATE_MAX_LOCATIONS)",
            source=source,
        )

    # Mappings.
    mapping_ids = [m.id for m in msg.mapping]
    _check_ids(mapping_ids, "mapping", source)
    mappings = tuple(
        Mapping(
            file=strings.get(m.filename, f"mapping {m.id} filename"),
            build_id=strings.get(m.build_id, f"mapping {m.id} build_id"),
            memory_start=m.memory_start,
            memory_limit=m.memory_limit,
            file_offset=m.file_offset,
            has_functions=m.has_functions,
        )
        for m in msg.mapping
    )
    mapping_index = {mid: i for i, mid in enumerate(mapping_ids)}

    # Functions.
    function_ids = [f.id for f in msg.function]
    _check_ids(function_ids, "function", source)
    functions = tuple(
        Function(
            name=strings.get(f.name, f"function {f.id} name"),
            system_name=strings.get(f.system_name, f"function {f.id} system_name"),
            filename=strings.get(f.filename, f"function {f.id} filename"),
            start_line=f.start_line,
        )
        for f in msg.function
    )
    function_index = {fid: i for i, fid in enumerate(function_ids)}

    # Locations and lines.
    locations = _decode_locations(msg, mapping_index, function_index, source)

    # Samples.
    samples = _decode_samples(msg, len(sample_types), locations, strings, source, on_progress)

    comments = tuple(strings.get(c, "comment") for c in msg.comment)
    return Profile(
        source=source,
        sample_types=sample_types,
        samples=samples,
        locations=locations,
        functions=functions,
        mappings=mappings,
        period_type=period_type,
        period=msg.period,
        time_nanos=msg.time_nanos,
        duration_nanos=msg.duration_nanos,
        default_sample_type=strings.get(msg.default_sample_type, "default_sample_type"),
        comments=comments,
        drop_frames=strings.get(msg.drop_frames, "drop_frames"),
        keep_frames=strings.get(msg.keep_frames, "keep_frames"),
        doc_url=strings.get(msg.doc_url, "doc_url"),
        encoding="protobuf",
    )


#: Top-level fields of a Profile that the protobuf runtime turns into one object each, and the
#: limit (a :class:`Limits` attribute) on how many of them a profile may have.
_COUNTED_FIELDS = {2: ("samples", "max_samples"), 3: ("mappings", "max_locations"),
                   4: ("locations", "max_locations"), 5: ("functions", "max_locations")}
_FLAGS = {"max_samples": ("--max-samples", "MEMGATE_MAX_SAMPLES"),
          "max_locations": ("--max-locations", "MEMGATE_MAX_LOCATIONS")}


def _counts_bounded(data: bytes, limits: Limits) -> bool:
    """Whether a byte histogram already proves every count within its limit (no walk needed).

    A top-level field of number f (< 16, length-delimited) starts with the byte ``f << 3 | 2``,
    or with that byte plus 0x80 when its key is written in a longer (non-minimal) form, so the
    number of such bytes anywhere in the input bounds the number of fields. For real profiles
    the bound is far below the limits; only inputs near the limits (or built to look so) take
    the exact walk.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    # Samples have their own limit; mappings, locations and functions share one. Counted in
    # slices with SIMD comparisons: no temporary the size of the input (fresh memory faults).
    step = 1 << 22
    for fields, limit in (((2,), limits.max_samples), ((3, 4, 5), limits.max_locations)):
        tags = [t for f in fields for t in ((f << 3) | 2, (f << 3) | 2 | 0x80)]
        bound = 0
        for i in range(0, buf.size, step):
            part = buf[i:i + step]
            bound += sum(int(np.count_nonzero(part == t)) for t in tags)
        if bound > limit:
            return False
    strings = sum(int(np.count_nonzero(buf[i:i + step] == t)) for t in (0x32, 0xB2)
                  for i in range(0, buf.size, step))
    if strings > limits.max_strings or len(data) > limits.max_string_bytes:
        return False
    return len(data) // 2 <= _other_cap(limits)


def _check_counts(data: bytes, source: str, limits: Limits) -> None:
    """Count the repeated top-level fields before the protobuf runtime builds them.

    The runtime allocates 20 to 80 bytes per element however small it is on the wire (20 MB
    of empty ``Location`` fields take 660 MB to parse), so 1 GiB of two-byte elements (a 1 MB
    gzip file) would take ~40 GiB before any limit is checked. This walk steps over the
    top-level fields and stops as soon as a count crosses its limit: in C when the optional
    loops are built; otherwise in Python (~0.4 us a field), after a byte histogram that proves
    most inputs within the limits without a walk. An input too small to hold more elements
    than the limits allow (each takes at least two bytes) is not walked. Malformed data ends
    the walk silently: the parser reports it.
    """
    cap = min(limits.max_samples, limits.max_locations, limits.max_strings)
    if len(data) // 2 <= cap and len(data) <= limits.max_string_bytes:
        return
    # Everything else (strings, sample types, comments) together: generous, only a backstop.
    other_cap = _other_cap(limits)
    fast = speedups.module()
    if fast is not None and hasattr(fast, "count_top_fields"):
        # The exact walk in C takes 3 ms on a 1M-sample profile, less than the byte histogram;
        # the Python walk takes ~2 s on a 3M-sample one.
        big = (1 << 63) - 1  # C's long long; a larger limit is no limit at all
        *by_field, n_other, n_strings, n_string_bytes = fast.count_top_fields(
            data, min(limits.max_samples, big), min(limits.max_locations, big),
            min(other_cap, big), min(limits.max_strings, big),
            min(limits.max_string_bytes, big))
        for field, n in zip(_COUNTED_FIELDS, by_field):
            if n > getattr(limits, _COUNTED_FIELDS[field][1]):
                _over_limit(field, source, limits)
        if n_other > other_cap:
            _over_other_cap(source, other_cap)
        _check_strings(n_strings, n_string_bytes, source, limits)
        return
    if _counts_bounded(data, limits):
        return
    counts = dict.fromkeys(_COUNTED_FIELDS, 0)
    other = strings = string_bytes = 0
    n = len(data)
    p = 0
    try:
        while p < n:
            key, p = _varint(data, p)
            wt = key & 7
            field = key >> 3
            if field in counts:
                counts[field] += 1
                if counts[field] > getattr(limits, _COUNTED_FIELDS[field][1]):
                    _over_limit(field, source, limits)
            else:
                other += 1
                if other > other_cap:
                    _over_other_cap(source, other_cap)
            if wt == 2:
                length, p = _varint(data, p)
                if length > n - p:
                    return  # past the end: malformed
                if field == 6:
                    strings += 1
                    string_bytes += length
                    _check_strings(strings, string_bytes, source, limits)
                p += length
            elif wt == 0:
                _, p = _varint(data, p)
            elif wt == 1:
                p += 8
            elif wt == 5:
                p += 4
            else:
                return
    except (IndexError, _OverLong):
        return  # malformed: the parser that runs next reports it


def _check_strings(count: int, size: int, source: str, limits: Limits) -> None:
    if count > limits.max_strings:
        raise LimitError(f"more than {limits.max_strings} strings in the string table, the "
                         f"limit ({_raise_with('max_strings')})", source=source)
    if size > limits.max_string_bytes:
        raise LimitError(f"the string table holds more than {limits.max_string_bytes} bytes, "
                         f"the limit ({_raise_with('max_string_bytes')})", source=source)


def _over_limit(field: int, source: str, limits: Limits) -> NoReturn:
    what, attr = _COUNTED_FIELDS[field]
    flag, env = _FLAGS[attr]
    raise LimitError(
        f"more than {getattr(limits, attr)} {what}, the limit (raise it with {flag} or {env})",
        source=source,
    )


def _over_other_cap(source: str, other_cap: int) -> NoReturn:
    raise LimitError(
        f"more than {other_cap} top-level fields besides samples and locations, "
        "the limit (raise --max-locations or MEMGATE_MAX_LOCATIONS)",
        source=source,
    )


class _OverLong(Exception):
    """A varint longer than ten bytes."""


def _varint(data: bytes, p: int) -> tuple[int, int]:
    """The varint at ``data[p]`` and the offset after it (IndexError past the end)."""
    b = data[p]
    p += 1
    value = b & 0x7F
    shift = 7
    while b >= 0x80:
        if shift > 63:
            raise _OverLong
        b = data[p]
        p += 1
        value |= (b & 0x7F) << shift
        shift += 7
    if value >> 64:
        raise _OverLong  # more than 64 bits: malformed, as the C walk and upb read it
    return value, p


def _other_cap(limits: Limits) -> int:
    """Top-level fields besides samples and locations (strings, types, ...): a backstop."""
    return 4 * limits.max_locations + limits.max_samples + 1024


def _check_concatenated(data: bytes, msg: profile_pb2.ProfileRaw, source: str) -> None:
    """pprof refuses a second ``time_nanos`` field: two profiles were concatenated."""
    if msg.time_nanos == 0:
        return
    probe = profile_pb2.TimeProbe()
    try:
        probe.ParseFromString(data)
    except DecodeError:  # pragma: no cover - the full parse succeeded on the same bytes
        return
    if len(probe.time_nanos) > 1:
        raise ProfileError(
            "concatenated profiles detected (two time_nanos fields)",
            source=source,
            slug="concatenated",
        )


def _decode_locations(
    msg: profile_pb2.ProfileRaw,
    mapping_index: dict[int, int],
    function_index: dict[int, int],
    source: str,
) -> Locations:
    n = len(msg.location)
    ids = np.empty(n, dtype=np.uint64)
    address = np.empty(n, dtype=np.uint64)
    mapping = np.empty(n, dtype=np.int32)
    line_offsets = np.zeros(n + 1, dtype=np.int64)
    line_function: list[int] = []
    line_number: list[int] = []
    line_column: list[int] = []
    seen: set[int] = set()
    fget = function_index.get
    for i, loc in enumerate(msg.location):
        lid = loc.id
        if lid == 0:
            raise ProfileError("found location with reserved id 0", source=source, slug="zero-id")
        if lid in seen:
            raise ProfileError(
                f"multiple locations with the same id {lid}", source=source, slug="duplicate-id"
            )
        seen.add(lid)
        ids[i] = lid
        address[i] = loc.address
        # pprof leaves an unknown mapping id as "no mapping" (postDecode), so do we.
        mapping[i] = mapping_index.get(loc.mapping_id, -1) if loc.mapping_id else -1
        for ln in loc.line:
            fi = fget(ln.function_id)
            if fi is None:
                raise ProfileError(
                    f"location {lid} has a line with unknown function id {ln.function_id}",
                    source=source,
                    slug="unresolved-function",
                )
            line_function.append(fi)
            line_number.append(ln.line)
            line_column.append(ln.column)
        line_offsets[i + 1] = len(line_function)
    return Locations(
        ids=ids,
        address=address,
        mapping=mapping,
        line_offsets=line_offsets,
        line_function=np.array(line_function, dtype=np.int32),
        line_number=np.array(line_number, dtype=np.int64),
        line_column=np.array(line_column, dtype=np.int64),
    )


#: Sample bytes decoded per chunk. Every temporary array of a chunk stays below glibc's mmap
#: threshold (32 MiB), so memory freed by one chunk is reused by the next instead of being
#: returned to the kernel and faulted in again: on a VM a page fault costs more than the
#: arithmetic. It also bounds the decoder's memory by the chunk, not by the profile.
CHUNK_BYTES = 2 << 20


def _decode_samples(
    msg: profile_pb2.ProfileRaw,
    n_types: int,
    locations: Locations,
    strings: _Strings,
    source: str,
    on_progress: Callable[[float], None] | None = None,
) -> Samples:
    """Decode every sample, chunk by chunk; ``on_progress`` hears the fraction done."""
    raw = msg.sample
    n = len(raw)
    if n == 0:
        return Samples(
            values=np.zeros((0, n_types), dtype=np.int64),
            offsets=np.zeros(1, dtype=np.int64),
            locations=np.zeros(0, dtype=np.int32),
        )
    lengths = np.fromiter(map(len, raw), dtype=np.int64, count=n)
    csum = np.cumsum(lengths)
    resolve = _LocationResolver(locations.ids, source)
    # Chunk boundaries fall between samples: each chunk holds about CHUNK_BYTES of samples.
    bounds = [0]
    while bounds[-1] < n:
        lo = bounds[-1]
        base = int(csum[lo - 1]) if lo else 0
        bounds.append(max(int(np.searchsorted(csum, base + CHUNK_BYTES, side="right")), lo + 1))

    done = [0]
    done_lock = threading.Lock()

    def chunk(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Labels | None]:
        lo, hi = bounds[k], bounds[k + 1]
        loc_ids, loc_off, vals, val_off, labels = _decode_chunk(
            b"".join(raw[lo:hi]), lengths[lo:hi], source, lo, n_types
        )
        bad = np.flatnonzero(np.diff(val_off) != n_types)
        if bad.size:
            i = int(bad[0])
            raise ProfileError(
                f"sample {lo + i} has {int(val_off[i + 1] - val_off[i])} values but the "
                f"profile has {n_types} sample types",
                source=source,
                slug="value-count",
            )
        if labels is not None:
            labels = (labels[0] + lo, labels[1])
        if on_progress is not None:
            with done_lock:
                done[0] += hi - lo
                on_progress(done[0] / n)
        return (vals.view(np.int64).reshape(hi - lo, n_types), resolve(loc_ids),
                np.diff(loc_off), labels)

    # Chunks are independent: decode them on all cores (numpy releases the GIL).
    parts = parallel_map(chunk, range(len(bounds) - 1))
    values = [pt[0] for pt in parts]
    stacks = [pt[1] for pt in parts]
    counts = [pt[2] for pt in parts]
    label_parts = [pt[3] for pt in parts if pt[3] is not None]
    del parts
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=offsets[1:])
    labels_all = None
    if label_parts:
        labels_all = (
            np.concatenate([o for o, _ in label_parts]),
            {f: np.concatenate([c[f] for _, c in label_parts]) for f in (1, 2, 3, 4)},
        )
    num_labels, num_units = _num_labels(labels_all, n, strings)
    return Samples(
        values=np.concatenate(values) if len(values) > 1 else values[0],
        offsets=offsets,
        locations=np.concatenate(stacks) if len(stacks) > 1 else stacks[0],
        num_labels=num_labels,
        num_label_units=num_units,
    )


_Labels = tuple[np.ndarray, dict[int, np.ndarray]]


def _decode_chunk_c(
    joined: bytes, lengths: np.ndarray, n_types: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, _Labels | None] | None:
    """The chunk decoded by the optional C loop, or None (no extension, or anything unusual:
    the numpy paths then decode it and name any problem precisely)."""
    c = speedups.module()
    if c is None:
        return None
    n = lengths.size
    loc_ids = np.empty(len(joined), dtype=np.uint64)  # each id takes at least one byte
    counts = np.empty(n, dtype=np.int64)
    vals = np.empty(n * n_types, dtype=np.uint64)
    labels = np.empty((len(joined) // 4 + 1, 5), dtype=np.int64)  # a label takes >= 4 bytes
    nlab = c.decode_samples(joined, np.ascontiguousarray(lengths, dtype=np.int64), n_types,
                            loc_ids, counts, vals, labels)
    if nlab < 0:
        return None
    loc_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=loc_off[1:])
    val_off = np.arange(n + 1, dtype=np.int64) * n_types
    cols = None
    if nlab:
        lab = labels[:nlab]
        cols = (lab[:, 0].copy(), {f: lab[:, f].copy() for f in (1, 2, 3, 4)})
    return loc_ids[: loc_off[-1]].copy(), loc_off, vals, val_off, cols


def _decode_chunk(
    joined: bytes, lengths: np.ndarray, source: str, first_sample: int, n_types: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, _Labels | None]:
    """Decode the concatenated bodies of a run of samples: locations, values, labels (CSR)."""
    n = lengths.size
    fast = _decode_chunk_c(joined, lengths, n_types)
    if fast is not None:
        return fast
    ends = np.cumsum(lengths)
    starts = ends - lengths
    try:
        # Fast path: every byte of a Sample is part of a varint (Go, pprof and most producers).
        buf = np.frombuffer(joined, dtype=np.uint8)
        tok = tokenize(buf, len(joined))
        if not tok.ends_at(ends[lengths > 0]).all():
            raise NotTokenizable("a sample does not end on a varint")
        first = tok.before[starts].astype(np.int64)
        stop = tok.before[ends].astype(np.int64)
        tf = walk_tokens(tok, first, stop, ends)
        loc_ids, loc_off = token_field_values(tok, tf, 1, n)
        vals, val_off = token_field_values(tok, tf, 2, n)
        labels = _label_columns_tokens(tok, tf)
    except NotTokenizable:
        # General path: walk the bytes field by field (fixed-width or bytes fields, damage).
        buf = np.frombuffer(joined + bytes(16), dtype=np.uint8)
        try:
            fields = walk_messages(buf, starts, ends)
            loc_ids, loc_off = repeated_varints(buf, fields, 1, n)
            vals, val_off = repeated_varints(buf, fields, 2, n)
        except WireError as e:
            raise ProfileError(
                f"malformed sample (in samples {first_sample}..{first_sample + n - 1}): {e}",
                source=source,
                slug="protobuf-invalid",
            ) from None
        labels = _label_columns_generic(buf, fields, source)
    return loc_ids, loc_off, vals, val_off, labels


class _LocationResolver:
    """Maps location ids of the file to indices, refusing ids that do not exist."""

    def __init__(self, known: np.ndarray, source: str) -> None:
        self.source = source
        self.known = known
        self.table: np.ndarray | None = None
        if known.size:
            max_id = int(known.max())
            if max_id <= 4 * known.size + 1024:
                # Ids are small (Go numbers them 1..n): one table lookup per stack entry.
                self.table = np.full(max_id + 2, -1, dtype=np.int32)
                self.table[known.astype(np.int64)] = np.arange(known.size, dtype=np.int32)
            else:
                self.order = np.argsort(known)
                self.sorted_ids = known[self.order]

    def _missing(self, loc_id: int) -> ProfileError:
        where = ", which does not exist" if self.known.size else \
            ", but the profile has no locations"
        return ProfileError(
            f"a sample references location id {loc_id}{where}",
            source=self.source,
            slug="unresolved-location",
        )

    def __call__(self, loc_ids: np.ndarray) -> np.ndarray:
        if loc_ids.size == 0:
            return np.zeros(0, dtype=np.int32)
        if not self.known.size:
            raise self._missing(int(loc_ids[0]))
        if self.table is not None:
            limit = np.uint64(self.table.size - 1)
            idx: np.ndarray = self.table[np.minimum(loc_ids, limit).astype(np.intp)]
            if (idx < 0).any():
                raise self._missing(int(loc_ids[idx < 0][0]))
            return idx
        pos = np.searchsorted(self.sorted_ids, loc_ids)
        pos_c = np.minimum(pos, self.sorted_ids.size - 1)
        ok = self.sorted_ids[pos_c] == loc_ids
        if not ok.all():
            raise self._missing(int(loc_ids[~ok][0]))
        return np.asarray(self.order[pos_c], dtype=np.int32)


def _label_columns_generic(
    buf: np.ndarray, fields: Fields, source: str
) -> tuple[np.ndarray, dict[int, np.ndarray]] | None:
    """(owner sample, {field number: column}) of every label, from the byte-level walk."""
    sel = fields.field == 3
    if not sel.any():
        return None
    if (fields.wire_type[sel] != 2).any():
        raise ProfileError(
            "malformed sample: label is not a message", source=source, slug="protobuf-invalid"
        )
    owner = fields.msg[sel]
    try:
        lf = walk_messages(buf, fields.value[sel].astype(np.int64), fields.end[sel])
    except WireError as e:
        raise ProfileError(
            f"malformed label: {e}", source=source, slug="protobuf-invalid"
        ) from None
    cols = {}
    for fno in (1, 2, 3, 4):
        m = lf.field == fno
        if ((lf.wire_type[m]) != 0).any():
            raise ProfileError("malformed label field", source=source, slug="protobuf-invalid")
        col = np.zeros(owner.size, dtype=np.int64)
        # Singular proto3 fields: the last occurrence wins; fields are in wire order.
        col[lf.msg[m]] = lf.value[m].view(np.int64)
        cols[fno] = col
    return owner, cols


def _label_columns_tokens(
    tok: Tokens, tf: TokenFields
) -> tuple[np.ndarray, dict[int, np.ndarray]] | None:
    """The same from the token walk (raises NotTokenizable where the fast path ends)."""
    sel = np.flatnonzero(tf.field == 3)
    if not sel.size:
        return None
    if (tf.wire_type[sel] != 2).any():
        raise NotTokenizable("label is not a message")
    owner = tf.msg[sel]
    lo, hi = tf.lo[sel], tf.hi[sel]
    byte_end = np.where(hi > lo, tok.ends[np.maximum(hi - 1, 0)] + 1, 0)
    lf = walk_tokens(tok, lo, hi, byte_end)
    cols = {}
    for fno in (1, 2, 3, 4):
        m = lf.field == fno
        if (lf.wire_type[m] != 0).any():
            raise NotTokenizable("label field is not a varint")
        col = np.zeros(owner.size, dtype=np.int64)
        col[lf.msg[m]] = tok.values[lf.lo[m]].view(np.int64)
        cols[fno] = col
    return owner, cols


def _first_per_owner(owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(owners, return_index=True)``, in linear time when ``owners`` is sorted.

    Labels are decoded in sample order, so it is; a sort (n log n) would cost more than the
    rest of the label handling on a profile of millions of samples.
    """
    if owners.size and not bool(np.all(owners[1:] >= owners[:-1])):
        return np.unique(owners, return_index=True)
    starts = np.flatnonzero(np.diff(owners, prepend=-1))
    return owners[starts], starts


def _num_labels(
    labels: tuple[np.ndarray, dict[int, np.ndarray]] | None, n: int, strings: _Strings
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Numeric labels by key: the first value per sample, and pprof's unit for each key."""
    if labels is None:
        return {}, {}
    owner, cols = labels
    key, sval, num, unit = cols[1], cols[2], cols[3], cols[4]
    nstr = len(strings)
    for arr, what in ((key, "label key"), (sval, "label value"), (unit, "label unit")):
        bad = (arr < 0) | (arr >= nstr)
        if bad.any():
            strings.get(int(arr[bad][0]), what)
    # pprof: a string label if str != 0; numeric only if num != 0 or num_unit != 0.
    numeric = (sval == 0) & ((num != 0) | (unit != 0))
    out: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for k in np.unique(key[numeric]):
        m = numeric & (key == k)
        name = strings.table[int(k)]
        first_samples, first_idx = _first_per_owner(owner[m])
        arr = np.zeros(n, dtype=np.int64)
        arr[first_samples] = num[m][first_idx]
        out[name] = arr
        unit_codes = unit[m]
        nz = unit_codes[unit_codes != 0]
        explicit = strings.table[int(nz[0])] if nz.size else ""
        units[name] = num_label_unit(name, explicit)
    return out, units
