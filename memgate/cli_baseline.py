"""``memgate baseline ...``: create, accept, inspect, verify and remove baselines.

The commands are a thin layer over :mod:`memgate.store`; everything that decides (layout,
atomicity, locking, compatibility) lives there so that ``check`` and these commands cannot
disagree. Errors follow the rest of the CLI: one line ``memgate: <source>: <problem>`` and
exit 3; click's usage errors (a missing or empty ``--reason`` among them) exit 2. ``verify``
prints one line per problem and exits 3 if there is any.

``memgate.cli`` registers the group (``main.add_command(baseline)``); until then
``python -m memgate.cli_baseline`` runs it on its own.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from memgate import escape
from memgate.errors import EXIT_ERROR

if TYPE_CHECKING:
    from memgate.store import Baseline

F = TypeVar("F", bound=Callable[..., Any])


def _handle_errors(func: F) -> F:
    """:func:`memgate.cli.handle_errors`, looked up when the command runs.

    ``memgate.cli`` imports this module to register the group; importing ``memgate.cli``
    back at module level would make the result depend on which module is imported first.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from memgate.cli import handle_errors

        return handle_errors(func)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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


baselines_option = click.option(
    "--baselines", "baselines_dir", metavar="DIR", default="baselines", show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The baselines directory (committed in the repository).",
)
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
         "not the one the report was checked against.",
)


@click.group("baseline", context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100})
def baseline() -> None:
    """Reference profiles per component, kept in the repository under baselines/.

    \b
    A baseline changes only through a commit that reviewers see: every update records a
    reason, and baselines/<component>/manifest.json summarizes the top functions so that a
    pull-request diff shows what the new baseline changes. See docs/baselines.md.
    """


@baseline.command("update")
@click.option("--component", "-c", required=True, metavar="NAME",
              help="Component name: letters, digits, '.', '_', '-'.")
@click.argument("profiles", nargs=-1, required=True, metavar="PROFILE...")
@reason_option
@approved_by_option
@click.option("--duration", metavar="D", default=None, callback=_duration,
              help="Duration each profile covers (30s, 10m, 48h), overriding the profiles' "
                   "own; rates in the summary are per second of it.")
@force_option
@baselines_option
@_handle_errors
def update_cmd(component: str, profiles: Sequence[str], reason: str, approved_by: str | None,
               duration: float | None, force: bool, baselines_dir: Path) -> None:
    """Make the profiles the baseline of a component (several = repeated runs).

    PROFILE is a file (gzip or raw protobuf, or legacy text), `-` for stdin, or an http(s)
    URL. The new baseline replaces the old one atomically; commit baselines/ afterwards.
    """
    from memgate.store import Store

    store = Store(baselines_dir)
    existed = store.exists(component)
    b = store.update(component, list(profiles), reason=reason, approved_by=approved_by,
                     duration_seconds=duration, force=force)
    _done(b.component, len(b.profiles), b.directory, "updated" if existed else "created")


@baseline.command("accept")
@click.option("--from-report", "report", required=True, metavar="REPORT.json",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The JSON report of `memgate check` whose candidate profiles to accept.")
@reason_option
@approved_by_option
@click.option("--component", "-c", default=None, metavar="NAME",
              help="Component, if the report names none (must match the report's otherwise).")
@force_option
@baselines_option
@_handle_errors
def accept_cmd(report: Path, reason: str, approved_by: str | None, component: str | None,
               force: bool, baselines_dir: Path) -> None:
    """Make the candidate profiles of a check the component's new baseline.

    For the "update after an approved change" flow: the files named in the report are read
    again and must be unchanged since the check (same sha256); their durations are kept.
    """
    from memgate.store import Store

    b = Store(baselines_dir).accept(report, reason=reason, approved_by=approved_by,
                                    component=component, force=force)
    _done(b.component, len(b.profiles), b.directory, "accepted a new")


def _done(component: str, n: int, directory: Path, verb: str) -> None:
    where = directory.parent if directory.name == component else directory
    click.echo(f"{verb} baseline {component}: {n} profile{'s' if n != 1 else ''} in "
               f"{where / component}; commit it with the reason in the message")


@baseline.command("list")
@baselines_option
@_handle_errors
def list_cmd(baselines_dir: Path) -> None:
    """One line per component: name, profiles, last update, reason."""
    from memgate.errors import BaselineError
    from memgate.store import Store

    store = Store(baselines_dir)
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
        click.echo(f"memgate: no baselines in {baselines_dir}", err=True)
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


@baseline.command("show")
@click.argument("name")
@baselines_option
@_handle_errors
def show_cmd(name: str, baselines_dir: Path) -> None:
    """The baseline of NAME: why and when it was made, its profiles, its top functions."""
    from memgate.store import Store

    click.echo(escape.text_block(render_show(Store(baselines_dir).load(name))), nl=False)


def render_show(b: Baseline) -> str:
    """Text of ``baseline show``: metadata, then per sample type the summary rows."""
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
    m: dict[str, Any] = b.manifest
    per_second = m.get("summary_unit") == "per_second"
    lines = [f"baseline {esc(b.component)} ({esc(b.directory)})"]
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
    lines.append(f"  {'profiles:':<13} {len(b.profiles)}")
    for p in b.profiles:
        dur = f"{p.duration_seconds:.6g}s" if p.duration_seconds is not None else "no duration"
        lines.append(f"    {esc(p.path.name)}  {esc(p.original_name)}  {dur}")
    units = {t: u for t, u in (b.profiles[0].sample_types if b.profiles else ())}
    summary: dict[str, list[dict[str, Any]]] = m.get("summary", {})
    totals: dict[str, float] = m.get("summary_totals", {})
    order = [t for t in units if t in summary] + sorted(t for t in summary if t not in units)
    for stype in order:
        rows = summary[stype]
        unit = units.get(stype, "")
        dim = dimension_of_unit(unit)
        values = [float(r["flat_rate"]) for r in rows] + [float(r["cum_rate"]) for r in rows]
        tu = choose_time_unit(values) if per_second else ""

        def fmt(v: float, dim: Any = dim, tu: str = tu, unit: str = unit,
                noun: str = count_noun(stype)) -> str:
            if per_second:
                if dim is not None:
                    return format_rate(v, dim, tu, noun)
                return f"{scaled_label(v * TIME_UNITS[tu], unit, 'auto')}/{tu}"
            if dim is not None:
                return format_amount(v, dim)
            return scaled_label(v, unit, "auto")

        how = "per second of profile duration" if per_second else "per profile (no duration)"
        total = f", total {fmt(float(totals[stype]))}" if stype in totals else ""
        lines.append("")
        lines.append(f"{esc(stype)} ({esc(unit or 'count')}), mean {how}{total}:")
        if not rows:
            lines.append("  (no function has a value)")
            continue
        table = _table(("flat", "cum", "function"),
                       [(fmt(float(r["flat_rate"])), fmt(float(r["cum_rate"])),
                         esc(r["function"])) for r in rows], right=(True, True, False))
        lines.extend("  " + line for line in table.splitlines())
    return "\n".join(lines) + "\n"


@baseline.command("verify")
@click.argument("name", required=False)
@baselines_option
@_handle_errors
def verify_cmd(name: str | None, baselines_dir: Path) -> None:
    """Check one baseline (or all): schema, checksums, every profile parses.

    Prints one line per problem and exits 3 if there is any; otherwise prints which
    profiles (by hash) each baseline holds.
    """
    from memgate.store import Store

    store = Store(baselines_dir)
    problems = store.verify(name)
    for note in store.notes(name):
        click.echo(f"memgate: note: {escape.text(note)}", err=True)
    for problem in problems:
        click.echo(f"memgate: {escape.text(problem)}", err=True)
    if problems:
        sys.exit(EXIT_ERROR)
    names = [name] if name is not None else store.components()
    if not names:
        click.echo(f"memgate: no baselines in {baselines_dir}", err=True)
    for n in names:
        b = store.load(n)
        hashes = ", ".join(p.sha256[:16] for p in b.profiles)
        where = "" if b.directory.name == n else (
            f" (in effect from {b.directory.name}: an update was interrupted)")
        click.echo(f"ok {n}: {len(b.profiles)} profile{'s' if len(b.profiles) != 1 else ''} "
                   f"[{hashes}], updated {escape.text(b.updated)}{where}")


@baseline.command("remove")
@click.argument("name")
@baselines_option
@_handle_errors
def remove_cmd(name: str, baselines_dir: Path) -> None:
    """Delete the baseline of NAME (commit the deletion afterwards)."""
    from memgate.store import Store

    Store(baselines_dir).remove(name)
    click.echo(f"removed baseline {name} from {baselines_dir}; commit the deletion")


@baseline.command("recover")
@click.argument("name", required=False)
@baselines_option
@_handle_errors
def recover_cmd(name: str | None, baselines_dir: Path) -> None:
    """Clean up after an interrupted update (any later update does this too)."""
    from memgate.store import Store

    done = Store(baselines_dir).recover(name)
    for line in done:
        click.echo(escape.text(line))
    if not done:
        click.echo("nothing to recover")


if __name__ == "__main__":  # pragma: no cover
    baseline(prog_name="memgate baseline")
