"""The ``memgate`` command line.

Every command maps errors the same way: a :class:`~memgate.errors.MemgateError` prints one line
``memgate: <source>: <problem>`` and exits 3; Ctrl-C exits 130; click's usage errors exit 2.
Heavy modules are imported inside the commands so that ``memgate --help`` and small commands
start fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from memgate import __version__
from memgate.errors import EXIT_ERROR, EXIT_INTERRUPTED, MemgateError

F = TypeVar("F", bound=Callable[..., Any])

DOCS_HINT = "see `memgate --help`"


def fail(message: str, code: int = EXIT_ERROR) -> None:
    click.echo(f"memgate: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn user errors into one line and a named exit code; never a traceback for them."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MemgateError as e:
            fail(str(e))
        except KeyboardInterrupt:
            click.echo("memgate: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # `memgate top big.pb.gz | head`: the reader left; that is not an error.
            sys.stderr.close()
            sys.exit(0)

    return wrapper  # type: ignore[return-value]


def _limits(max_decompressed: str | None) -> Any:
    from memgate.profile.decode import Limits

    limits = Limits.from_env()
    if max_decompressed:
        import dataclasses

        limits = dataclasses.replace(
            limits, max_decompressed_bytes=parse_size(max_decompressed))
    return limits


def parse_size(text: str) -> int:
    """'1GiB', '512MiB', '100000' -> bytes (1024-based)."""
    units = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
             "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
             "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}
    s = text.strip().lower().replace(" ", "")
    num = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(num):]
    try:
        value = float(num)
    except ValueError:
        raise MemgateError(f"invalid size {text!r} (use e.g. 512MiB, 2GiB)",
                           source="--max-decompressed", slug="usage") from None
    if unit not in units or value <= 0:
        raise MemgateError(f"invalid size {text!r} (use e.g. 512MiB, 2GiB)",
                           source="--max-decompressed", slug="usage")
    return int(value * units[unit])


max_decompressed_option = click.option(
    "--max-decompressed", metavar="SIZE", default=None,
    help="Refuse inputs that decompress to more than SIZE (default 1GiB, or "
         "MEMGATE_MAX_DECOMPRESSED_BYTES).",
)
progress_option = click.option(
    "--progress/--no-progress", default=None,
    help="Show progress on stderr (default: only when stderr is a terminal and not in CI).",
)
timeout_option = click.option(
    "--timeout", type=float, default=30.0, show_default=True, metavar="SECONDS",
    help="For URLs: seconds to wait for the server, on top of a ?seconds=N delta window.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="memgate")
def main() -> None:
    """memgate: a CI regression gate for memory profiles (pprof).

    \b
    Exit codes: 0 ok/pass, 1 the gate failed, 2 usage error, 3 bad input or
    tool error, 130 interrupted.
    """


@main.command()
@click.argument("profile")
@click.option("--sample-index", "-i", default=None, metavar="NAME|N",
              help="Sample type by name (inuse_space, alloc_objects, ...) or 0-based index. "
                   "Default: the profile's default_sample_type, else the last type (as pprof).")
@click.option("--granularity", "-g", type=click.Choice(
    ["functions", "filefunctions", "lines", "addresses"]), default="functions",
    show_default=True, help="What a row is: a function, function+file, function+file:line, "
                            "or an address.")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=None,
              help="Show only the first N rows (default: all rows with a non-zero value).")
@click.option("--cum", is_flag=True, help="Sort by cum instead of flat.")
@click.option("--unit", default="minimum", show_default=True,
              help="Output unit for text: minimum (pprof's default), auto, B, kB, MB, ns, s, ...")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True)
@max_decompressed_option
@progress_option
@timeout_option
@handle_errors
def top(profile: str, sample_index: str | None, granularity: str, limit: int | None,
        cum: bool, unit: str, fmt: str, max_decompressed: str | None,
        progress: bool | None, timeout: float) -> None:
    """Per-function flat and cum of PROFILE, like `go tool pprof -top`.

    PROFILE is a file (gzip or raw protobuf, or legacy text), `-` for stdin, or an http(s)
    URL such as http://host:6060/debug/pprof/heap (a ?seconds=N delta URL waits N seconds).
    Numbers are pprof's: the same flat and cum for every function.
    """
    from memgate.profile.fetch import FetchOptions, load_profile
    from memgate.progress import Progress
    from memgate.report.top import build_top, render_json, render_markdown, render_text
    from memgate.table import aggregate

    prog = Progress(progress)
    prof = load_profile(profile, _limits(max_decompressed), prog, FetchOptions(timeout=timeout))
    try:
        idx = prof.sample_index(sample_index)
    except ValueError as e:
        raise MemgateError(str(e), source=prof.source, slug="sample-index") from None
    prog.note("aggregating")
    table = aggregate(prof, granularity)
    prog.done()
    rep = build_top(prof, table, idx, limit=limit, cum_sort=cum)
    if fmt == "json":
        out = render_json(rep)
    elif fmt == "markdown":
        out = render_markdown(rep)
    else:
        out = render_text(rep, unit)
    click.echo(out, nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
