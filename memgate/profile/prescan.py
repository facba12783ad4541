"""Count a profile's repeated top-level fields before the protobuf runtime builds them.

The runtime allocates tens of bytes per element however small the element is on the wire, so
the counts are bounded first, on the raw bytes (:func:`check_counts`).
"""

from __future__ import annotations

from typing import NoReturn

import numpy as np

from memgate import speedups
from memgate.errors import LimitError
from memgate.profile.limits import InputLimits, raise_with

#: Top-level fields of a Profile that the protobuf runtime turns into one object each, and the
#: limit (a :class:`InputLimits` attribute) on how many of them a profile may have.
_COUNTED_FIELDS = {2: ("samples", "max_samples"), 3: ("mappings", "max_locations"),
                   4: ("locations", "max_locations"), 5: ("functions", "max_locations")}


def counts_bounded(data: bytes, limits: InputLimits) -> bool:
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


def check_counts(data: bytes, source: str, limits: InputLimits) -> None:
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
    if counts_bounded(data, limits):
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


def _check_strings(count: int, size: int, source: str, limits: InputLimits) -> None:
    if count > limits.max_strings:
        raise LimitError(f"more than {limits.max_strings} strings in the string table, the "
                         f"limit ({raise_with('max_strings')})", source=source)
    if size > limits.max_string_bytes:
        raise LimitError(f"the string table holds more than {limits.max_string_bytes} bytes, "
                         f"the limit ({raise_with('max_string_bytes')})", source=source)


def _over_limit(field: int, source: str, limits: InputLimits) -> NoReturn:
    what, attr = _COUNTED_FIELDS[field]
    raise LimitError(f"more than {getattr(limits, attr)} {what}, the limit ({raise_with(attr)})",
                     source=source)


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


def _other_cap(limits: InputLimits) -> int:
    """Top-level fields besides samples and locations (strings, types, ...): a backstop."""
    return 4 * limits.max_locations + limits.max_samples + 1024


