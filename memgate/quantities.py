"""Parsing and formatting of the quantities a policy and a report talk about.

memgate compares allocation *rates*: a profile's values divided by its duration. Policies
therefore state limits as rates ("1MiB/h", "100k/min") and reports print rates; both go
through this module so that what a user types and what a report prints use one vocabulary.

Conventions, chosen to match what pprof prints so that numbers can be copied between
``go tool pprof`` output and a policy file:

* Byte units are **1024-based**: ``B``, ``KiB``, ``MiB``, ``GiB``, ``TiB``, ``PiB``. The SI
  spellings ``kB``/``KB``, ``MB``, ``GB``, ``TB``, ``PB`` are accepted too and are *also*
  1024-based, because pprof scales bytes by 1024 and labels them ``kB``/``MB``/``GB``. A user
  who copies "12MB" from pprof's output therefore gets exactly what pprof meant.
* Counts (objects) use 1000-based suffixes ``k``/``K``, ``M``, ``G`` and an optional word
  ``objects``/``object``/``obj``; no suffix means a plain count.
* Time units: ``s``/``sec``, ``m``/``min``, ``h``, ``d``. Rates are stored per second.

Parse errors raise :class:`ValueError` with a message meant for a user; callers that know
where the text came from (a policy path, a command-line flag) wrap it into a
:class:`~memgate.errors.MemgateError` naming that source.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "AMOUNT_PATTERN",
    "DURATION_PATTERN",
    "PERCENT_PATTERN",
    "RATE_PATTERN",
    "TIME_UNITS",
    "Dimension",
    "Quantity",
    "choose_time_unit",
    "count_noun",
    "dimension_of_unit",
    "format_amount",
    "format_percent",
    "format_rate",
    "format_value",
    "parse_amount",
    "parse_duration",
    "parse_percent",
    "parse_rate",
    "unit_scale",
]

#: What a memory quantity measures: bytes, or a number of objects.
Dimension = Literal["bytes", "count"]

# ---------------------------------------------------------------------------------------------
# Grammar. The same regular expressions are used verbatim as ``pattern`` in
# memgate/schemas/policy.schema.json (a test asserts they are identical), so an editor that
# validates a policy against the schema accepts exactly what the loader accepts. They are
# therefore written in the common subset of Python and ECMA-262 regex syntax: no \Z, no
# named groups, [0-9] rather than \d (which is Unicode-aware in Python).
# ---------------------------------------------------------------------------------------------

_NUM: Final = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_BYTE_UNIT: Final = r"(?:B|[KMGTP]iB|[kKMGTP]B|bytes?)"
_COUNT_UNIT: Final = r"(?:[kKMG]?(?:\s*(?:objects?|obj))?)"
_TIME_UNIT: Final = r"(?:sec|min|s|m|h|d)"
# Longest alternatives first: durations are parsed part by part without backtracking.
_DURATION_UNIT: Final = r"(?:ms|sec|min|s|m|h|d)"

#: An amount: a number with an optional byte or count unit ("64KiB", "100k", "10 objects").
AMOUNT_PATTERN: Final = rf"^\s*{_NUM}\s*(?:{_BYTE_UNIT}|{_COUNT_UNIT})\s*$"
#: A rate: an amount per time unit ("1MiB/h", "1 MiB/h", "500/s", "2.5M/d", "10 objects/s").
RATE_PATTERN: Final = rf"^\s*{_NUM}\s*(?:{_BYTE_UNIT}|{_COUNT_UNIT})\s*/\s*{_TIME_UNIT}\s*$"
#: A duration: a bare number of seconds ("90") or unit-suffixed parts ("1h30m", "500ms").
DURATION_PATTERN: Final = rf"^\s*(?:{_NUM}|(?:{_NUM}\s*{_DURATION_UNIT}\s*)+)$"
#: A non-negative percentage with an explicit percent sign ("10%", "+12.5%").
PERCENT_PATTERN: Final = rf"^\s*\+?{_NUM}\s*%\s*$"

_AMOUNT_RE: Final = re.compile(rf"\s*(?P<num>{_NUM})\s*(?P<unit>{_BYTE_UNIT}|{_COUNT_UNIT})\s*")
_RATE_RE: Final = re.compile(
    rf"\s*(?P<num>{_NUM})\s*(?P<unit>{_BYTE_UNIT}|{_COUNT_UNIT})\s*/\s*(?P<time>{_TIME_UNIT})\s*"
)
_DURATION_PART_RE: Final = re.compile(rf"\s*(?P<num>{_NUM})\s*(?P<unit>{_DURATION_UNIT})\s*")
_PERCENT_RE: Final = re.compile(rf"\s*(?P<sign>[+-]?)\s*(?P<num>{_NUM})\s*(?P<pct>%?)\s*")

_KIB: Final = 1024.0

#: Multipliers of the byte units a user may type (all 1024-based, see the module docstring).
_BYTE_FACTORS: Final[dict[str, float]] = {
    "B": 1.0,
    "byte": 1.0,
    "bytes": 1.0,
    "KiB": _KIB,
    "kB": _KIB,
    "KB": _KIB,
    "MiB": _KIB**2,
    "MB": _KIB**2,
    "GiB": _KIB**3,
    "GB": _KIB**3,
    "TiB": _KIB**4,
    "TB": _KIB**4,
    "PiB": _KIB**5,
    "PB": _KIB**5,
}

#: Multipliers of the count suffixes (1000-based: objects are not powers of two).
_COUNT_FACTORS: Final[dict[str, float]] = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}

#: Seconds per time unit of a rate, canonical names first; the order is the one
#: :func:`choose_time_unit` tries.
TIME_UNITS: Final[dict[str, float]] = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_TIME_ALIASES: Final[dict[str, float]] = {**TIME_UNITS, "sec": 1.0, "m": 60.0}
_DURATION_FACTORS: Final[dict[str, float]] = {**_TIME_ALIASES, "ms": 1e-3}


@dataclass(frozen=True)
class Quantity:
    """A parsed amount or rate.

    ``value`` is in base units (bytes or objects), per second when the quantity is a rate, so
    that comparisons never need to know what the user typed; ``text`` keeps what the user typed
    so that messages can quote it back verbatim.
    """

    value: float
    dimension: Dimension
    text: str

    def __str__(self) -> str:
        return self.text


def _finite(value: float, text: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is too large")
    return value


def _split_unit(unit: str) -> tuple[Dimension, float]:
    """Dimension and multiplier of a unit matched by ``_BYTE_UNIT``/``_COUNT_UNIT``."""
    unit = unit.strip()
    if unit in _BYTE_FACTORS:
        return "bytes", _BYTE_FACTORS[unit]
    # A count unit: optional k/M/G suffix, then an optional "objects" word.
    word = re.search(r"\s*(?:objects?|obj)$", unit)
    if word is not None:
        unit = unit[: word.start()]
    return "count", _COUNT_FACTORS[unit]


def parse_amount(text: str) -> Quantity:
    """Parse an amount without a time unit: "64KiB", "1.5 MB", "100k", "10 objects".

    Used for thresholds that are not rates and by tests; the grammar is that of
    :func:`parse_rate` without the ``/time`` part.
    """
    m = _AMOUNT_RE.fullmatch(text)
    if m is None:
        if "/" in text and _RATE_RE.fullmatch(text):
            raise ValueError(f"{text!r} is a rate, expected an amount without '/time'")
        raise ValueError(
            f"{text!r} is not an amount: expected a number with an optional unit "
            "such as '64KiB', '1.5MB', '100k' or '10 objects'"
        )
    dimension, factor = _split_unit(m.group("unit"))
    value = _finite(float(m.group("num")) * factor, text)
    return Quantity(value=value, dimension=dimension, text=text.strip())


def parse_rate(text: str) -> Quantity:
    """Parse a rate ("1MiB/h", "512KiB/s", "100k/h", "10 objects/s") into a per-second value.

    A time unit is mandatory: "1MiB" alone is rejected rather than guessed, because the
    difference between per-second and per-hour is a factor of 3600.
    """
    m = _RATE_RE.fullmatch(text)
    if m is None:
        if "/" not in text and _AMOUNT_RE.fullmatch(text):
            raise ValueError(
                f"{text!r} has no time unit: write it as a rate such as '{text.strip()}/h'"
            )
        raise ValueError(
            f"{text!r} is not a rate: expected an amount per time unit such as "
            "'1MiB/h', '512KiB/s', '100k/min' or '10 objects/s' (time units: s, min, h, d)"
        )
    dimension, factor = _split_unit(m.group("unit"))
    per = _TIME_ALIASES[m.group("time")]
    value = _finite(float(m.group("num")) * factor / per, text)
    return Quantity(value=value, dimension=dimension, text=text.strip())


def parse_duration(text: str) -> float:
    """Parse a duration into seconds: "30s", "10m", "48h", "2d", "1.5h", "500ms", "1h30m", "90".

    A bare number means seconds. ``m`` is minutes (``ms`` is milliseconds). The result must be
    positive: durations divide profile values, so zero would be a division by zero later.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty duration: expected e.g. '30s', '10m', '48h' or '1h30m'")
    try:
        seconds = float(stripped) if re.fullmatch(_NUM, stripped) else _parse_parts(stripped)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a duration: expected e.g. '30s', '10m', '1.5h', '2d', "
            "'500ms', '1h30m' or a number of seconds"
        ) from None
    seconds = _finite(seconds, text)
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


def _parse_parts(text: str) -> float:
    total = 0.0
    pos = 0
    while pos < len(text):
        m = _DURATION_PART_RE.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(text)
        total += float(m.group("num")) * _DURATION_FACTORS[m.group("unit")]
        pos = m.end()
    return total


def parse_percent(value: str | float) -> float:
    """Parse a percentage: "10%", "+10%", "12.5 %", 10 or 10.0 -> 10.0.

    A bare numeric string ("10") is accepted for command-line flags; the policy schema
    insists on the ``%`` sign in strings so that a file is unambiguous. Negative values are
    rejected: a limit on an *increase* cannot be negative.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        shown = repr(value)
    else:
        m = _PERCENT_RE.fullmatch(value) if isinstance(value, str) else None
        if m is None:
            raise ValueError(f"{value!r} is not a percentage: expected e.g. '10%' or 10")
        number = float(m.group("num"))
        if m.group("sign") == "-" and number != 0:
            number = -number
        shown = repr(value)
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{shown} is not a finite percentage")
    if number < 0:
        raise ValueError(f"percentage {shown} must not be negative")
    return number


# ---------------------------------------------------------------------------------------------
# pprof units
# ---------------------------------------------------------------------------------------------

#: pprof unit strings (lower-cased) of byte-valued sample types, with their multiplier. pprof
#: itself scales all of these by 1024 (see the module docstring); so do we.
_PPROF_BYTE_UNITS: Final[dict[str, float]] = {
    "b": 1.0,
    "byte": 1.0,
    "bytes": 1.0,
    **{
        name: _KIB**power
        for power, names in (
            (1, ("kb", "kib", "kilobyte", "kilobytes", "kibibyte", "kibibytes")),
            (2, ("mb", "mib", "megabyte", "megabytes", "mebibyte", "mebibytes")),
            (3, ("gb", "gib", "gigabyte", "gigabytes", "gibibyte", "gibibytes")),
            (4, ("tb", "tib", "terabyte", "terabytes", "tebibyte", "tebibytes")),
            (5, ("pb", "pib", "petabyte", "petabytes", "pebibyte", "pebibytes")),
        )
        for name in names
    },
}

#: pprof unit strings of count-valued sample types. Go writes "count"; Java profilers and
#: hand-written profiles use "objects"; an empty unit is pprof's default and means a count.
_PPROF_COUNT_UNITS: Final = frozenset(
    {"", "count", "counts", "object", "objects", "allocation", "allocations"}
)


def dimension_of_unit(unit: str) -> Dimension | None:
    """Which memory dimension a pprof sample-type unit measures, or None if it is not memory.

    "bytes", "B", "kilobytes", "MB", ... -> "bytes"; "count", "objects", "" -> "count";
    anything else (time units such as "nanoseconds" or "seconds", "cycles", ...) -> None, so
    that a CPU or contention profile is never mistaken for a memory one. Case-insensitive,
    like pprof.
    """
    key = unit.strip().lower()
    if key in _PPROF_BYTE_UNITS:
        return "bytes"
    if key in _PPROF_COUNT_UNITS:
        return "count"
    return None


def unit_scale(unit: str) -> float:
    """Multiplier from a pprof sample-type unit to base units (bytes or objects).

    1 for "bytes", "count", ...; 1024 for "kilobytes"/"kB"; raises :class:`ValueError` for a
    unit :func:`dimension_of_unit` does not know, so that callers cannot silently mix scales.
    """
    key = unit.strip().lower()
    if key in _PPROF_BYTE_UNITS:
        return _PPROF_BYTE_UNITS[key]
    if key in _PPROF_COUNT_UNITS:
        return 1.0
    raise ValueError(f"unit {unit!r} is not a memory unit")


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------

_BYTE_STEPS: Final = (
    (1.0, "B"),
    (_KIB, "KiB"),
    (_KIB**2, "MiB"),
    (_KIB**3, "GiB"),
    (_KIB**4, "TiB"),
)
_COUNT_STEPS: Final = ((1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G"))


def _round3(x: float) -> float:
    """Round a non-negative number to three significant digits."""
    return float(f"{x:.3g}")


def _digits(x: float) -> str:
    """Three significant digits, keeping trailing zeros ("1.50", "12.3", "123")."""
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    # Fixed notation (never "1e-06"): formatted values must parse back with parse_amount.
    return f"{x:.{2 - math.floor(math.log10(x))}f}"


def format_amount(value: float, dimension: Dimension) -> str:
    """Format an amount for humans: "1.50 MiB", "512 B", "12.3k", "500", "-4.00 KiB".

    Bytes use 1024-based IEC suffixes, counts 1000-based k/M/G; three significant digits,
    except that a whole number of bytes or objects below the first suffix prints exactly.
    The sign is kept so that a decrease reads as one.
    """
    if math.isnan(value):
        return "nan"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    steps = _BYTE_STEPS if dimension == "bytes" else _COUNT_STEPS
    sep = " " if dimension == "bytes" else ""
    if math.isinf(magnitude):
        return f"{sign}inf{sep}{steps[0][1]}"
    if magnitude == 0:
        return f"0{sep}{steps[0][1]}"
    index = 0
    for i, (factor, _) in enumerate(steps):
        if magnitude >= factor:
            index = i
    scaled = _round3(magnitude / steps[index][0])
    # Rounding may carry into the next unit (999.6k -> 1000k): print 1.00M instead.
    base = steps[1][0]
    if scaled >= base and index + 1 < len(steps):
        index += 1
        scaled = _round3(magnitude / steps[index][0])
    if index == 0 and magnitude == int(magnitude):
        text = str(int(magnitude))
    else:
        text = _digits(scaled)
    return f"{sign}{text}{sep}{steps[index][1]}"


def count_noun(sample_type: str) -> str:
    """What a count-valued sample type counts, for "12.3k objects/s" or "40 contentions/s".

    Memory profiles count objects (``inuse_objects``, ``alloc_objects``, Java's
    ``alloc_in_new_tlab_objects``, ...); other profiles count what their type names: samples,
    contentions, goroutines.
    """
    name = sample_type.strip()
    if not name or "object" in name.lower():
        return "objects"
    return name


def format_rate(value_per_second: float, dimension: Dimension, time_unit: str,
                noun: str = "objects", per_profile: bool = False) -> str:
    """Format a per-second rate in the given time unit: "1.50 MiB/h", "12.3k objects/s".

    ``noun`` names what a count counts (:func:`count_noun`); bytes carry their own unit.
    ``per_profile``: raw values (``--no-normalize``, each profile counts as one second) read
    as amounts per profile, "12.3k objects/profile"; ``time_unit`` is then not used.
    """
    try:
        seconds = 1.0 if per_profile else TIME_UNITS[time_unit]
    except KeyError:
        raise ValueError(
            f"unknown time unit {time_unit!r}, expected one of {', '.join(TIME_UNITS)}"
        ) from None
    amount = format_amount(value_per_second * seconds, dimension)
    # "12.3k objects/s" reads as a count at a glance; bytes carry their unit already.
    word = f" {noun}" if dimension == "count" and noun else ""
    return f"{amount}{word}/{'profile' if per_profile else time_unit}"


def format_value(value: float, dimension: Dimension, per: str, time_unit: str = "s",
                 noun: str = "objects") -> str:
    """Format a value of a comparison by what it is (``Comparison.per``): a level (``per``
    empty: "12.0 MiB", "3.40k objects"), a rate per second shown in ``time_unit``
    ("1.50 MiB/min"), or an amount per run, per op or per profile ("64.0 KiB/op")."""
    if per == "s":
        return format_rate(value, dimension, time_unit, noun)
    if per == "profile":
        return format_rate(value, dimension, time_unit, noun, per_profile=True)
    amount = format_amount(value, dimension)
    word = f" {noun}" if dimension == "count" and noun else ""
    return f"{amount}{word}/{per}" if per else f"{amount}{word}"


def choose_time_unit(values_per_second: Iterable[float]) -> str:
    """Pick one time unit ("s", "min", "h" or "d") for a whole table of rates.

    Rule: the *smallest* unit in which the median of the non-zero magnitudes is at least 1.
    One unit per table keeps a column comparable at a glance; the median (not the minimum or
    maximum) keeps one huge or tiny outlier from pushing every other row into "0.00" or
    "12345k". Without non-zero values the answer is "s"; if even the per-day median is below 1
    the answer is "d".
    """
    magnitudes = [abs(v) for v in values_per_second if v != 0 and math.isfinite(v)]
    if not magnitudes:
        return "s"
    median = statistics.median(magnitudes)
    for unit, seconds in TIME_UNITS.items():
        if median * seconds >= 1:
            return unit
    return "d"


def format_percent(p: float | None) -> str:
    """Format a relative change: "+12.3%", "-4.0%", "+0.0%"; None (no baseline) -> "new".

    The sign is always shown so that a column of changes reads as increases and decreases;
    a change that rounds to zero prints "+0.0%" rather than a confusing "-0.0%".
    """
    if p is None:
        return "new"
    if math.isnan(p):
        return "nan"
    if math.isinf(p):
        return "+inf%" if p > 0 else "-inf%"
    if round(p, 1) == 0:
        return "+0.0%"
    return f"{p:+.1f}%"
