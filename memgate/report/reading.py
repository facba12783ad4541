"""Reading a ``memgate check`` JSON report back: ``report merge`` and ``baseline accept``.

A report is data, maybe a CI artifact from a fork: it is read with a size bound, must be UTF-8
JSON of a known format, and what is taken from it is checked before it is used.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Final

from memgate.baseline.names import one_line, validate_component_name
from memgate.errors import MemgateError, ReportError

_SHA_RE: Final = re.compile(r"[0-9a-f]{64}")


def _inside_cwd(path: str) -> bool:
    """Whether ``path`` (symlinks resolved) is in the current directory or below it."""
    if "\x00" in path:
        return False
    try:
        cwd = Path.cwd().resolve()
        return Path(path).resolve().is_relative_to(cwd)
    except (OSError, RuntimeError, ValueError):
        return False


def read_report(path: Path) -> tuple[str | None, list[tuple[str, str, float | None]]]:
    """The component and the candidate inputs ``(path, sha256, duration)`` of a check report."""
    src = str(path)
    from memgate.profile.decode import read_report_bytes

    try:
        data = json.loads(read_report_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        raise ReportError("no such file", source=src, slug="not-found") from None
    except OSError as e:
        raise ReportError(f"cannot read: {e.strerror or e}", source=src) from None
    except UnicodeDecodeError:
        raise ReportError("is not UTF-8 JSON", source=src) from None
    except json.JSONDecodeError as e:
        raise ReportError(f"is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}",
                          source=src) from None
    except RecursionError:
        raise ReportError("is not valid JSON: nested too deeply", source=src) from None
    if not isinstance(data, dict):
        raise ReportError("is not a memgate check report (expected a JSON object)", source=src)
    component = data.get("component")
    if component is not None:
        if not isinstance(component, str):
            raise ReportError("\"component\" must be a string", source=src)
        validate_component_name(component)
    inputs = data.get("inputs")
    candidates = inputs.get("candidate") if isinstance(inputs, dict) else None
    if not isinstance(candidates, list) or not candidates:
        raise ReportError("has no candidate profiles (\"inputs\": {\"candidate\": [...]}); is "
                          "it the JSON report of `memgate check`?", source=src)
    out: list[tuple[str, str, float | None]] = []
    for i, c in enumerate(candidates):
        where = f"inputs.candidate[{i}]"
        if not isinstance(c, dict):
            raise ReportError(f"{where} must be an object", source=src)
        p, sha, dur = c.get("path"), c.get("sha256"), c.get("duration_seconds")
        if not isinstance(p, str) or not p:
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
        if not isinstance(sha, str) or not _SHA_RE.fullmatch(sha):
            raise ReportError(f"{where}.sha256 must be 64 lowercase hex digits", source=src)
        if dur is not None and (isinstance(dur, bool) or not isinstance(dur, (int, float))
                                or not math.isfinite(dur) or dur <= 0):
            raise ReportError(f"{where}.duration_seconds must be a positive number or null",
                              source=src)
        out.append((p, sha, None if dur is None else float(dur)))
    return component, out


def reported_baseline(path: Path) -> frozenset[str] | None:
    """The sha256 of the baseline profiles a check report compared against (None: the report
    does not say; an empty set: it had none, as with --allow-missing-baseline)."""
    from memgate.profile.decode import read_report_bytes

    try:
        data = json.loads(read_report_bytes(path).decode("utf-8"))
        entries = data["inputs"]["baseline"]
        return frozenset(str(e["sha256"]) for e in entries)
    except (OSError, ValueError, KeyError, TypeError, MemgateError):
        return None

