"""Bounds on what one input, and one run, may make memgate allocate.

A 1 KB gzip file can expand to gigabytes and a hostile profile can declare millions of
locations or strings, so every reader of untrusted bytes takes an :class:`InputLimits`; a
:class:`RunBudget` caps what all the profiles of one command decompress to together. Both
belong to the run's :class:`memgate.config.Config`, built once from the environment and the
command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from memgate.errors import LimitError, ProfileError, ReportError
from memgate.units import parse_size

GiB = 1 << 30


def _env_int(environ: Mapping[str, str], name: str, default: int, size: bool = False) -> int:
    """A positive limit from the environment: a count, or (``size``) a size with the
    command line's syntax (``100M``, ``2GiB``, a plain number of bytes)."""
    raw = environ.get(name)
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
class InputLimits:
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
    def from_env(cls, environ: Mapping[str, str]) -> InputLimits:
        """The defaults, then the environment variables of ``environ``."""
        return cls(
            max_decompressed_bytes=_env_int(environ, "MEMGATE_MAX_DECOMPRESSED_BYTES", GiB,
                                            size=True),
            max_samples=_env_int(environ, "MEMGATE_MAX_SAMPLES", 20_000_000),
            max_locations=_env_int(environ, "MEMGATE_MAX_LOCATIONS", 5_000_000),
            max_strings=_env_int(environ, "MEMGATE_MAX_STRINGS", 4_000_000),
            max_string_bytes=_env_int(environ, "MEMGATE_MAX_STRING_BYTES", 256 << 20,
                                      size=True),
            max_total_bytes=_env_int(environ, "MEMGATE_MAX_TOTAL_BYTES", 2 * GiB, size=True),
            max_report_bytes=_env_int(environ, "MEMGATE_MAX_REPORT_BYTES", 48 << 20,
                                      size=True),
        )


#: The flag and the environment variable that raise each limit, for messages and ``--help``.
LIMIT_FLAGS = {
    "max_decompressed_bytes": ("--max-decompressed", "MEMGATE_MAX_DECOMPRESSED_BYTES"),
    "max_samples": ("--max-samples", "MEMGATE_MAX_SAMPLES"),
    "max_locations": ("--max-locations", "MEMGATE_MAX_LOCATIONS"),
    "max_strings": ("--max-strings", "MEMGATE_MAX_STRINGS"),
    "max_string_bytes": ("--max-string-bytes", "MEMGATE_MAX_STRING_BYTES"),
    "max_total_bytes": ("--max-total", "MEMGATE_MAX_TOTAL_BYTES"),
}


def read_report_bytes(path: str | Path, limits: InputLimits) -> bytes:
    """The bytes of a JSON report file, at most ``max_report_bytes`` of any kind of file.

    ``OSError`` as usual; a larger input is a :class:`ReportError` naming the variable.
    """
    from memgate.fs import ReadLimitExceeded, read_limited

    limit = limits.max_report_bytes
    try:
        return read_limited(path, limit)
    except ReadLimitExceeded:
        raise ReportError(f"larger than the limit of {limit} bytes for a JSON report (raise "
                          "it with MEMGATE_MAX_REPORT_BYTES)", source=str(path),
                          slug="limit-exceeded") from None


def raise_with(attr: str) -> str:
    flag, env = LIMIT_FLAGS[attr]
    return f"raise it with {flag} or {env}"


class RunBudget:
    """The decompressed bytes the profiles of one command have used so far, against
    ``InputLimits.max_total_bytes``.

    Mutable state of one run: the run's :class:`~memgate.config.Config` holds it (the CLI and
    the Action build one per command) and the readers pass it to
    :func:`~memgate.profile.decode.decode`; decoding without one is not counted.
    """

    def __init__(self) -> None:
        self.used = 0

    def charge(self, size: int, source: str, limits: InputLimits) -> None:
        self.used += size
        if self.used > limits.max_total_bytes:
            raise LimitError(
                f"the profiles of this run decompress to more than {limits.max_total_bytes} "
                f"bytes together ({raise_with('max_total_bytes')})", source=source)

    def restart(self) -> None:
        """Forget what the run decoded so far (it starts over with new settings, or reads
        the next of several components, and the profiles counted so far are gone)."""
        self.used = 0
