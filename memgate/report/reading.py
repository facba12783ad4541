"""Reading a ``memgate check`` JSON report back: ``report merge`` and ``baseline accept``.

A report is data, maybe a CI artifact from a fork, so it is read in one way for both: at most
``MEMGATE_MAX_REPORT_BYTES``, UTF-8, JSON, of a format this memgate knows
(:func:`read_report_json`). ``report merge`` then needs the whole report and validates it
against the report schema (:func:`load_report`); ``accept`` needs only the component and the
candidate profiles, and checks those fields one by one (:func:`read_candidates`), so that a
report trimmed to them (as a script may write one) can still be accepted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from memgate import schemas
from memgate.baseline.names import one_line, validate_component_name
from memgate.errors import ReportError
from memgate.profile.limits import InputLimits, read_report_bytes

#: The report format this memgate reads (and ``check`` writes).
REPORT_FORMAT: Final = 1


def read_report_json(path: str | Path, limits: InputLimits) -> object:
    """The JSON value of a report file, read once: size-bounded, UTF-8, JSON, and if it is an
    object with a ``format``, of the one this memgate reads. :class:`ReportError` otherwise."""
    src = str(path)
    try:
        data = json.loads(read_report_bytes(path, limits).decode("utf-8"))
    except FileNotFoundError:
        raise ReportError("no such file", source=src, slug="not-found") from None
    except OSError as e:
        raise ReportError(f"cannot read: {e.strerror or e}", source=src) from None
    except UnicodeDecodeError:
        raise ReportError("not a memgate JSON report: not UTF-8 text", source=src) from None
    except json.JSONDecodeError as e:
        raise ReportError(f"not a memgate JSON report: invalid JSON (line {e.lineno} "
                          f"column {e.colno}: {e.msg})",
                          source=src) from None
    except RecursionError:
        raise ReportError("not a memgate JSON report: nested too deeply", source=src) from None
    if isinstance(data, dict) and "format" in data and data["format"] != REPORT_FORMAT:
        raise ReportError(f"report format {data['format']!r} is not supported by this memgate "
                          f"(it reads format {REPORT_FORMAT})", source=src)
    return data


def load_report(path: str, limits: InputLimits) -> dict[str, Any]:
    """A whole ``memgate check`` report, validated against the report schema (``merge``)."""
    report = _validated(read_report_json(path, limits), path)
    if report["verdict"] is None:
        raise ReportError("is a `memgate diff` report (no verdict); merge reads reports of "
                          "`memgate check`", source=path)
    return report


def _validated(data: object, path: str) -> dict[str, Any]:
    """``data`` if it is a report as the report schema describes it; the first problem (and
    how many more) as a :class:`ReportError` otherwise."""
    errors = schemas.errors("report", data)
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        msg = " ".join(str(first.message).split())
        if len(msg) > 160:
            msg = msg[:157] + "..."
        raise ReportError(f"not a valid memgate report: at {where}: {msg}{more}", source=path)
    return cast(dict[str, Any], data)  # the schema's "type": "object"


@dataclass(frozen=True)
class Candidates:
    """What ``accept`` takes from a report."""

    component: str | None
    #: ``(path, sha256, duration_seconds)`` of each candidate profile.
    profiles: tuple[tuple[str, str, float | None], ...]
    #: The sha256 of the baseline profiles the check compared against (an empty set: it had
    #: none, as with --allow-missing-baseline).
    checked_against: frozenset[str]


def read_candidates(path: Path, limits: InputLimits) -> Candidates:
    """The component and the candidate profiles of a check report (``accept``): the report
    validated against the report schema, then what the schema cannot say checked here."""
    src = str(path)
    data = _validated(read_report_json(path, limits), src)
    component = data["component"]
    if component is not None:
        validate_component_name(component)
    candidates = data["inputs"]["candidate"]
    if not candidates:
        raise ReportError("has no candidate profiles (\"inputs\": {\"candidate\": [...]}); is "
                          "it the JSON report of `memgate check`?", source=src)
    profiles = tuple(_candidate(c, f"inputs.candidate[{i}]", src)
                     for i, c in enumerate(candidates))
    return Candidates(component, profiles, _checked_against(data["inputs"]))


def _candidate(c: dict[str, Any], where: str, src: str) -> tuple[str, str, float | None]:
    """One candidate entry's path (one accept may read), sha256 and duration."""
    p, sha, dur = c["path"], c["sha256"], c["duration_seconds"]
    if not p:
        raise ReportError(f"{where}.path must be a non-empty string", source=src)
    if p == "-" or ("://" in p and not Path(p).exists()):
        raise ReportError(f"{where}: {p} was read from standard input or a URL and cannot "
                          "be read again; save the profile to a file and check that",
                          source=src)
    if not _inside_cwd(p):
        # A report is data (a CI artifact, maybe from a fork): it must not make accept read
        # files elsewhere on the machine (~/.ssh/..., /etc/...) into a baseline.
        raise ReportError(f"{where}.path {one_line(repr(p), 80)} is outside the current "
                          "directory; accept reads candidate profiles only from the "
                          "directory it runs in (keep the profiles inside it, and run "
                          "accept where `memgate check` ran)",
                          source=src, slug="path-outside")
    if dur is not None and (not math.isfinite(dur) or dur <= 0):
        raise ReportError(f"{where}.duration_seconds must be a positive number or null",
                          source=src)
    return p, sha, None if dur is None else float(dur)


def _checked_against(inputs: dict[str, Any]) -> frozenset[str]:
    return frozenset(str(e["sha256"]) for e in inputs["baseline"])


def _inside_cwd(path: str) -> bool:
    """Whether ``path`` (symlinks resolved) is in the current directory or below it."""
    if "\x00" in path:
        return False
    try:
        cwd = Path.cwd().resolve()
        return Path(path).resolve().is_relative_to(cwd)
    except (OSError, RuntimeError, ValueError):
        return False
