"""Decode pprof profiles: sniff the encoding, decompress within limits, parse, validate.

The input is recognised by its content, never its name (:mod:`memgate.profile.sniff`). The
protobuf runtime does the wire decoding of everything but the samples, which
:mod:`memgate.profile.samples` decodes in bulk, after :mod:`memgate.profile.prescan` has bounded
the counts. Validation follows pprof's ``CheckValid`` and ``postDecode``: every problem becomes
a :class:`~memgate.errors.ProfileError` naming the source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol, TypeVar

import numpy as np
from google.protobuf.message import DecodeError

from memgate.errors import LimitError, ProfileError
from memgate.profile import profile_pb2
from memgate.profile.gunzip import gunzip
from memgate.profile.limits import InputLimits, RunBudget, raise_with
from memgate.profile.model import Function, Locations, Mapping, Profile, ValueType
from memgate.profile.prescan import check_counts
from memgate.profile.samples import Strings, decode_samples
from memgate.profile.sniff import is_gzip, looks_like_legacy, looks_like_text


class _WithId(Protocol):
    @property
    def id(self) -> int: ...


_M = TypeVar("_M", bound=_WithId)
_T = TypeVar("_T")


def decode(
    data: bytes,
    source: str,
    limits: InputLimits,
    *,
    budget: RunBudget | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Profile:
    """Decode a profile from bytes within ``limits``; ``source`` names it in errors. The
    decompressed size counts against ``budget`` (the run's, if it has one);
    ``on_progress`` hears the fraction of the samples decoded."""
    if not data:
        raise ProfileError("empty input: not a profile", source=source, slug="empty")
    encoding = "protobuf"
    if is_gzip(data):
        data = gunzip(data, source, limits.max_decompressed_bytes)
        encoding = "gzip+protobuf"
        if not data:
            raise ProfileError(
                "empty input after decompression: not a profile", source=source, slug="empty"
            )
    elif len(data) > limits.max_decompressed_bytes:
        raise LimitError(
            f"input size exceeds the limit of {limits.max_decompressed_bytes} bytes "
            f"({raise_with('max_decompressed_bytes')})",
            source=source,
        )
    if budget is not None:
        budget.charge(len(data), source, limits)
    if looks_like_text(data) and looks_like_legacy(data):
        # Imported when needed: the legacy parsers compile their regular expressions.
        from memgate.profile.legacy import parse_legacy

        return parse_legacy(data, source)
    prof = decode_protobuf(data, source, limits, on_progress)
    if encoding != "protobuf":
        prof = replace(prof, encoding=encoding)
    return prof


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
    limits: InputLimits,
    on_progress: Callable[[float], None] | None = None,
) -> Profile:
    """Decode an uncompressed protobuf profile."""
    check_counts(data, source, limits)
    msg = _parse_message(data, source)
    strings = _string_table(msg, source)
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
    _check_sizes(msg, bool(sample_types), source, limits)
    mappings, mapping_index = _decode_mappings(msg, strings, source)
    functions, function_index = _decode_functions(msg, strings, source)
    locations = _decode_locations(msg, mapping_index, function_index, source)
    samples = decode_samples(msg, len(sample_types), locations, strings, source, on_progress)

    comments = tuple(strings.get(c, "comment") for c in msg.comment)
    return Profile(
        source=source, sample_types=sample_types, samples=samples, locations=locations,
        functions=functions, mappings=mappings, period_type=period_type, period=msg.period,
        time_nanos=msg.time_nanos, duration_nanos=msg.duration_nanos,
        default_sample_type=strings.get(msg.default_sample_type, "default_sample_type"),
        comments=comments, drop_frames=strings.get(msg.drop_frames, "drop_frames"),
        keep_frames=strings.get(msg.keep_frames, "keep_frames"),
        doc_url=strings.get(msg.doc_url, "doc_url"), encoding="protobuf",
    )


def _parse_message(data: bytes, source: str) -> profile_pb2.ProfileRaw:
    """Everything but the samples' bodies, parsed by the protobuf runtime."""
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
    return msg


def _string_table(msg: profile_pb2.ProfileRaw, source: str) -> Strings:
    if len(msg.string_table) == 0 or msg.string_table[0] != b"":
        if len(msg.string_table) == 0 and len(msg.sample) == 0 and len(msg.sample_type) == 0:
            raise ProfileError(
                "not a pprof profile: no string table, no samples",
                source=source,
                slug="protobuf-invalid",
            )
        raise ProfileError("string_table[0] must be ''", source=source, slug="bad-string-table")
    # Decoded one entry at a time: no list of bytes beside the list of str.
    return Strings(msg.string_table, source)


def _check_sizes(msg: profile_pb2.ProfileRaw, has_types: bool, source: str,
                 limits: InputLimits) -> None:
    n_samples = len(msg.sample)
    if n_samples > limits.max_samples:
        raise LimitError(
            f"{n_samples} samples exceed the limit of {limits.max_samples} "
            f"({raise_with('max_samples')})",
            source=source,
        )
    if n_samples and not has_types:
        raise ProfileError("missing sample type information", source=source, slug="no-sample-types")
    if len(msg.location) > limits.max_locations:
        raise LimitError(
            f"{len(msg.location)} locations exceed the limit of {limits.max_locations} "
            f"({raise_with('max_locations')})",
            source=source,
        )


def _decode_mappings(msg: profile_pb2.ProfileRaw, strings: Strings,
                     source: str) -> tuple[tuple[Mapping, ...], dict[int, int]]:
    """The mappings, and the index of each mapping id."""
    def mapping(m: profile_pb2.Mapping) -> Mapping:
        file, build_id = _texts(strings, m, "mapping", "filename", "build_id")
        # The numeric fields are named as in the model, and come in its order.
        return Mapping(file, build_id, m.memory_start, m.memory_limit, m.file_offset,
                       m.has_functions)

    return _by_id(msg.mapping, mapping, "mapping", source)


def _decode_functions(msg: profile_pb2.ProfileRaw, strings: Strings,
                      source: str) -> tuple[tuple[Function, ...], dict[int, int]]:
    """The functions, and the index of each function id."""
    def function(f: profile_pb2.Function) -> Function:
        name, system_name, filename = _texts(strings, f, "function", "name", "system_name",
                                             "filename")
        return Function(name=name, system_name=system_name, filename=filename,
                        start_line=f.start_line)

    return _by_id(msg.function, function, "function", source)


def _texts(strings: Strings, msg: _WithId, what: str, *fields: str) -> list[str]:
    """The strings that ``msg``'s string-index ``fields`` refer to; a bad index is reported
    as ``"<what> <id> <field>"``."""
    return [strings.get(getattr(msg, f), f"{what} {msg.id} {f}") for f in fields]


def _by_id(
    messages: Sequence[_M], convert: Callable[[_M], _T], what: str, source: str
) -> tuple[tuple[_T, ...], dict[int, int]]:
    """Messages with ids (checked: non-zero, unique) converted, and the index of each id."""
    ids = [m.id for m in messages]
    _check_ids(ids, what, source)
    return tuple(convert(m) for m in messages), {i: k for k, i in enumerate(ids)}


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
