"""``memgate baseline ...``: create, accept, inspect, verify and remove baselines.

The commands are a thin layer over :mod:`memgate.baseline`; everything that decides (layout,
atomicity, locking, compatibility) lives there so that ``check`` and these commands cannot
disagree. Errors follow the rest of the CLI: one line ``memgate: <source>: <problem>`` and
exit 3; click's usage errors (a missing or empty ``--reason`` among them) exit 2. ``verify``
prints one line per problem and exits 3 if there is any.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from memgate import escape
from memgate.cli.common import (
    CONTEXT_SETTINGS,
    _profile_args,
    command_config,
    duration_option,
    handle_errors,
    store_input_options,
)
from memgate.errors import EXIT_ERROR

if TYPE_CHECKING:
    from memgate.baseline.model import Baseline
    from memgate.config import Config

F = TypeVar("F", bound=Callable[..., Any])


def _reason(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty: say why the baseline changes")
    return value.strip() if value is not None else None


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from memgate.quantities import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _approved_by(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if any(ord(ch) < 32 for ch in value):
        raise click.BadParameter("must be one line")
    return value.strip()


def _baselines(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from memgate.baseline.remote import is_remote

    if not is_remote(value) and Path(value).is_file():
        raise click.BadParameter(f"{value} is a file, not a directory")
    return value


_baselines_only = click.option(
    "--baselines", "baselines_dir", metavar="DIR|URL", default="baselines", show_default=True,
    callback=_baselines,
    help="The baselines directory (committed in the repository), or a remote store: "
         "s3://BUCKET/PREFIX, gs://..., az://..., file://..., memory://... (needs "
         "memgate[remote]; docs/baselines.md).",
)
_pointers_option = click.option(
    "--pointers", metavar="DIR", default="baselines", show_default=True,
    help="With a remote --baselines: the directory of the pointer files "
         "(<component>.remote.json, committed in the repository) that name the reviewed "
         "version of each baseline.",
)


def baselines_option(f: F) -> F:
    """--baselines DIR|URL and --pointers DIR."""
    return _baselines_only(_pointers_option(f))


def _store(baselines_dir: str, pointers: str) -> Any:
    from memgate.baseline.remote import open_store

    return open_store(baselines_dir, pointers, command_config())


reason_option = click.option(
    "--reason", required=True, metavar="TEXT", callback=_reason,
    help="Why the baseline changes (required; recorded in the manifest for reviewers).",
)
approved_by_option = click.option(
    "--approved-by", metavar="WHO", default=None, callback=_approved_by,
    help="Who approved the change (recorded in the manifest).",
)
force_option = click.option(
    "--force", is_flag=True,
    help="Replace the baseline even if the new profiles have other sample types or another "
         "sampling period than the existing one, the existing one is invalid, or (accept) it is "
         "not the one the report was checked against, or the new baseline has fewer runs.",
)
runs_may_shrink_option = click.option(
    "--runs-may-shrink", is_flag=True,
    help="Allow the new baseline to have fewer profiles (repeated runs) than the existing "
         "one; without it (or --force) that is refused, since fewer runs make the gate "
         "noisier.",
)


@click.group("baseline", context_settings=CONTEXT_SETTINGS)
def baseline() -> None:
    """Reference profiles per component, kept in the repository under baselines/.

    A baseline changes only through a commit that reviewers see: every update records a
    reason, and baselines/<component>/manifest.json summarizes the top functions so that a
    pull-request diff shows what the new baseline changes. See docs/baselines.md.
    """


@baseline.command("update")
@click.option("--component", "-c", required=True, metavar="NAME",
              help="Component name: letters, digits, '.', '_', '-'.")
@click.argument("profiles", nargs=-1, required=True, metavar="PROFILE...",
                callback=_profile_args)
@reason_option
@approved_by_option
@duration_option("--duration", callback=_duration,
                 help="Duration each profile covers (30s, 10m, 48h), overriding the profiles' "
                      "own; rates in the summary are per second of it.")
@click.option("--policy", metavar="FILE", default=None,
              help="Policy whose components.<NAME>.duration applies to profiles without a "
                   "duration, as in `memgate check`. Default: ./memgate.yml if present.")
@force_option
@runs_may_shrink_option
@baselines_option
@store_input_options(urls=True)
@handle_errors
def update_cmd(component: str, profiles: Sequence[str], reason: str, approved_by: str | None,
               duration: float | None, policy: str | None, force: bool, runs_may_shrink: bool,
               baselines_dir: str, pointers: str) -> None:
    """Make the profiles the baseline of a component (several = repeated runs).

    PROFILE is a file (gzip or raw protobuf, or legacy text), `-` for stdin, an http(s)
    URL, or a profiler query (pyroscope+https://HOST/?query=TYPE{LABELS}&from=T&until=T, or
    parca+https://...), whose server, query and absolute range the manifest records. The new
    baseline replaces the old one atomically; commit baselines/ afterwards (with a remote
    --baselines: the pointer file). Durations are resolved as `memgate check` resolves a
    candidate's: --duration, else the profile's own, else the policy's
    components.<NAME>.duration.
    """
    from memgate.baseline.names import validate_component_name
    from memgate.checkrun import find_policy, policy_for

    validate_component_name(component)
    pol, _ = find_policy(policy)
    policy_duration = policy_for(pol, component).duration_seconds
    store = _store(baselines_dir, pointers)
    existed = store.exists(component)
    b = store.update(component, list(profiles), reason=reason, approved_by=approved_by,
                     duration_seconds=duration, force=force,
                     policy_duration_seconds=policy_duration, runs_may_shrink=runs_may_shrink)
    _done(store, b, "updated" if existed else "created")
    _note_durations(b)


@baseline.command("accept")
@click.option("--from-report", "report", required=True, metavar="REPORT.json",
              type=click.Path(path_type=Path),
              help="The JSON report of `memgate check` whose candidate profiles to accept.")
@reason_option
@approved_by_option
@click.option("--component", "-c", default=None, metavar="NAME",
              help="Component, if the report names none (must match the report's otherwise).")
@force_option
@runs_may_shrink_option
@baselines_option
@store_input_options(urls=False)
@handle_errors
def accept_cmd(report: Path, reason: str, approved_by: str | None, component: str | None,
               force: bool, runs_may_shrink: bool, baselines_dir: str, pointers: str) -> None:
    """Make the candidate profiles of a check the component's new baseline.

    For the "update after an approved change" flow: the files named in the report are read
    again and must be unchanged since the check (same sha256); their durations are kept.
    """
    store = _store(baselines_dir, pointers)
    b = store.accept(report, reason=reason, approved_by=approved_by, component=component,
                     force=force, runs_may_shrink=runs_may_shrink)
    _done(store, b, "accepted a new")
    _note_durations(b)


def _note_durations(b: Baseline) -> None:
    """Say so when the baseline has no durations: its manifest is per profile, and `check`
    will need a duration for it (a later baseline with durations changes every number)."""
    if any(p.duration_seconds is None for p in b.profiles):
        click.echo(f"memgate: note: {b.component}: a profile has no duration, so the manifest "
                   "summarizes values per profile; give --duration or set the policy's "
                   f"components.{b.component}.duration", err=True)


def _done(store: Any, b: Baseline, verb: str) -> None:
    n = len(b.profiles)
    profiles = f"{n} profile{'s' if n != 1 else ''}"
    if b.url is not None:
        click.echo(f"{verb} baseline {b.component}: {profiles}, version {b.version} in "
                   f"{store.shown}; commit {store.pointer_path(b.component)} with the reason "
                   "in the message")
        return
    directory = b.directory
    where = directory.parent if directory.name == b.component else directory
    click.echo(f"{verb} baseline {b.component}: {profiles} in "
               f"{where / b.component}; commit it with the reason in the message")


@baseline.command("list")
@baselines_option
@store_input_options(urls=False)
@handle_errors
def list_cmd(baselines_dir: str, pointers: str) -> None:
    """One line per component: name, profiles, last update, reason."""
    from memgate.errors import BaselineError
    store = _store(baselines_dir, pointers)
    rows: list[tuple[str, str, str, str]] = []
    for name in store.components():
        try:
            b = store.load(name)
        except BaselineError as e:
            rows.append((name, "-", "-", f"INVALID: {escape.text(e.message)}"))
            continue
        reason = b.reason.splitlines()[0] if b.reason else ""
        rows.append((name, str(len(b.profiles)), escape.text(b.updated), escape.text(reason)))
    if not rows:
        click.echo(f"memgate: no baselines in {getattr(store, 'shown', baselines_dir)}",
                   err=True)
        return
    click.echo(escape.text_block(_table(("COMPONENT", "PROFILES", "UPDATED", "REASON"), rows)),
               nl=False)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]],
           right: Sequence[bool] | None = None) -> str:
    cols = list(zip(header, *rows))
    widths = [max(len(c) for c in col) for col in cols]
    right = right or [False] * len(header)
    out = []
    for row in (header, *rows):
        cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def component_command(name: str, required: bool = True,
                      reads: bool = False) -> Callable[[F], click.Command]:
    """A ``baseline`` subcommand on the component NAME (with ``required=False``: on every
    component when NAME is left out) of the store ``--baselines`` names; ``reads``: it
    decodes the stored profiles, within the input limits its options set."""
    def deco(f: F) -> click.Command:
        f = handle_errors(f)
        if reads:
            f = store_input_options(urls=False)(f)
        return baseline.command(name)(click.argument("name", required=required)(
            baselines_option(f)))
    return deco


@component_command("show", reads=True)
def show_cmd(name: str, baselines_dir: str, pointers: str) -> None:
    """The baseline of NAME: why and when it was made, its profiles, its top functions."""
    store = _store(baselines_dir, pointers)
    b = store.load(name)
    click.echo(escape.text_block(render_show(b, _current_summary(b, store.config))), nl=False)


def _current_summary(b: Baseline, config: Config) -> dict[str, Any] | None:
    """The summary the gate's formula gives for the stored profiles, when the manifest's was
    written before summaries said which values are levels (``summary_kinds``, bug #15.1):
    those divided in-use levels by the duration and ignored the unit scale. None when the
    manifest's own summary is current."""
    if "summary_kinds" in b.manifest or not b.profiles:
        return None
    from memgate.baseline.manifest import summarize
    from memgate.profile.decode import decode

    decoded = [decode(data, str(p.path), config.limits, budget=config.budget)
               for p, data in zip(b.profiles, b.data)]
    entries: list[Any] = list(b.manifest.get("profiles") or [])  # type: ignore[call-overload]
    from_profiler = any(isinstance(e, dict) and "source" in e for e in entries)
    return summarize(decoded, [p.duration_seconds for p in b.profiles], from_profiler).fields()


def render_show(b: Baseline, current: dict[str, Any] | None = None) -> str:
    """Text of ``baseline show``: metadata, then per sample type the summary rows (those of
    ``current``, a summary recomputed from the profiles, instead of the manifest's)."""
    esc = escape.text
    m: dict[str, Any] = {**b.manifest, **(current or {})}
    where = f"{b.url}, version {b.version}" if b.url is not None else str(b.directory)
    lines = [f"baseline {esc(b.component)} ({esc(where)})"]
    meta = [
        ("reason", b.reason),
        ("approved by", m.get("approved_by") or "-"),
        ("created", m.get("created", "-")),
        ("updated", m.get("updated", "-")),
        ("git commit", m.get("git_commit") or "-"),
        ("memgate", m.get("memgate_version", "-")),
    ]
    for key, value in meta:
        # A reason may have several lines (each escaped on its own, so none starts a command).
        text = ("\n" + " " * 16).join(esc(part) for part in str(value).split("\n"))
        lines.append(f"  {key + ':':<13} {text}")
    if current is not None:
        lines.append(f"  {'summary:':<13} recomputed from the profiles (the manifest's was "
                     "written before summaries kept levels as levels; `memgate baseline "
                     "update` rewrites it)")
    lines.append(f"  {'profiles:':<13} {len(b.profiles)}")
    sources = {str(e.get("sha256")): e["source"] for e in m.get("profiles", [])
               if isinstance(e, dict) and isinstance(e.get("source"), dict)}
    for p in b.profiles:
        dur = f"{p.duration_seconds:.6g}s" if p.duration_seconds is not None else "no duration"
        lines.append(f"    {esc(p.path.name)}  {esc(p.original_name)}  {dur}")
        origin = sources.get(p.sha256)
        if origin:
            lines.append(f"      {esc(str(origin.get('kind')))} query "
                         f"{esc(str(origin.get('query')))} from {esc(str(origin.get('from')))} "
                         f"until {esc(str(origin.get('until')))}")
    lines.extend(_summary_lines(m, b.profiles[0].sample_types if b.profiles else ()))
    return "\n".join(lines) + "\n"


def _summary_lines(m: dict[str, Any], types: Sequence[tuple[str, str]]) -> list[str]:
    """Per sample type of a manifest's summary: a heading (what the numbers are: levels, rates
    or per profile) and its rows, largest first."""
    from memgate.quantities import (
        TIME_UNITS,
        choose_time_unit,
        count_noun,
        dimension_of_unit,
        format_amount,
        format_rate,
    )
    from memgate.units import scaled_label

    esc = escape.text
    per_second = m.get("summary_unit") == "per_second"
    lines: list[str] = []
    units = dict(types)
    summary: dict[str, list[dict[str, Any]]] = m.get("summary", {})
    totals: dict[str, float] = m.get("summary_totals", {})
    order = [t for t in units if t in summary] + sorted(t for t in summary if t not in units)
    for stype in order:
        rows = summary[stype]
        unit = units.get(stype, "")
        dim = dimension_of_unit(unit)
        values = [float(r["flat_rate"]) for r in rows] + [float(r["cum_rate"]) for r in rows]
        # A level (in use in a snapshot) is an amount, never per second (summary_kinds).
        level = m.get("summary_kinds", {}).get(stype) == "level"
        rate = per_second and not level
        tu = choose_time_unit(values) if rate else ""

        def fmt(v: float, dim: Any = dim, tu: str = tu, unit: str = unit,
                noun: str = count_noun(stype), rate: bool = rate) -> str:
            if rate:
                if dim is not None:
                    return format_rate(v, dim, tu, noun)
                return f"{scaled_label(v * TIME_UNITS[tu], unit, 'auto')}/{tu}"
            if dim is not None:
                return format_amount(v, dim)
            return scaled_label(v, unit, "auto")

        how = ("level in use" if level else "rate over the profile duration" if per_second
               else "per profile (no duration)")
        total = f", total {fmt(float(totals[stype]))}" if stype in totals else ""
        lines.append("")
        lines.append(f"{esc(stype)} ({esc(unit or 'count')}), mean {how}{total}:")
        if not rows:
            lines.append("  (no function has a value)")
            continue
        # The manifest keeps its rows in name order (a stable diff); a reader wants the
        # largest first.
        rows = sorted(rows, key=lambda r: (-abs(float(r["flat_rate"])), str(r["function"])))
        table = _table(("flat", "cum", "function"),
                       [(fmt(float(r["flat_rate"])), fmt(float(r["cum_rate"])),
                         esc(r["function"])) for r in rows], right=(True, True, False))
        lines.extend("  " + line for line in table.splitlines())
    return lines


@component_command("verify", required=False, reads=True)
def verify_cmd(name: str | None, baselines_dir: str, pointers: str) -> None:
    """Check one baseline (or all): schema, checksums, every profile parses.

    Prints one line per problem and exits 3 if there is any; otherwise prints which
    profiles (by hash) each baseline holds.
    """
    store = _store(baselines_dir, pointers)
    problems = store.verify(name)
    for note in store.notes(name):
        click.echo(f"memgate: note: {escape.text(note)}", err=True)
    for problem in problems:
        click.echo(f"memgate: {escape.text(problem)}", err=True)
    if problems:
        sys.exit(EXIT_ERROR)
    names = [name] if name is not None else store.components()
    if not names:
        click.echo(f"memgate: no baselines in {getattr(store, 'shown', baselines_dir)}",
                   err=True)
    for n in names:
        b = store.load(n)
        hashes = ", ".join(p.sha256[:16] for p in b.profiles)
        where = "" if b.directory.name == n else (
            f" (in effect from {b.directory.name}: an update was interrupted)")
        click.echo(f"ok {n}: {len(b.profiles)} profile{'s' if len(b.profiles) != 1 else ''} "
                   f"[{hashes}], updated {escape.text(b.updated)}{where}")


@component_command("remove")
def remove_cmd(name: str, baselines_dir: str, pointers: str) -> None:
    """Delete the baseline of NAME (commit the deletion afterwards)."""
    store = _store(baselines_dir, pointers)
    store.remove(name)
    shown = getattr(store, "shown", baselines_dir)
    click.echo(f"removed baseline {name} from {shown}; commit the deletion"
               + (f" of {store.pointer_path(name)}" if hasattr(store, "pointer_path") else ""))


@component_command("recover", required=False)
def recover_cmd(name: str | None, baselines_dir: str, pointers: str) -> None:
    """Clean up after an interrupted update (any later update does this too)."""
    done = _store(baselines_dir, pointers).recover(name)
    for line in done:
        click.echo(escape.text(line))
    if not done:
        click.echo("nothing to recover")

