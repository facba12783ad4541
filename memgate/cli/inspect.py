"""``memgate top`` and ``memgate fetch``: look at one profile, or save it for later."""

from __future__ import annotations

from typing import Any

import click

from memgate import escape
from memgate.cli.common import (
    _check_outputs,
    _profile_args,
    command_config,
    handle_errors,
    profile_reading_options,
)
from memgate.errors import MemgateError


@click.command()
@click.argument("profile", callback=_profile_args)
@click.option(
    "--sample-index",
    "-i",
    default=None,
    metavar="NAME|N",
    help="Sample type by name (inuse_space, alloc_objects, ...) or 0-based index. "
    "Default: the profile's default_sample_type, else the last type (as pprof).",
)
@click.option(
    "--granularity",
    "-g",
    type=click.Choice(["functions", "filefunctions", "lines", "addresses"]),
    default="functions",
    show_default=True,
    help="What a row is: a function, function+file, function+file:line, or an address.",
)
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=0),
    default=None,
    help="Show only the first N rows (default, and 0 as in pprof's -nodecount=0: all rows "
    "with a non-zero value).",
)
@click.option("--cum", is_flag=True, help="Sort by cum instead of flat.")
@click.option(
    "--unit",
    default="minimum",
    show_default=True,
    help="Output unit for text: minimum (pprof's default), auto, B, kB, MB, ns, s, ...",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option("--output", "-o", "output", metavar="FILE", default=None,
              help="Also save the profile to FILE (as `memgate fetch -o`), e.g. a URL's, for "
                   "`memgate baseline update` or a later check.")
@profile_reading_options
@handle_errors
def top(
    profile: str,
    sample_index: str | None,
    granularity: str,
    limit: int | None,
    cum: bool,
    unit: str,
    fmt: str,
    output: str | None,
    progress: bool | None,
) -> None:
    """Per-function flat and cum of PROFILE, like `go tool pprof -top`.

    PROFILE is a file (gzip or raw protobuf, or legacy text), `-` for stdin, an http(s)
    URL such as http://host:6060/debug/pprof/heap (a ?seconds=N delta URL waits N seconds),
    or a continuous profiler's merged profile over a range:
    pyroscope+https://HOST/?query=TYPE{LABELS}&from=T&until=T (or parca+https://...; T:
    now, now-1h, Unix seconds, RFC 3339; docs/production-baselines.md).
    Numbers are pprof's: the same flat and cum for every function. -o FILE also saves the
    profile, so that a fetched one need not be fetched again.
    """
    from memgate.progress import Progress
    from memgate.report.top import build_top, render_json, render_markdown, render_text
    from memgate.table import aggregate

    _check_outputs([output], [profile])
    prog = Progress(progress)
    prof = _read_and_save(profile, output, prog)
    try:
        idx = prof.sample_index(sample_index)
    except ValueError as e:
        raise MemgateError(str(e), source=prof.source, slug="sample-index") from None
    prog.note("aggregating")
    table = aggregate(prof, granularity, types=[idx])
    prog.done()
    rep = build_top(prof, table, idx, limit=limit, cum_sort=cum)
    if fmt == "json":
        out = render_json(rep)
    elif fmt == "markdown":
        out = render_markdown(rep)
    else:
        out = render_text(rep, unit)
    click.echo(escape.text_block(out), nl=False)


def _read_and_save(spec: str, output: str | None, prog: Any) -> Any:
    """Read and decode ``spec``; with ``output``, also save it there (atomically, after it
    decoded: nothing is written for an input that is not a profile)."""
    from memgate.profile.decode import decode
    from memgate.profile.source import read_bytes

    config = command_config()
    data, source = read_bytes(spec, config, prog)
    prog.note(f"decoding {source} ({len(data)} bytes)")
    prof = decode(data, source, config.limits, budget=config.budget,
                  on_progress=lambda f: prog.fraction(f"decoding {source}", f))
    if output:
        from memgate.outputs import Output, write_outputs
        from memgate.profile.save import savable

        saved = savable(data, prof, spec, config.limits)
        write_outputs([Output(output, saved.data)])
        how = ", no duration"
        if saved.duration_seconds is not None:
            how = f", duration {saved.duration_seconds:g}s" + (
                " (from the URL's seconds=)" if saved.duration_source == "url" else "")
        click.echo(f"memgate: saved {source} to {output} ({len(saved.data)} bytes{how})",
                   err=True)
    return prof


@click.command("fetch")
@click.argument("profile")
@click.option("--output", "-o", "output", metavar="FILE", required=True,
              help="Where to save the profile.")
@profile_reading_options
@handle_errors
def fetch_cmd(profile: str, output: str, progress: bool | None) -> None:
    """Save the profile at PROFILE (usually a URL) to FILE, checked to be a profile.

    For `memgate baseline update`, `accept` and reports, which work on files: e.g.
    `memgate fetch http://localhost:6060/debug/pprof/heap -o heap.pb.gz`. The bytes are
    saved as served; a delta URL (?seconds=N) waits N seconds, and its profile keeps its
    duration (set to N when the server recorded none). --header and $MEMGATE_HTTP_HEADERS
    add request headers, as on every command that reads URLs.
    """
    from memgate.progress import Progress

    _check_outputs([output], [profile])
    prog = Progress(progress)
    _read_and_save(profile, output, prog)
    prog.done()
