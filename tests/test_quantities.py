"""Parsing and formatting of rates, amounts, durations and percentages."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memgate.quantities import (
    Dimension,
    Quantity,
    choose_time_unit,
    count_noun,
    dimension_of_unit,
    format_amount,
    format_percent,
    format_rate,
    parse_amount,
    parse_duration,
    parse_percent,
    parse_rate,
    unit_scale,
)

KiB = 1024.0
MiB = 1024.0**2
GiB = 1024.0**3


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("10m", 600.0),
        ("10min", 600.0),
        ("48h", 172800.0),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("90", 90.0),
        ("2.5", 2.5),
        ("1h30m", 5400.0),
        ("1h 30m 15s", 5415.0),
        ("1d12h", 129600.0),
        ("10sec", 10.0),
        ("1m30s", 90.0),
        (" 45s ", 45.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("abc", "is not a duration"),
        ("10 hours", "is not a duration"),
        ("-5s", "is not a duration"),
        ("5x", "is not a duration"),
        ("h", "is not a duration"),
        ("1h30", "is not a duration"),
        ("0s", "must be positive"),
        ("0", "must be positive"),
        ("9" * 400, "too large"),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "per_second", "dimension"),
    [
        ("1MiB/h", MiB / 3600, "bytes"),
        ("1 MiB/h", MiB / 3600, "bytes"),
        ("1MiB / h", MiB / 3600, "bytes"),
        ("512KiB/s", 512 * KiB, "bytes"),
        ("64KiB/s", 64 * KiB, "bytes"),
        ("1GB/h", GiB / 3600, "bytes"),  # pprof's GB is 1024-based
        ("1kB/s", KiB, "bytes"),
        ("1KB/s", KiB, "bytes"),
        ("2MB/min", 2 * MiB / 60, "bytes"),
        ("1TiB/d", 1024.0**4 / 86400, "bytes"),
        ("1TB/d", 1024.0**4 / 86400, "bytes"),
        ("100B/s", 100.0, "bytes"),
        ("100 bytes/s", 100.0, "bytes"),
        ("1MiB/m", MiB / 60, "bytes"),
        ("1MiB/min", MiB / 60, "bytes"),
        ("500/s", 500.0, "count"),
        ("100k/h", 100e3 / 3600, "count"),
        ("100K/h", 100e3 / 3600, "count"),
        ("2.5M/d", 2.5e6 / 86400, "count"),
        ("1G/d", 1e9 / 86400, "count"),
        ("10 objects/s", 10.0, "count"),
        ("1 object/s", 1.0, "count"),
        ("10obj/min", 10 / 60, "count"),
        ("100k objects/h", 100e3 / 3600, "count"),
        ("0/s", 0.0, "count"),
        ("0B/s", 0.0, "bytes"),
        (".5MiB/s", 0.5 * MiB, "bytes"),
        ("3 MiB/sec", 3 * MiB, "bytes"),
    ],
)
def test_parse_rate(text: str, per_second: float, dimension: Dimension) -> None:
    q = parse_rate(text)
    assert isinstance(q, Quantity)
    assert q.value == pytest.approx(per_second)
    assert q.dimension == dimension
    assert q.text == str(q) == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1MiB", "has no time unit"),
        ("500", "has no time unit"),
        ("100k", "has no time unit"),
        ("1MiB/week", "is not a rate"),
        ("1MiB/ms", "is not a rate"),
        ("1Mib/h", "is not a rate"),  # bits are not bytes
        ("1mb/h", "is not a rate"),  # ambiguous case: rejected rather than guessed
        ("1m/h", "is not a rate"),  # milli-objects?
        ("-1MiB/h", "is not a rate"),
        ("MiB/h", "is not a rate"),
        ("1e3/s", "is not a rate"),
        ("1 MiB per hour", "is not a rate"),
        ("", "is not a rate"),
        ("1MiB/h/h", "is not a rate"),
        ("9" * 400 + "/s", "too large"),
    ],
)
def test_parse_rate_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rate(text)


@pytest.mark.parametrize(
    ("text", "value", "dimension"),
    [
        ("64KiB", 64 * KiB, "bytes"),
        ("1.5 MB", 1.5 * MiB, "bytes"),
        ("100k", 100e3, "count"),
        ("10 objects", 10.0, "count"),
        ("42", 42.0, "count"),
        ("3B", 3.0, "bytes"),
    ],
)
def test_parse_amount(text: str, value: float, dimension: Dimension) -> None:
    q = parse_amount(text)
    assert q.value == pytest.approx(value)
    assert (q.dimension, q.text) == (dimension, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [("1MiB/h", "is a rate"), ("lots", "is not an amount"), ("1 XB", "is not an amount")],
)
def test_parse_amount_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_amount(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10%", 10.0),
        ("+10%", 10.0),
        ("12.5 %", 12.5),
        ("0%", 0.0),
        ("10", 10.0),
        (10, 10.0),
        (2.5, 2.5),
        (0, 0.0),
        ("250%", 250.0),
    ],
)
def test_parse_percent(value: str | float, expected: float) -> None:
    assert parse_percent(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-10%", "must not be negative"),
        (-1, "must not be negative"),
        (-0.5, "must not be negative"),
        ("ten%", "is not a percentage"),
        ("10%%", "is not a percentage"),
        ("", "is not a percentage"),
        (math.nan, "not a finite percentage"),
        (math.inf, "not a finite percentage"),
        (True, "is not a percentage"),
    ],
)
def test_parse_percent_errors(value: str | float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_percent(value)


@pytest.mark.parametrize(
    ("unit", "dimension", "scale"),
    [
        ("bytes", "bytes", 1.0),
        ("byte", "bytes", 1.0),
        ("B", "bytes", 1.0),
        ("kilobytes", "bytes", KiB),
        ("kB", "bytes", KiB),
        ("KiB", "bytes", KiB),
        ("MB", "bytes", MiB),
        ("megabytes", "bytes", MiB),
        ("GB", "bytes", GiB),
        ("count", "count", 1.0),
        ("objects", "count", 1.0),
        ("", "count", 1.0),
        ("Count", "count", 1.0),
    ],
)
def test_memory_units(unit: str, dimension: Dimension, scale: float) -> None:
    assert dimension_of_unit(unit) == dimension
    assert unit_scale(unit) == scale


@pytest.mark.parametrize(
    "unit",
    ["nanoseconds", "microseconds", "milliseconds", "seconds", "ns", "s", "cycles", "request"],
)
def test_non_memory_units(unit: str) -> None:
    assert dimension_of_unit(unit) is None
    with pytest.raises(ValueError, match="not a memory unit"):
        unit_scale(unit)


@pytest.mark.parametrize(
    ("value", "dimension", "expected"),
    [
        (0, "bytes", "0 B"),
        (0, "count", "0"),
        (512, "bytes", "512 B"),
        (3.7, "bytes", "3.70 B"),
        (1023, "bytes", "1023 B"),
        (1024, "bytes", "1.00 KiB"),
        (1.5 * MiB, "bytes", "1.50 MiB"),
        (12.34 * MiB, "bytes", "12.3 MiB"),
        (123.4 * MiB, "bytes", "123 MiB"),
        (2 * GiB, "bytes", "2.00 GiB"),
        (3 * 1024.0**4, "bytes", "3.00 TiB"),
        (5000 * 1024.0**4, "bytes", "5000 TiB"),  # no unit beyond TiB
        (-4096, "bytes", "-4.00 KiB"),
        (-1.5 * MiB, "bytes", "-1.50 MiB"),
        (500, "count", "500"),
        (5, "count", "5"),
        (0.25, "count", "0.250"),
        (1e-6, "count", "0.00000100"),  # never exponent notation
        (12_345, "count", "12.3k"),
        (999, "count", "999"),
        (999.6e3, "count", "1.00M"),  # rounding carries into the next unit
        (2.5e6, "count", "2.50M"),
        (7e9, "count", "7.00G"),
        (-12_345, "count", "-12.3k"),
    ],
)
def test_format_amount(value: float, dimension: Dimension, expected: str) -> None:
    assert format_amount(value, dimension) == expected


@pytest.mark.parametrize(
    ("per_second", "dimension", "unit", "expected"),
    [
        (1.5 * MiB / 3600, "bytes", "h", "1.50 MiB/h"),
        (12_300, "count", "s", "12.3k objects/s"),
        (0, "bytes", "s", "0 B/s"),
        (0, "count", "min", "0 objects/min"),
        (100e3 / 3600, "count", "h", "100k objects/h"),
        (1.0, "count", "d", "86.4k objects/d"),
        (-MiB / 60, "bytes", "min", "-1.00 MiB/min"),
    ],
)
def test_format_rate(per_second: float, dimension: Dimension, unit: str, expected: str) -> None:
    assert format_rate(per_second, dimension, unit) == expected


def test_format_rate_rejects_unknown_time_unit() -> None:
    with pytest.raises(ValueError, match="unknown time unit 'week'"):
        format_rate(1.0, "bytes", "week")


@pytest.mark.parametrize(
    ("values", "unit"),
    [
        ([], "s"),
        ([0.0, 0.0], "s"),
        ([5.0, 10.0, 20.0], "s"),
        ([0.5, 0.2, 0.1], "min"),  # median 0.2/s = 12/min
        ([0.001, 0.002, 0.003], "h"),  # median 0.002/s = 7.2/h
        ([1e-5, 2e-5, 3e-5], "d"),  # median 2e-5/s = 1.7/d
        ([1e-9], "d"),  # below 1/d everywhere: the largest unit
        ([0.01, 0.02, 1000.0], "min"),  # one outlier does not decide
        ([-0.5, 0.0, -0.2, 0.1], "min"),  # magnitudes; zeros ignored
        ([1.0 / 60], "min"),  # exactly 1/min
    ],
)
def test_choose_time_unit(values: list[float], unit: str) -> None:
    assert choose_time_unit(values) == unit


def test_choose_time_unit_accepts_any_iterable() -> None:
    assert choose_time_unit(v for v in (0.5, 0.2)) == "min"


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (None, "new"),
        (12.34, "+12.3%"),
        (-4.0, "-4.0%"),
        (0.0, "+0.0%"),
        (-0.01, "+0.0%"),
        (1234.56, "+1234.6%"),
        (math.inf, "+inf%"),
        (-100.0, "-100.0%"),
    ],
)
def test_format_percent(p: float | None, expected: str) -> None:
    assert format_percent(p) == expected


@given(
    st.floats(min_value=0.0, max_value=1e15, allow_nan=False),
    st.sampled_from(["bytes", "count"]),
)
def test_format_amount_round_trips_within_three_digits(value: float, dimension: Dimension) -> None:
    text = format_amount(value, dimension)
    parsed = parse_amount(text)
    assert parsed.dimension == dimension
    assert parsed.value == pytest.approx(value, rel=5e-3, abs=5e-3)


@given(
    st.floats(min_value=1e-6, max_value=1e12, allow_nan=False),
    st.sampled_from(["bytes", "count"]),
    st.sampled_from(["s", "min", "h", "d"]),
)
def test_format_rate_round_trips(per_second: float, dimension: Dimension, unit: str) -> None:
    parsed = parse_rate(format_rate(per_second, dimension, unit))
    assert parsed.dimension == dimension
    assert parsed.value == pytest.approx(per_second, rel=5e-3, abs=5e-3 / 86400)


@pytest.mark.parametrize(("sample_type", "noun"), [
    ("inuse_objects", "objects"), ("alloc_objects", "objects"), ("objects", "objects"),
    ("alloc_in_new_tlab_objects", "objects"), ("", "objects"),
    ("contentions", "contentions"), ("samples", "samples"), ("goroutine", "goroutine"),
])
def test_count_noun(sample_type: str, noun: str) -> None:
    assert count_noun(sample_type) == noun
    assert format_rate(1500, "count", "s", count_noun(sample_type)) == f"1.50k {noun}/s"
    assert format_rate(1500, "bytes", "s", count_noun(sample_type)) == "1.46 KiB/s"
    # Raw values (--no-normalize): an amount per profile, whatever the table's time unit.
    assert format_rate(1500, "count", "h", count_noun(sample_type), per_profile=True) == \
        f"1.50k {noun}/profile"
