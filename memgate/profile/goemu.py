"""Go's numeric and text semantics, reproduced exactly for the legacy parsers.

pprof's numbers come from Go: ``strconv.ParseInt``, int64 division and conversion, ``math.Exp``
as compiled for amd64, ``strings.TrimSpace``, ``bufio.ScanLines``, ``filepath.Base`` and the
character classes of Go's regexp syntax. Python's builtins differ from each of them at the
edges (Unicode digits and spaces, rounding in the last bit, octal prefixes), and memgate compares
its numbers with ``go tool pprof`` to the unit, so the legacy parsers use these instead.
"""

from __future__ import annotations

import math
import struct

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MASK = (1 << 64) - 1

# Go regexp classes spelled out for Python.
S = r"[\t\n\f\r ]"  # Go \s
NS = r"[^\t\n\f\r ]"  # Go \S
X = r"[0-9A-Fa-f]"  # [[:xdigit:]]
D = r"[0-9]"  # Go \d and [[:digit:]]

# Go's unicode.IsSpace, for strings.TrimSpace (Python's str.strip() also strips \x1c-\x1f).
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)



def trim_space(s: str) -> str:
    """Go's strings.TrimSpace."""
    return s.strip(_GO_SPACE)



def scan_lines(text: str, first_lineno: int) -> list[tuple[int, str]]:
    """Split like Go's ``bufio.ScanLines``: on ``\\n``, dropping one trailing ``\\r``.

    A final line without a newline is a line; an empty remainder after the last newline is not.
    Each line comes with its 1-based number in the file, for error messages.
    """
    pieces = text.split("\n")
    if pieces and pieces[-1] == "":
        pieces.pop()
    out = []
    for i, piece in enumerate(pieces):
        piece = piece.removesuffix("\r")
        out.append((first_lineno + i, piece))
    return out




class ParseIntError(ValueError):
    pass


def parse_int(s: str, base: int) -> int:
    """``strconv.ParseInt(s, base, 64)`` for the digit strings the regexes capture.

    Base 0 follows Go's prefix rule; with only decimal digits captured, a leading ``0`` means
    octal (so ``010`` is 8 and ``09`` is an error), as in pprof's Java sample parsing.
    """
    body = s[1:] if s[:1] in "+-" else s
    if base == 0:
        if len(body) > 1 and body[0] == "0":
            base, body = 8, body[1:]
        else:
            base = 10
    try:
        v = int(body, base)
    except ValueError:
        raise ParseIntError(f"invalid syntax: {s!r}") from None
    if s[:1] == "-":
        v = -v
    if not INT64_MIN <= v <= INT64_MAX:
        raise ParseIntError(f"value out of range: {s}")
    return v


def go_div(a: int, b: int) -> int:
    """int64 division truncating toward zero, wrapping like Go for MinInt64 / -1."""
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    if q > INT64_MAX:
        q -= 1 << 64
    return q


def float_to_int64(x: float) -> int:
    """Go's ``int64(x)``: truncation toward zero. Out of range is undefined in Go: refuse it."""
    if math.isnan(x) or not -9.223372036854775808e18 <= x < 9.223372036854775808e18:
        raise OverflowError(x)
    return int(x)


# Go's math.Exp as compiled for amd64 with FMA (math/exp_amd64.s, the ``avxfma`` path: every
# x86-64 CPU since 2013). libm's exp differs from it in the last bit for about 1 input in 6000,
# which after truncation moves an unsampled value by a byte; pprof's numbers are this code's.
# (pprof on arm64, or on x86-64 without FMA, can itself differ from this in the last bit.)
_EXP_LOG2E = 1.4426950408889634073599246810018920
_EXP_LN2U = 0.69314718055966295651160180568695068359375
_EXP_LN2L = 0.28235290563031577122588448175013436025525412068e-12
_EXP_OVERFLOW = 7.09782712893384e02
_EXP_TAYLOR = (
    2.4801587301587301587e-5,
    1.9841269841269841270e-4,
    1.3888888888888888889e-3,
    8.3333333333333333333e-3,
    4.1666666666666666667e-2,
    1.6666666666666666667e-1,
    0.5,
    1.0,
)


def fma(a: float, b: float, c: float) -> float:
    """a*b + c with a single rounding (math.fma exists only from Python 3.13).

    Exact in integers: finite floats are dyadic rationals, so the sum has a power-of-two
    denominator, and CPython's int / int true division is correctly rounded.
    """
    na, da = a.as_integer_ratio()
    nb, db = b.as_integer_ratio()
    nc, dc = c.as_integer_ratio()
    n, d = na * nb, da * db
    if d >= dc:
        n += nc * (d // dc)
    else:
        n, d = n * (dc // d) + nc, dc
    return n / d


def _pow2(biased_exponent: int) -> float:
    """The float whose bits are ``biased_exponent << 52``."""
    return float(struct.unpack("<d", struct.pack("<Q", (biased_exponent << 52) & UINT64_MASK))[0])


def go_exp(x: float) -> float:
    """Go's ``math.Exp`` on amd64 with FMA, operation for operation."""
    if math.isnan(x) or x == math.inf:
        return x
    if x == -math.inf:
        return 0.0
    if x > _EXP_OVERFLOW:
        return math.inf
    k = _EXP_LOG2E * x
    # CVTSD2SL: round to nearest even; out of int32 range gives the "integer indefinite".
    bx = round(k) if -2147483648.5 < k < 2147483647.5 else -(1 << 31)
    kf = float(bx)
    r = fma(-kf, _EXP_LN2U, x)
    r = fma(-kf, _EXP_LN2L, r)
    r *= 0.0625
    p = _EXP_TAYLOR[0]
    for c in _EXP_TAYLOR[1:]:
        p = fma(p, r, c)
    r *= p
    for _ in range(3):
        r *= r + 2.0
    r = fma(r, r + 2.0, 1.0)
    bx += 0x3FF
    if bx <= 0:
        if bx < -52:
            return 0.0
        return r * _pow2(bx + 0x3FE) * _pow2(1)
    if bx >= 0x7FF:
        return math.inf
    return r * _pow2(bx)


def scale_heap_sample(count: int, size: int, rate: int) -> tuple[int, int]:
    """pprof's ``scaleHeapSample``: undo Poisson sampling of one (count, size) pair.

    An allocation of average size ``s`` is sampled with probability ``1 - exp(-s/rate)``, so
    both values are divided by it. The float arithmetic and the truncation are Go's, so the
    results match pprof's to the unit. Raises OverflowError where Go's result is undefined.
    """
    if count == 0 or size == 0:
        return 0, 0
    if rate <= 1:
        # rate == 1: everything was collected; rate < 1: unknown, so no adjustment.
        return count, size
    avg_size = float(size) / float(count)
    denominator = 1 - go_exp(-avg_size / float(rate))
    if denominator == 0:
        raise OverflowError("scale is infinite")
    scale = 1 / denominator
    return float_to_int64(float(count) * scale), float_to_int64(float(size) * scale)



def go_filepath_base(path: str) -> str:
    """Go's ``filepath.Base`` on Unix."""
    if path == "":
        return "."
    path = path.rstrip("/")
    if path == "":
        return "/"
    return path.rsplit("/", 1)[-1]

