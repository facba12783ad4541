"""What every ``memgate`` command shares: error handling, input limits, URL and profile options.

Every command maps errors the same way: a :class:`~memgate.errors.MemgateError` prints one line
``memgate: <source>: <problem>`` and exits 3; Ctrl-C exits 130; click's usage errors exit 2.
The command modules import this one (never :mod:`memgate.cli`, which imports them), so the
command line has no import cycle. Heavy modules are imported inside the functions that need
them, so that ``memgate --help`` and small commands start fast.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from memgate import escape
from memgate.errors import EXIT_ERROR, EXIT_INTERRUPTED, MemgateError, internal_error

if TYPE_CHECKING:
    from memgate.config import Config

F = TypeVar("F", bound=Callable[..., Any])

#: The context settings of every command and group (help as -h too, 100 columns).
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"],
                                    "max_content_width": 100}


def fail(message: str, code: int = EXIT_ERROR) -> None:
    # The message names files and quotes inputs: one line, nothing a terminal or the Actions
    # runner would act on (memgate/escape.py).
    click.echo(f"memgate: {escape.text(message)}", err=True)
    sys.exit(code)


#: Where option callbacks leave overrides (``--max-samples``, ``--header`` ...) in
#: ``click.Context.meta``; :func:`command_config` applies them to the command's configuration.
_LIMITS_META = "memgate.limit_overrides"
_FETCH_META = "memgate.fetch_overrides"
_CONFIG_META = "memgate.config"


def handle_errors(func: F) -> F:
    """Turn user errors into one line and a named exit code; never a traceback for them.

    Anything unexpected (a bug) is one line and exit 3 as well: an uncaught exception would
    exit 1, which a CI step reads as "the gate failed". ``MEMGATE_DEBUG=1`` shows the
    traceback instead.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import os

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
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as e:  # noqa: BLE001 - the last line of defence, see the docstring
            if os.environ.get("MEMGATE_DEBUG", "").strip() not in ("", "0"):
                raise
            fail(str(internal_error(e)))

    return wrapper  # type: ignore[return-value]


def command_config() -> Config:
    """The configuration of the running command (:class:`memgate.config.Config`), built once
    per command: the defaults, the environment, then the command's flags (``--max-*``,
    ``--timeout``, ``--header``), with the command's run budget."""
    import os

    from memgate.config import Config

    ctx = click.get_current_context(silent=True)
    meta: dict[str, Any] = ctx.meta if ctx is not None else {}
    if _CONFIG_META not in meta:
        meta[_CONFIG_META] = Config.from_env(os.environ).with_limits(
            **meta.get(_LIMITS_META, {})).with_fetch(**meta.get(_FETCH_META, {}))
    config: Config = meta[_CONFIG_META]
    return config


def parse_size(text: str) -> int:
    """'1GiB', '512MiB', '100000' -> bytes (1024-based); the environment takes the same."""
    from memgate.units import parse_size as parse

    try:
        return parse(text)
    except ValueError as e:
        raise MemgateError(str(e), source="--max-decompressed", slug="usage") from None


#: The ``InputLimits`` field each size option sets.
_SIZE_FIELDS = {"max_decompressed": "max_decompressed_bytes",
                "max_string_bytes": "max_string_bytes", "max_total": "max_total_bytes"}


def _size_override(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--max-decompressed`` (and the other sizes): a malformed size is a usage error (exit
    2), found before any work; a valid one overrides the environment's in the command's
    configuration (the store's reads too)."""
    if value is None or param.name is None:
        return
    try:
        size = parse_size(value)
    except MemgateError as e:
        raise click.BadParameter(e.message) from None
    ctx.meta.setdefault(_LIMITS_META, {})[_SIZE_FIELDS[param.name]] = size


_max_decompressed_only = click.option(
    "--max-decompressed",
    metavar="SIZE",
    default=None,
    expose_value=False,
    callback=_size_override,
    help="Refuse inputs that decompress to more than SIZE (default 1GiB, or "
    "MEMGATE_MAX_DECOMPRESSED_BYTES).",
)


def _limit_override(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    """``--max-samples``/``--max-locations``: override the environment's in the command's
    configuration (the store's reads too)."""
    if value is None or param.name is None:
        return
    ctx.meta.setdefault(_LIMITS_META, {})[param.name] = value


_max_samples_option = click.option(
    "--max-samples", type=click.IntRange(min=1), default=None, metavar="N",
    expose_value=False, callback=_limit_override,
    help="Refuse profiles with more than N samples (default 20000000, or MEMGATE_MAX_SAMPLES).",
)
_max_locations_option = click.option(
    "--max-locations", type=click.IntRange(min=1), default=None, metavar="N",
    expose_value=False, callback=_limit_override,
    help="Refuse profiles with more than N locations (also functions, mappings; default "
    "5000000, or MEMGATE_MAX_LOCATIONS).",
)


_max_strings_option = click.option(
    "--max-strings", type=click.IntRange(min=1), default=None, metavar="N",
    expose_value=False, callback=_limit_override,
    help="Refuse profiles whose string table has more than N entries (default 4000000, or "
    "MEMGATE_MAX_STRINGS).",
)
_max_string_bytes_option = click.option(
    "--max-string-bytes", metavar="SIZE", default=None, expose_value=False,
    callback=_size_override,
    help="Refuse profiles whose strings hold more than SIZE together (default 256MiB, or "
    "MEMGATE_MAX_STRING_BYTES).",
)
_max_total_option = click.option(
    "--max-total", metavar="SIZE", default=None, expose_value=False, callback=_size_override,
    help="Refuse to read more than SIZE of decompressed profiles in one command (default "
    "2GiB, or MEMGATE_MAX_TOTAL_BYTES).",
)


#: The input-limit options, in the order ``--help`` lists them.
_LIMIT_OPTIONS = (_max_decompressed_only, _max_samples_option, _max_locations_option,
                  _max_strings_option, _max_string_bytes_option, _max_total_option)


def max_decompressed_option(f: F) -> F:
    """The input limits: --max-decompressed, --max-samples, --max-locations, --max-strings,
    --max-string-bytes, --max-total."""
    for option in reversed(_LIMIT_OPTIONS):
        f = option(f)
    return f


progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress on stderr (default: only when stderr is a terminal and not in CI).",
)


def _fetch_override(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """``--timeout`` and ``--header``: override the fetch options of every URL the command
    reads (the store's reads too) in the command's configuration."""
    if param.name == "headers":
        from memgate.profile.fetch_options import parse_header

        try:
            value = tuple(parse_header(v) for v in value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
        if not value:
            return
    elif value is None:
        return
    elif not (math.isfinite(value) and value > 0):
        # Found while the command line is parsed, not at the first URL (or never, without one).
        raise click.BadParameter(f"must be a positive number of seconds, not {value}")
    ctx.meta.setdefault(_FETCH_META, {})[param.name or ""] = value


_timeout_only = click.option(
    "--timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    expose_value=False,
    callback=_fetch_override,
    help="For URLs: seconds to wait for the server, on top of a ?seconds=N delta window "
    "(default 30).",
)


_header_option = click.option(
    "--header", "-H", "headers", multiple=True, metavar="'NAME: VALUE'",
    expose_value=False, callback=_fetch_override,
    help="For URLs: an extra request header, e.g. 'Authorization: Bearer ...' for an API "
    "server's proxy URL (repeatable). Secrets are better given in $MEMGATE_HTTP_HEADERS (one "
    "header per line), which is not visible in the process list. These headers are not sent "
    "on to another host when the server redirects.",
)


def timeout_option(f: F) -> F:
    """The URL options: --timeout and --header."""
    return _timeout_only(_header_option(f))


def profile_reading_options(f: F) -> F:
    """What every command that reads profiles takes: the input limits, --progress, and the
    URL options (--timeout, --header), in that order in its help."""
    return max_decompressed_option(progress_option(timeout_option(f)))


def duration_option(flag: str, help: str, **kwargs: Any) -> Callable[[F], F]:
    """A duration option (``30s``, ``10m``, ``48h``; parsed by the command)."""
    return click.option(flag, metavar="D", default=None, help=help, **kwargs)


def store_input_options(urls: bool) -> Callable[[F], F]:
    """The input limits (with ``urls``, also --timeout and --header) of the baseline commands
    that read profiles, listed last in their help in the order the other commands list them."""
    def deco(f: F) -> F:
        return max_decompressed_option(timeout_option(f) if urls else f)

    return deco


def _profile_args(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Profile arguments: a malformed pyroscope+/parca+ URL is a usage error (exit 2)."""
    from memgate.profile.profilers import check_args

    return check_args(ctx, param, value)


#: Units of work outside this range are a slip (a rate of 1e-300 would overflow every value).
WORK_RANGE = (1e-6, 1e15)


def _work_amount(value: str | None, param: Any) -> float | None:
    """``--work N``: a finite, positive number of units of work (requests, iterations)."""
    if value is None:
        return None
    try:
        n = float(value)
    except ValueError:
        n = math.nan
    if not (math.isfinite(n) and WORK_RANGE[0] <= n <= WORK_RANGE[1]):
        raise click.BadParameter(f"{value!r} is not a number of units of work (a finite number "
                                 f"from {WORK_RANGE[0]:g} to {WORK_RANGE[1]:g})", param=param)
    return n


def _duration(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    from memgate.quantities import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=flag) from None
    if seconds <= 0:
        raise click.BadParameter("must be positive", param_hint=flag)
    return seconds



def _check_outputs(paths: Sequence[str | None], inputs: Sequence[str]) -> None:
    """Before any work: standard input is read at most once, every output can be written
    and overwrites no input."""
    from memgate.fs import require_text_name
    from memgate.outputs import check_outputs

    if list(inputs).count("-") > 1:
        raise click.UsageError("standard input ('-') can be given only once: save all but one "
                               "of the profiles to files")
    for name in inputs:
        require_text_name(name)
    check_outputs(paths, inputs)


def _add(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def deco(f: F) -> F:
        for o in reversed(options):
            f = o(f)
        return f
    return deco
