"""The manifest of a baseline: its format, its schema, how it is written, its summary.

``baselines/<component>/manifest.json`` (and a remote version's manifest object) says which
profiles a baseline holds, why, and which functions dominate them. It is written to be read in
a pull-request diff, so its rendering is deterministic (:func:`render_manifest`), and it is
checked in two steps shared by every store: :func:`decode_manifest` (bytes to a JSON object)
and :func:`validate_manifest` (the format version, then the schema, once).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from memgate import __version__, escape, schemas
from memgate.baseline.names import one_line
from memgate.profile.model import Profile

#: The manifest format this memgate reads and writes. Another value is refused, never guessed.
FORMAT_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
#: Functions per sample type in the manifest summary: enough to see what a new baseline
#: changes in a pull-request diff, few enough to keep the diff readable.
SUMMARY_TOP: Final = 10
#: The largest manifest read: a real one is a few kilobytes (ten functions per sample type).
MAX_MANIFEST_BYTES: Final = 16 << 20

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Summary:
    """The manifest's summary of a baseline's profiles (:func:`summarize`)."""

    #: ``per_second`` (every profile has a duration) or ``per_profile``.
    unit: str
    #: Per sample type: the top functions, ``[{function, flat_rate, cum_rate}]``.
    rows: dict[str, list[dict[str, object]]]
    #: Per sample type: the mean total.
    totals: dict[str, float]
    #: Per sample type: level, flow or growth, which says what the numbers are (a level in
    #: base units; a flow or growth per second, or per profile).
    kinds: dict[str, str]

    def fields(self) -> dict[str, object]:
        """The manifest's keys of the summary, as JSON values."""
        return {"summary_unit": self.unit, "summary": self.rows,
                "summary_totals": self.totals, "summary_kinds": self.kinds}


def types_of(prof: Profile) -> tuple[tuple[str, str], ...]:
    """A profile's ``((type, unit), ...)``, as a manifest entry lists them."""
    return tuple((st.type, st.unit) for st in prof.sample_types)


def describe_types(types: Sequence[Sequence[str]]) -> str:
    """``type/unit, ...`` for messages."""
    return ", ".join(f"{t}/{u}" for t, u in types) or "no sample types"


def _round(x: float) -> float:
    """Six significant digits: stable across platforms and short in a diff; never ``-0.0``."""
    r = float(f"{x:.6g}")
    return 0.0 if r == 0 else r


def baseline_schema() -> dict[str, Any]:
    """The manifest JSON Schema (Draft 2020-12), as a fresh dict the caller may modify."""
    return schemas.schema("baseline")


def render_manifest(manifest: dict[str, object]) -> str:
    """Manifest JSON as committed: sorted keys, indented, newline at the end.

    Deterministic so that an update changes only the lines whose content changed, which keeps
    the pull-request diff a reviewer reads small. One exception to the sorting: a summary row
    starts with its ``function``, so that the diff shows which function a changed rate belongs
    to (sorted, the name came last and git paired the rates of unrelated rows).
    """
    # escape.json_text: control and format characters of a name (a bidi override hides text
    # in a review) appear as \u escapes in the committed file; the data is the same.
    return escape.json_dumps(_ordered(manifest), indent=2, allow_nan=True) + "\n"


def _ordered(value: object) -> object:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (k != "function", str(k)))
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value



def decode_manifest(raw: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """The manifest's JSON object, or None and the one problem that prevents reading it."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, [f"{MANIFEST} is not UTF-8"]
    except json.JSONDecodeError as e:
        return None, [f"{MANIFEST} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}"]
    except RecursionError:
        return None, [f"{MANIFEST} is not valid JSON: nested too deeply"]
    if not isinstance(data, dict):
        return None, [f"{MANIFEST} must hold a JSON object"]
    return data, []


def validate_manifest(data: dict[str, Any]) -> list[str]:
    """The problems of a decoded manifest: an unknown format version (the one problem then:
    the schema is the format's), else every schema violation, in document order."""
    fmt = data.get("format")
    if fmt != FORMAT_VERSION or isinstance(fmt, bool):
        if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > FORMAT_VERSION:
            return [f"{MANIFEST} has format {fmt}, written by a newer memgate; this memgate "
                    f"{__version__} reads format {FORMAT_VERSION}: upgrade memgate"]
        return [f"{MANIFEST} has unknown format {one_line(json.dumps(fmt), 40)}; this memgate "
                f"reads format {FORMAT_VERSION}"]
    problems = []
    for err in schemas.errors("baseline", data):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                        for p in err.absolute_path).lstrip(".")
        problems.append(f"{MANIFEST}: {where or '(top level)'}: {one_line(err.message)}")
    return problems


def profile_entry(sha: str, prof: Profile, original_name: str, duration: float | None,
                  origin: dict[str, object] | None) -> dict[str, object]:
    """The manifest entry of one stored profile (named by its content's sha256)."""
    return {
        "file": f"{sha[:16]}.pb.gz",
        "sha256": sha,
        "original_name": original_name,
        "sample_types": [{"type": t, "unit": u} for t, u in types_of(prof)],
        "period_type": {"type": prof.period_type.type, "unit": prof.period_type.unit},
        "period": prof.period,
        "duration_seconds": duration,
        **({"source": origin} if origin else {}),
    }


def build_manifest(component: str, *, created: str, updated: str, git_commit: str | None,
                   reason: str, approved_by: str | None, entries: list[dict[str, object]],
                   summary: Summary) -> dict[str, object]:
    """A new manifest, checked against the schema before anything is written."""
    manifest: dict[str, object] = {
        "format": FORMAT_VERSION,
        "component": component,
        "memgate_version": __version__,
        "created": created,
        "updated": updated,
        "git_commit": git_commit,
        "reason": reason,
        "approved_by": approved_by,
        "profiles": entries,
        **summary.fields(),
    }
    rendered = json.loads(render_manifest(manifest))
    errors = list(schemas.validator("baseline").iter_errors(rendered))
    if errors:  # pragma: no cover - a bug, not a user error
        raise AssertionError(f"manifest does not match its schema: {errors[0]}")
    return manifest


def summary_problem(manifest: dict[str, Any], decoded: Sequence[Profile],
                    durations: Sequence[float | None]) -> str | None:
    """Whether the recorded summary is the one the profiles give (``verify``)."""
    from_profiler = any("source" in e for e in manifest["profiles"])
    recomputed = json.loads(json.dumps(summarize(decoded, durations, from_profiler).fields()))
    recorded = {k: manifest.get(k) for k in recomputed}
    if recomputed != recorded:
        return (f"{MANIFEST}: the summary does not match the profiles (was it edited by hand? "
                "`memgate baseline update` rewrites it)")
    return None


def summarize(profiles: Sequence[Profile], durations: Sequence[float | None],
              in_use_levels: bool = False) -> Summary:
    """Top functions per sample type by mean flat value, the gate's numbers for the profiles.

    Each run's values go through :mod:`memgate.rates` as the gate's baseline side does
    (:func:`memgate.compare.compare`): in base units (bytes, objects), levels as they are,
    flows per second of the run's duration, in-use growth of a delta profile per second of
    its own duration ("per_second", when every profile has a duration); without a duration
    everything per profile ("per_profile"). ``in_use_levels``: the profiles come from a
    continuous profiler, whose in-use values are levels although they have a duration (as
    ``check`` reads such a baseline).
    """
    from memgate.compare import RunInput, one_side, quantity_kinds
    from memgate.table import aggregate

    per_second = all(d is not None and d > 0 for d in durations)
    runs = [RunInput(path=p.source, sha256="", duration_seconds=d, duration_source="store",
                     profile=p, in_use_levels=in_use_levels)
            for p, d in zip(profiles, durations)]
    # Not strict: a baseline that mixes snapshots and delta profiles is stored (the gate
    # refuses to compare it), its in-use values summarized as levels.
    kinds = quantity_kinds(runs, strict=False)
    names, rates = one_side(runs, [aggregate(p, "functions") for p in profiles], kinds,
                            per_second)
    summary: dict[str, list[dict[str, object]]] = {}
    totals: dict[str, float] = {}
    for ti, st in enumerate(profiles[0].sample_types):
        summary[st.type] = _top_rows(names, rates.flat[:, ti], rates.cum[:, ti])
        totals[st.type] = _round(float(rates.total[ti]))
    return Summary("per_second" if per_second else "per_profile", summary, totals,
                   {st.type: kind for st, kind in zip(profiles[0].sample_types, kinds)})


def _top_rows(names: Sequence[str], flat: F64, cum: F64) -> list[dict[str, object]]:
    """The :data:`SUMMARY_TOP` functions of largest flat value, in order of their names.

    The top rows are chosen by value but written in the order of a stable key (the
    function's name; the sample types are the sorted keys around them): sorted by value, a
    value that moved reordered the rows and git paired unrelated functions in the
    pull-request diff of an update.
    """
    nonzero = [i for i in range(len(names)) if flat[i] != 0]
    nonzero.sort(key=lambda i: (-abs(float(flat[i])), names[i]))
    return [{"function": names[i], "flat_rate": _round(float(flat[i])),
             "cum_rate": _round(float(cum[i]))}
            for i in sorted(nonzero[:SUMMARY_TOP], key=lambda i: names[i])]
