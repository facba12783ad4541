"""Value formatting exactly as pprof prints it (internal/measurement).

Memory units are 1024-based (``kB`` is 1024 B); time units are ns, us, ms, s, hrs; any other
unit (``count``) prints as a bare number. ``memgate top`` uses these so that its output reads
like ``go tool pprof -top``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class _Unit:
    name: str
    aliases: tuple[str, ...]
    factor: float


@dataclass(frozen=True)
class _UnitType:
    units: tuple[_Unit, ...]
    default: _Unit

    def sniff(self, unit: str) -> _Unit | None:
        u = unit.lower()
        if len(u) > 2:
            u = u.removesuffix("s")
        for cand in self.units:
            if u in cand.aliases:
                return cand
        return None

    def auto_scale(self, value: float) -> _Unit | None:
        best: _Unit | None = None
        f = 0.0
        for u in self.units:
            if u.factor >= f and value / u.factor >= 1.0:
                f = u.factor
                best = u
        return best


_MEMORY = _UnitType(
    units=(
        _Unit("B", ("b", "byte"), 1.0),
        _Unit("kB", ("kb", "kbyte", "kilobyte"), float(1 << 10)),
        _Unit("MB", ("mb", "mbyte", "megabyte"), float(1 << 20)),
        _Unit("GB", ("gb", "gbyte", "gigabyte"), float(1 << 30)),
        _Unit("TB", ("tb", "tbyte", "terabyte"), float(1 << 40)),
        _Unit("PB", ("pb", "pbyte", "petabyte"), float(1 << 50)),
    ),
    default=_Unit("B", ("b", "byte"), 1.0),
)
_TIME = _UnitType(
    units=(
        _Unit("ns", ("ns", "nanosecond"), 1.0),
        _Unit("us", ("μs", "us", "microsecond"), 1e3),
        _Unit("ms", ("ms", "millisecond"), 1e6),
        _Unit("s", ("s", "sec", "second"), 1e9),
        _Unit("hrs", ("hour", "hr"), 3600e9),
    ),
    default=_Unit("s", (), 1e9),
)
_GCU = _UnitType(
    units=(
        _Unit("n*GCU", ("nanogcu",), 1e-9),
        _Unit("u*GCU", ("microgcu",), 1e-6),
        _Unit("m*GCU", ("milligcu",), 1e-3),
        _Unit("GCU", ("gcu",), 1.0),
        _Unit("k*GCU", ("kilogcu",), 1e3),
        _Unit("M*GCU", ("megagcu",), 1e6),
        _Unit("G*GCU", ("gigagcu",), 1e9),
        _Unit("T*GCU", ("teragcu",), 1e12),
        _Unit("P*GCU", ("petagcu",), 1e15),
    ),
    default=_Unit("GCU", (), 1.0),
)
_UNIT_TYPES = (_MEMORY, _TIME, _GCU)


def scale(value: float, from_unit: str, to_unit: str) -> tuple[float, str]:
    """pprof's ``measurement.Scale``: value in ``to_unit`` ("minimum"/"auto" pick one)."""
    if value < 0:
        v, u = scale(-value, from_unit, to_unit)
        return -v, u
    for ut in _UNIT_TYPES:
        fu = ut.sniff(from_unit)
        if fu is None:
            continue
        base = value * fu.factor
        if to_unit in ("minimum", "auto"):
            au = ut.auto_scale(base)
            if au is not None:
                return base / au.factor, au.name
            return base / ut.default.factor, ut.default.name
        tu = ut.sniff(to_unit)
        if tu is None:
            return base / ut.default.factor, ut.default.name
        return base / tu.factor, tu.name
    if to_unit in ("count", "sample", "unit", "minimum", "auto"):
        return float(value), ""
    return float(value), to_unit


def _go_fixed2(v: float) -> str:
    s = f"{v:.2f}"
    return s[:-3] if s.endswith(".00") else s


def scaled_label(value: float, from_unit: str, to_unit: str) -> str:
    """pprof's ``measurement.ScaledLabel``: "62.50MB", "1000kB", "0"."""
    v, u = scale(value, from_unit, to_unit)
    sv = _go_fixed2(v)
    if sv in ("0", "-0"):
        return "0"
    return sv + u


def percentage(value: int, total: int) -> str:
    """pprof's ``measurement.Percentage``."""
    ratio = abs(value / total) * 100 if total != 0 else 0.0
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return _go_g2(ratio) + "%"


def _go_g2(ratio: float) -> str:
    """Go's ``%5.2g``: like C's, with Go's exponent spelling (e-05)."""
    return f"{ratio:5.2g}"


def is_time_unit(unit: str) -> bool:
    return _TIME.sniff(unit) is not None


def select_output_unit(unit: str, values: list[int], total: int) -> str:
    """pprof's ``selectOutputUnit`` for ``-unit=minimum``: one unit for the whole report.

    ``values`` are the flat (or, where flat is zero, cum) values of the shown rows.
    """
    min_value = 0
    for v in values:
        a = abs(v)
        if a != 0 and (min_value == 0 or a < min_value):
            min_value = a
    max_value = abs(total)
    if min_value == 0:
        min_value = max_value
    _, min_unit = scale(min_value, unit, "minimum")
    _, max_unit = scale(max_value, unit, "minimum")
    out = min_unit
    if min_unit != max_unit and min_value * 100 < max_value:
        # Minimum and maximum values have different units. Scale minimum by 100 to use larger
        # units, allowing minimum value to be scaled down to 0.01, except for callgrind.
        _, out = scale(100 * min_value, unit, "minimum")
    return out or unit


_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}


def parse_size(text: str) -> int:
    """A size as the command line and the environment take it: ``1GiB``, ``512MiB``, ``100M``,
    ``100000`` -> bytes (1024-based, as pprof's units). ``ValueError`` with a one-line reason
    for anything else."""
    s = text.strip().lower().replace(" ", "")
    num = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(num):]
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"invalid size {text!r} (use e.g. 512MiB, 2GiB)") from None
    if unit not in _SIZE_UNITS or not value > 0 or value == float("inf") \
            or value * _SIZE_UNITS[unit] < 1:
        raise ValueError(f"invalid size {text!r} (use e.g. 512MiB, 2GiB)")
    return int(value * _SIZE_UNITS[unit])
