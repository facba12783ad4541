"""The ``memgate`` command line.

Every command maps errors the same way: a :class:`~memgate.errors.MemgateError` prints one line
``memgate: <source>: <problem>`` and exits 3; Ctrl-C exits 130; click's usage errors exit 2.
Heavy modules are imported inside the commands so that ``memgate --help`` and small commands
start fast.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from memgate import __version__, escape
from memgate.errors import EXIT_ERROR, EXIT_INTERRUPTED, MemgateError, internal_error

F = TypeVar("F", bound=Callable[..., Any])

DOCS_HINT = "see `memgate --help`"


def fail(message: str, code: int = EXIT_ERROR) -> None:
    # The message names files and quotes inputs: one line, nothing a terminal or the Actions
    # runner would act on (memgate/escape.py).
    click.echo(f"memgate: {escape.text(message)}", err=True)
    sys.exit(code)


#: Where option callbacks leave overrides (``--max-samples``, ``--header`` ...) in
#: ``click.Context.meta``; :func:`handle_errors` applies them while the command runs.
_LIMITS_META = "memgate.limit_overrides"
_FETCH_META = "memgate.fetch_overrides"


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
            with _overrides_applied():
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


class _overrides_applied:
    """Apply the option overrides stashed in the click context for the command's duration.

    Set here, around the command, rather than in the option callbacks: a callback runs while
    the command line is parsed, and a usage error later in the parse would leave its setting
    in place for whatever runs next in the process (tests, embedders).
    """

    def __enter__(self) -> None:
        from memgate.profile.decode import run_budget, set_limit_overrides
        from memgate.profile.source import set_fetch_defaults

        ctx = click.get_current_context(silent=True)
        meta = ctx.meta if ctx is not None else {}
        self.tokens: list[tuple[Callable[[object], None], object]] = []
        # Every profile the command decodes counts against --max-total.
        self.budget = run_budget()
        self.budget.__enter__()
        if meta.get(_LIMITS_META):
            from memgate.profile.decode import reset_limit_overrides

            self.tokens.append((reset_limit_overrides,
                                set_limit_overrides(**meta[_LIMITS_META])))
        if meta.get(_FETCH_META):
            from memgate.profile.source import reset_fetch_defaults

            self.tokens.append((reset_fetch_defaults, set_fetch_defaults(**meta[_FETCH_META])))

    def __exit__(self, *exc: object) -> None:
        for reset, token in reversed(self.tokens):
            reset(token)
        self.budget.__exit__()


def _limits() -> Any:
    """The input limits of the running command: defaults, environment, then its flags
    (applied by :func:`handle_errors`)."""
    from memgate.profile.decode import Limits

    return Limits.from_env()


def parse_size(text: str) -> int:
    """'1GiB', '512MiB', '100000' -> bytes (1024-based); the environment takes the same."""
    from memgate.units import parse_size as parse

    try:
        return parse(text)
    except ValueError as e:
        raise MemgateError(str(e), source="--max-decompressed", slug="usage") from None


#: The ``Limits`` field each size option sets.
_SIZE_FIELDS = {"max_decompressed": "max_decompressed_bytes",
                "max_string_bytes": "max_string_bytes", "max_total": "max_total_bytes"}


def _size_override(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--max-decompressed`` (and the other sizes): a malformed size is a usage error (exit
    2), found before any work; a valid one overrides ``Limits.from_env()`` (the store's too)
    while the command runs."""
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
    """``--max-samples``/``--max-locations``: override ``Limits.from_env()`` (the store's
    too) while the command runs."""
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


def max_decompressed_option(f: F) -> F:
    """The input limits: --max-decompressed, --max-samples, --max-locations, --max-strings,
    --max-string-bytes, --max-total."""
    for option in (_max_total_option, _max_string_bytes_option, _max_strings_option,
                   _max_locations_option, _max_samples_option, _max_decompressed_only):
        f = option(f)
    return f

progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress on stderr (default: only when stderr is a terminal and not in CI).",
)
def _fetch_override(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """``--timeout`` and ``--header``: override the fetch options of every URL the command
    reads (``profile.source.fetch_defaults``, the store's reads too) while it runs."""
    if param.name == "headers":
        from memgate.profile.source import parse_header

        try:
            value = tuple(parse_header(v) for v in value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
        if not value:
            return
    elif value is None:
        return
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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="memgate")
def main() -> None:
    """memgate: a CI regression gate for memory profiles (pprof).

    \b
    Exit codes: 0 ok/pass, 1 the gate failed, 2 usage error, 3 bad input or
    tool error, 130 interrupted.
    """


def _profile_args(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Profile arguments: a malformed pyroscope+/parca+ URL is a usage error (exit 2)."""
    from memgate.profile.profilers import check_args

    return check_args(ctx, param, value)


@main.command()
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
@max_decompressed_option
@progress_option
@timeout_option
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

    limits = _limits()
    data, source = read_bytes(spec, limits, prog)
    prog.note(f"decoding {source} ({len(data)} bytes)")
    prof = decode(data, source, limits,
                  on_progress=lambda f: prog.fraction(f"decoding {source}", f))
    if output:
        from memgate.outputs import Output, write_outputs
        from memgate.profile.save import savable

        saved = savable(data, prof, spec, limits)
        write_outputs([Output(output, saved.data)])
        how = ", no duration"
        if saved.duration_seconds is not None:
            how = f", duration {saved.duration_seconds:g}s" + (
                " (from the URL's seconds=)" if saved.duration_source == "url" else "")
        click.echo(f"memgate: saved {source} to {output} ({len(saved.data)} bytes{how})",
                   err=True)
    return prof


@main.command("fetch")
@click.argument("profile")
@click.option("--output", "-o", "output", metavar="FILE", required=True,
              help="Where to save the profile.")
@max_decompressed_option
@progress_option
@timeout_option
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


def _use_color() -> bool:
    import os

    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _emit_report(report: dict[str, Any], fmt: str, summary: str | None, json_path: str | None,
                 step_summary: bool | None, extra: Sequence[Any] = (),
                 verbose: bool = False, text: Callable[[dict[str, Any]], str] | None = None,
                 ) -> None:
    """Write the report files and ``extra`` outputs (all or none) and print the chosen
    format."""
    import os

    from memgate.checkrun import append_step_summary
    from memgate.outputs import Output, write_outputs
    from memgate.report.check import render_json, render_markdown, render_text

    markdown = render_markdown(report)
    outputs = list(extra)
    if json_path:
        outputs.append(Output(json_path, render_json(report)))
    if summary:
        outputs.append(Output(summary, markdown))
    write_outputs(outputs)
    asked = bool(step_summary)
    if step_summary is None:
        step_summary = os.environ.get("GITHUB_ACTIONS") == "true"
    if step_summary and not append_step_summary(markdown, asked=asked) and asked:
        click.echo("memgate: warning: --step-summary: $GITHUB_STEP_SUMMARY is not set; "
                   "nothing appended", err=True)
    if fmt == "json":
        click.echo(render_json(report), nl=False)
    elif fmt == "markdown":
        click.echo(escape.text_block(markdown), nl=False)
    else:
        click.echo(escape.text_block(text(report) if text is not None else
                                     render_text(report, color=_use_color(), verbose=verbose),
                                     sgr=True), nl=False)


report_options = [
    click.option("--summary", "summary", metavar="FILE", default=None,
                 help="Write the markdown summary to FILE."),
    click.option("--json", "json_path", metavar="FILE", default=None,
                 help="Write the JSON report (schema: memgate/schemas/report.schema.json)."),
    click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
                 default="text", show_default=True, help="What to print on stdout."),
    click.option("--step-summary/--no-step-summary", default=None,
                 help="Append the markdown to $GITHUB_STEP_SUMMARY (default: when "
                      "GITHUB_ACTIONS=true)."),
]


html_option = click.option(
    "--html", "html_path", metavar="FILE", default=None,
    help="Write a self-contained HTML page with a diff flame graph and the findings "
         "(docs/html.md).")


def _html_outputs(html_path: str | None, result: Any) -> list[Any]:
    """``--html FILE``: the flame graph page, from the profiles behind the report."""
    if not html_path:
        return []
    from memgate.outputs import Output
    from memgate.report.html import html_page

    page = html_page(result.report, result)
    return [] if page is None else [Output(html_path, page)]


def _diff_output(path: str | None, result: Any) -> list[Any]:
    """``check --output FILE``: the candidate minus the baseline as the gate weighed them.

    Each side is the mean of its runs, each run's flows divided by what the comparison
    divided them by (duration or work), all scaled to the candidates' mean of it (D seconds
    or ops): so ``go tool pprof -top`` on the file prints the report's deltas times D
    (exactly NEW minus BASE for one run each of equal duration). Levels (in use) are averaged
    as they are; raw values (``--no-normalize``) are averaged with no scaling.
    """
    if not path:
        return []
    from memgate.outputs import Output
    from memgate.profile.encode import encode_gzip, weighted_diff_profile

    if not result.baseline:
        click.echo(f"memgate: warning: --output: no baseline, so no difference; {path} is not "
                   "written", err=True)
        return []

    comp = result.comparison
    cdiv, bdiv = comp.candidate.divisors, comp.baseline.divisors
    span = cdiv.mean(axis=0)  # per type: 1 for levels, the mean duration or work for flows

    def side(runs: Sequence[Any], div: Any) -> list[tuple[Any, Any]]:
        return [(r.profile, span / (len(runs) * div[k])) for k, r in enumerate(runs)]

    seconds = comp.normalized and comp.basis == "second"
    duration = (sum(r.duration_seconds or 0.0 for r in result.candidate) / len(result.candidate))
    msg = weighted_diff_profile(side(result.baseline, bdiv), side(result.candidate, cdiv),
                                duration_nanos=round(duration * 1e9) if seconds else None)
    return [Output(path, encode_gzip(msg))]


def _check_outputs(paths: Sequence[str | None], inputs: Sequence[str]) -> None:
    """Before any work: every output can be written and overwrites no input."""
    from memgate.outputs import check_outputs

    check_outputs(paths, inputs)


def _add(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def deco(f: F) -> F:
        for o in reversed(options):
            f = o(f)
        return f
    return deco


@main.command()
@click.argument("profiles", nargs=-1, required=True, metavar="PROFILE...",
                callback=_profile_args)
@click.option("--component", "-c", metavar="NAME",
              help="Component whose baseline (in --baselines) the profiles are checked against.")
@click.option("--baselines", default="baselines", show_default=True, metavar="DIR|URL",
              help="The baseline store: a directory, or s3://BUCKET/PREFIX (also gs://, az://, "
                   "file://, memory://; needs memgate[remote]).")
@click.option("--pointers", default="baselines", show_default=True, metavar="DIR",
              help="With a remote --baselines: the directory of the committed pointer files "
                   "(<component>.remote.json) naming the reviewed version of each baseline.")
@click.option("--baseline", "baseline_files", multiple=True, metavar="PROFILE",
              callback=_profile_args,
              help="Compare against this profile (a file, URL or profiler URL) instead of "
                   "the store (repeatable).")
@click.option("--policy", metavar="FILE", default=None,
              help="Policy file (YAML or JSON). Default: ./memgate.yml if present, else the "
                   "built-in policy (`memgate policy show`).")
@click.option("--duration", metavar="D", default=None,
              help="Duration of the candidate profiles (30s, 10m, 48h) for a time-paced "
                   "workload: allocation flows are compared per second. Also the baseline's "
                   "when it has none of its own. Not needed for in-use levels.")
@click.option("--baseline-duration", metavar="D", default=None,
              help="Duration of the baseline profiles (overrides the store's).")
@click.option("--work", metavar="N", default=None, callback=lambda c, p, v: _work_amount(v, p),
              help="Units of work each candidate run did (requests, iterations) for a "
                   "fixed-work workload: flows are compared per unit of work (B/op), which a "
                   "runner's speed cannot move. Also the baseline's unless --baseline-work or "
                   "the policy's components.<name>.work says otherwise.")
@click.option("--baseline-work", metavar="N", default=None,
              callback=lambda c, p, v: _work_amount(v, p),
              help="Units of work of each baseline run (default: the policy's, else --work).")
@click.option("--no-normalize", is_flag=True,
              help="Compare raw values instead of per-second rates (each profile counts as "
                   "one second).")
@click.option("--allow-missing-baseline", is_flag=True,
              help="Pass with a warning when the component has no baseline yet.")
@click.option("--verbose", "-v", is_flag=True,
              help="Text output: list every limit crossing within sampling noise (~), not "
                   "only their number.")
@_add(report_options)
@html_option
@click.option("--output", "-o", "output", metavar="FILE", default=None,
              help="Write what the gate judged as a pprof profile (gzip) for `go tool pprof "
                   "-http`: the candidate's mean rate minus the baseline's, as amounts over the "
                   "candidate's duration (NEW minus BASE, as `diff --output`, for one run "
                   "each of the same duration).")
@max_decompressed_option
@progress_option
@timeout_option
@handle_errors
def check(profiles: tuple[str, ...], component: str | None, baselines: str, pointers: str,
          baseline_files: tuple[str, ...], policy: str | None, duration: str | None,
          baseline_duration: str | None, work: float | None, baseline_work: float | None,
          no_normalize: bool, allow_missing_baseline: bool,
          verbose: bool, summary: str | None, json_path: str | None, fmt: str,
          step_summary: bool | None, progress: bool | None, html_path: str | None = None,
          output: str | None = None) -> None:
    """Gate candidate profiles against the component's baseline under the policy.

    \b
    Exit codes: 0 pass (warnings allowed), 1 a `fail` finding, 3 error (unreadable
    input, invalid policy, incompatible profiles, no duration, missing baseline).
    In-use values of a heap snapshot are levels, compared as bytes and objects. Allocation
    flows are compared per unit of work (--work, or the policy's components.<name>.work), else
    per second of duration (--duration, the profile's own duration_nanos, or the policy's
    component duration). Every report states the smallest growth the comparison could see.
    The output leads with the verdict and the failing and warning findings, then one line
    counting the crossings within noise (listed with --verbose), what shrank, and the details.
    """
    from memgate.checkrun import CheckOptions, run_check_full
    from memgate.errors import EXIT_FAIL
    from memgate.progress import Progress

    if component is None and not baseline_files:
        raise click.UsageError("give --component NAME (to read baselines/NAME) or "
                               "--baseline PROFILE")
    if component is not None:
        from memgate.baseline.names import validate_component_name

        validate_component_name(component)
    policy_file = policy or ("memgate.yml" if Path("memgate.yml").is_file() else None)
    _check_outputs([json_path, summary, html_path, output],
                   [*profiles, *baseline_files, *([policy_file] if policy_file else [])])
    opts = CheckOptions(
        candidate=profiles, component=component, baselines=baselines, pointers=pointers,
        baseline_files=baseline_files, policy=policy,
        duration=_duration(duration, "--duration"),
        baseline_duration=_duration(baseline_duration, "--baseline-duration"),
        normalize=not no_normalize, allow_missing_baseline=allow_missing_baseline,
        work=work, baseline_work=baseline_work)
    result = run_check_full(opts, _limits(), Progress(progress))
    report = result.report
    _emit_report(report, fmt, summary, json_path, step_summary,
                 _html_outputs(html_path, result) + _diff_output(output, result),
                 verbose=verbose)
    if report["verdict"] == "fail":
        sys.exit(EXIT_FAIL)


@main.command()
@click.argument("base", callback=_profile_args)
@click.argument("new", callback=_profile_args)
@click.option("--duration", metavar="D", default=None,
              help="Duration of NEW (and of BASE when --baseline-duration is not given).")
@click.option("--baseline-duration", metavar="D", default=None, help="Duration of BASE.")
@click.option("--no-normalize", is_flag=True,
              help="Raw values instead of per-second rates. Implied when neither profile "
                   "has a duration and none is given.")
@click.option("--sample-index", "-i", default=None, metavar="NAME|N",
              help="Text view: only this sample type, by name (inuse_space, alloc_objects, "
                   "...) or 0-based index, with pprof's rules. Default: every memory type.")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=10, show_default=True,
              help="Text view: at most N growers and N shrinkers per sample type (0: all).")
@click.option("--cum", is_flag=True, help="Text view: rank by cum instead of flat.")
@_add(report_options)
@html_option
@click.option("--output", "-o", "output", metavar="FILE", default=None,
              help="Write NEW minus BASE as a pprof profile (gzip) that `go tool pprof` opens, "
                   "with the numbers of `go tool pprof -diff_base=BASE NEW`.")
@max_decompressed_option
@progress_option
@timeout_option
@handle_errors
def diff(base: str, new: str, duration: str | None, baseline_duration: str | None,
         no_normalize: bool, sample_index: str | None, limit: int, cum: bool,
         summary: str | None, json_path: str | None, fmt: str,
         step_summary: bool | None, progress: bool | None, html_path: str | None = None,
         output: str | None = None) -> None:
    """Per-function deltas from BASE to NEW, with no policy (like pprof -top -diff_base).

    Compares every memory sample type as rates (or raw values), with absolute and relative
    deltas and their noise intervals. The text output shows, per sample type, the total and
    the top growers and shrinkers, each with its share of the total change (~ marks a change
    within the noise); --sample-index, --limit and --cum shape it as in `memgate top`.
    --format markdown adds a table of every function (flat); --format json (or --json FILE)
    has every function, flat and cum, whatever the text view shows.
    """
    from memgate.checkrun import run_diff
    from memgate.progress import Progress

    d = _duration(duration, "--duration")
    bd = _duration(baseline_duration, "--baseline-duration")
    _check_outputs([json_path, summary, html_path, output], [base, new])
    limits = _limits()
    prog = Progress(progress)
    normalize = not no_normalize
    try:
        result = run_diff([base], [new], duration=d, baseline_duration=bd,
                               normalize=normalize, limits=limits, progress=prog)
    except MemgateError as e:
        # Without any duration anywhere, a diff still makes sense on raw values.
        if normalize and d is None and bd is None and e.slug == "no-duration":
            from memgate.profile.decode import restart_run_budget

            restart_run_budget()
            result = run_diff([base], [new], duration=None, baseline_duration=None,
                                   normalize=False, limits=limits, progress=prog)
        else:
            raise
    from memgate.report.difftext import DiffView, render_diff_text

    types = None
    if sample_index is not None:
        prof = result.candidate[0].profile
        try:
            idx = prof.sample_index(sample_index)
        except ValueError as e:
            raise MemgateError(str(e), source=prof.source, slug="sample-index") from None
        name = prof.sample_types[idx].type
        compared = [st["type"] for st in result.report["sample_types"]]
        if name not in compared:
            raise MemgateError(f"sample type {name} is not compared (memgate compares memory "
                               f"sample types: {', '.join(compared)})", source=prof.source,
                               slug="sample-index")
        types = (name,)
    view = DiffView(sample_types=types, limit=limit, metric="cum" if cum else "flat")
    extra = _html_outputs(html_path, result)
    if output:
        from memgate.outputs import Output
        from memgate.profile.encode import diff_profile, encode_gzip

        extra.append(Output(output, encode_gzip(diff_profile(result.baseline[0].profile,
                                                             result.candidate[0].profile))))
    _emit_report(result.report, fmt, summary, json_path, step_summary, extra,
                 text=lambda report: render_diff_text(report, view))


@main.group()
def policy() -> None:
    """Validate a policy file or print the policy schema."""


@policy.command("check")
@click.argument("file")
@handle_errors
def policy_check(file: str) -> None:
    """Validate FILE against the policy schema; list every error with its path."""
    from memgate.policy import load_policy

    pol = load_policy(file)
    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    click.echo(f"{file}: valid policy (version {pol.version}, {n(len(pol.rules), 'rule')}, "
               f"{n(len(pol.components), 'component')})")
    note = _schema_note(file)
    if note:
        click.echo(f"memgate: note: {file}: {note}", err=True)


#: The editor's modeline, as docs/policy.md, examples/memgate.yml and `policy show` write it.
SCHEMA_MODELINE = "# yaml-language-server: $schema=policy.schema.json"


def _schema_note(file: str) -> str | None:
    """What is wrong with the schema a policy names for editors, if anything: a file that is
    not there (an editor then validates nothing, silently), or a memgate.dev address (nothing
    serves it). Only the text is read; the named path is checked, never opened."""
    import json
    import re

    try:
        head = Path(file).read_text("utf-8", errors="replace")[:65536]
    except OSError:
        return None
    m = re.search(r"^#\s*yaml-language-server:\s*\$schema=(\S+)", head, re.MULTILINE)
    target = m.group(1) if m else None
    if target is None and head.lstrip().startswith("{"):
        try:
            data = json.loads(head)
        except ValueError:
            data = None
        value = data.get("$schema") if isinstance(data, dict) else None
        target = value if isinstance(value, str) else None
    if not target:
        return None
    fix = (f"write the schema next to the policy with `memgate policy schema > "
           f"{Path(file).parent / 'policy.schema.json'}` and name it $schema=policy.schema.json")
    if "://" in target:
        if "memgate.dev" in target:
            return f"the $schema {target} is not served by anything; {fix}"
        return None
    if not (Path(file).parent / target).is_file():
        return f"the $schema file {target} does not exist next to it; {fix}"
    return None


@policy.command("schema")
def policy_schema_cmd() -> None:
    """Print the policy JSON Schema (for editors: yaml-language-server $schema)."""
    import json

    from memgate.policy import policy_schema

    click.echo(json.dumps(policy_schema(), indent=2))


@policy.command("show")
def policy_show() -> None:
    """Print the built-in default policy with the reasons for its numbers.

    A starting point for ./memgate.yml: `memgate policy show > memgate.yml`, and
    `memgate policy schema > policy.schema.json` for editors that validate as you type.
    """
    from importlib.resources import files

    text = (files("memgate") / "data" / "default-policy.yml").read_text("utf-8")
    # The packaged file points at the schema beside it; a copy in a user's repository needs
    # the schema written next to it.
    text = text.replace("# yaml-language-server: $schema=../schemas/policy.schema.json",
                        f"{SCHEMA_MODELINE}\n"
                        "# (write it with: memgate policy schema > policy.schema.json)", 1)
    click.echo(text, nl=False)


def _register_groups() -> None:
    """Command groups that live in their own modules (baseline store, report tools, Python
    capture)."""
    from memgate.cli_baseline import baseline
    from memgate.cli_python import capture, convert
    from memgate.cli_report import report

    main.add_command(baseline)
    main.add_command(report)
    main.add_command(capture)
    main.add_command(convert)
    # The store reads and decodes profiles in `baseline update` and `accept`: the same input
    # limits, and for `update` (which takes URLs) the same fetch options, as `check`.
    for name in ("update", "accept"):
        cmd = baseline.commands.get(name)
        if cmd is not None and not any(p.name == "max_samples" for p in cmd.params):
            max_decompressed_option(cmd)
            if name == "update":
                timeout_option(cmd)


_register_groups()


def entry() -> None:
    """The ``memgate`` console script and ``python -m memgate``: the command-line process.

    Only here, not in :func:`main` (which tests and embedders call in their own process), is
    the allocator tuned for memgate (memgate/allocator.py).
    """
    from memgate.allocator import keep_freed_memory

    keep_freed_memory()
    main()


if __name__ == "__main__":  # pragma: no cover
    entry()
