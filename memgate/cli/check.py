"""``memgate check`` (the gate) and ``memgate diff`` (the same comparison, no policy).

Both print one report in the chosen format and write the report files (``--json``,
``--summary``, ``--html``, ``--output``) all or none.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from memgate import escape
from memgate.cli.common import (
    _add,
    _check_outputs,
    _duration,
    _profile_args,
    _work_amount,
    command_config,
    duration_option,
    handle_errors,
    profile_reading_options,
)
from memgate.errors import MemgateError


def _use_color() -> bool:
    import os

    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _emit_report(report: dict[str, Any], fmt: str, summary: str | None, json_path: str | None,
                 step_summary: bool | None, extra: Sequence[Any] = (),
                 verbose: bool = False, text: Callable[[dict[str, Any]], str] | None = None,
                 ) -> None:
    """Write the report files and ``extra`` outputs (all or none) and print the chosen
    format."""
    from memgate.report.build import render_json
    from memgate.report.emit import emit_report
    from memgate.report.text import render_text

    emitted = emit_report(report, json_path=json_path, summary_path=summary, extra=extra,
                          step_summary=step_summary)
    markdown = emitted.markdown
    if step_summary and not emitted.step_summary:
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


@click.command()
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
@duration_option("--duration",
                 help="Duration of the candidate profiles (30s, 10m, 48h) for a time-paced "
                   "workload: allocation flows are compared per second. Also the baseline's "
                   "when it has none of its own. Not needed for in-use levels.")
@duration_option("--baseline-duration",
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
@profile_reading_options
@handle_errors
def check(profiles: tuple[str, ...], component: str | None, baselines: str, pointers: str,
          baseline_files: tuple[str, ...], policy: str | None, duration: str | None,
          baseline_duration: str | None, work: float | None, baseline_work: float | None,
          no_normalize: bool, allow_missing_baseline: bool,
          verbose: bool, summary: str | None, json_path: str | None, fmt: str,
          step_summary: bool | None, progress: bool | None, html_path: str | None = None,
          output: str | None = None) -> None:
    """Gate candidate profiles against the component's baseline under the policy.

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
    result = run_check_full(opts, command_config(), Progress(progress))
    report = result.report
    _emit_report(report, fmt, summary, json_path, step_summary,
                 _html_outputs(html_path, result) + _diff_output(output, result),
                 verbose=verbose)
    if report["verdict"] == "fail":
        sys.exit(EXIT_FAIL)


@click.command()
@click.argument("base", callback=_profile_args)
@click.argument("new", callback=_profile_args)
@duration_option("--duration",
                 help="Duration of NEW (and of BASE when --baseline-duration is not given).")
@duration_option("--baseline-duration", help="Duration of BASE.")
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
@profile_reading_options
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
    config = command_config()
    prog = Progress(progress)
    normalize = not no_normalize
    try:
        result = run_diff([base], [new], duration=d, baseline_duration=bd,
                               normalize=normalize, config=config, progress=prog)
    except MemgateError as e:
        # Without any duration anywhere, a diff still makes sense on raw values.
        if normalize and d is None and bd is None and e.slug == "no-duration":
            config.restart_budget()
            result = run_diff([base], [new], duration=None, baseline_duration=None,
                              normalize=False, config=config, progress=prog)
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
