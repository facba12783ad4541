"""The GitHub Action's program: ``python -m memgate.action``, run by ``action.yml``.

The action's inputs arrive only as environment variables (``MEMGATE_PROFILES``, ...), never
spliced into a shell script, so no input value can run a command. This module turns them into
the same :class:`~memgate.checkrun.CheckOptions` that ``memgate check`` builds, calls the same
:func:`~memgate.checkrun.run_check_full` and writes the report with the same
:func:`~memgate.report.emit.emit_report`, so the action and the CLI cannot judge or report
differently; then it speaks GitHub's conventions: the step summary, one annotation per
finding, step outputs in heredoc form, and optionally one pull-request comment.

Exit codes are the CLI's: 0 pass or warn, 1 fail (0 when ``fail-on-regression`` is false),
3 bad input. An error still sets the ``verdict`` output (``error``) so that later steps with
``if: always()`` can tell an error from a regression.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from memgate import escape
from memgate.errors import (
    EXIT_ERROR,
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    MemgateError,
    internal_error,
)
from memgate.github import (
    Client,
    CommentSkipped,
    GitHubAPIError,
    PullRequest,
    SourceLine,
    append_step_summary,
    comment_marker,
    finding_annotation,
    hint_for,
    repository_file,
    workflow_command,
    write_outputs,
)

if TYPE_CHECKING:
    from memgate.checkrun import CheckOptions

#: How GitHub shows at most this many annotations of one kind per step; more are only in the log.
ANNOTATIONS_SHOWN = 10
#: The comment gets a smaller rendering than the step summary (GitHub: 65,536 characters).
COMMENT_MARKDOWN_LIMIT = 60_000
REPORT_NAME = "memgate-report.json"
SUMMARY_NAME = "memgate-summary.md"
TITLE = "memgate"


class InputError(MemgateError, slug="action-input"):
    """An action input has a value memgate cannot use."""


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    """``true``/``false`` in any case, as YAML 1.2 and GitHub write them; else an error naming
    the input (a typo such as ``ture`` must not silently switch the gate off)."""
    if value is None or value.strip() == "":
        return default
    v = value.strip().lower()
    if v == "true":
        return True
    if v == "false":
        return False
    raise InputError(f"must be true or false, not {value.strip()!r}", source=name)


def _opt(value: str | None) -> str | None:
    """An empty input is an absent one (GitHub passes unset inputs as empty strings)."""
    if value is None:
        return None
    v = value.strip()
    return v or None


@dataclass(frozen=True)
class ActionInputs:
    """The action's inputs as read from ``MEMGATE_*`` environment variables."""

    #: What to check: the ``profiles`` input as ``candidate`` (paths and globs, expanded when
    #: the check runs), and the component, baselines, policy, duration and work inputs.
    check: CheckOptions
    fail_on_regression: bool = True
    summary: bool = True
    json_report: str | None = None
    #: Where to write the HTML diff flame graph (docs/html.md); None: no page.
    html: str | None = None
    comment: bool = False
    github_token: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ActionInputs:
        profiles = tuple((env.get("MEMGATE_PROFILES") or "").split())
        if not profiles:
            raise InputError("no profiles given: set the `profiles` input to one or more paths "
                             "or globs", source="profiles")
        component = _opt(env.get("MEMGATE_COMPONENT"))
        if component is not None:
            from memgate.baseline.names import validate_component_name

            try:
                validate_component_name(component)
            except MemgateError as e:
                raise InputError(e.message, source="component") from None
        duration = None
        text = _opt(env.get("MEMGATE_DURATION"))
        if text is not None:
            from memgate.quantities import parse_duration

            try:
                duration = parse_duration(text)
            except ValueError as e:
                raise InputError(str(e), source="duration") from None
        work = None
        text = _opt(env.get("MEMGATE_WORK"))
        if text is not None:
            try:
                work = float(text)
            except ValueError:
                work = None
            if work is None or not (math.isfinite(work) and work > 0):
                raise InputError(f"work must be a positive number of units of work, got "
                                 f"{text!r}", source="work")
        from memgate.checkrun import CheckOptions

        check = CheckOptions(candidate=profiles, component=component, work=work,
                             baselines=_opt(env.get("MEMGATE_BASELINES")) or "baselines",
                             policy=_opt(env.get("MEMGATE_POLICY")), duration=duration)
        return cls(
            check=check,
            fail_on_regression=parse_bool(
                "fail-on-regression", env.get("MEMGATE_FAIL_ON_REGRESSION"), True),
            summary=parse_bool("summary", env.get("MEMGATE_SUMMARY"), True),
            json_report=_opt(env.get("MEMGATE_JSON_REPORT")),
            html=_opt(env.get("MEMGATE_HTML")),
            comment=parse_bool("comment", env.get("MEMGATE_COMMENT"), False),
            github_token=_opt(env.get("GITHUB_TOKEN")),
        )


def expand_profiles(patterns: Sequence[str]) -> list[str]:
    """Expand globs (``**`` included) in order, each pattern's matches sorted, duplicates once.

    A glob that matches no file is an error naming it: a typo in a path must not make the
    gate compare fewer profiles than intended. A plain path or URL is passed on unchanged and
    the loader reports it if it cannot be read. ``**`` does not follow links to directories
    and the expansion is bounded (:func:`memgate.fs.glob_files`); a file name that is not
    UTF-8 is refused (it could not be named in the report, the summary or an annotation).
    """
    from memgate.fs import glob_files, has_magic, require_text_name

    out: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        if "://" in pattern or pattern == "-" or not has_magic(pattern):
            matches = [pattern]
        else:
            matches = glob_files(pattern)
            if not matches:
                raise InputError(f"{pattern!r} matched no file (relative to "
                                 f"{os.getcwd()})", source="profiles")
        for m in matches:
            require_text_name(m)
            key = os.path.normpath(m) if "://" not in m else m
            if key not in seen:
                seen.add(key)
                out.append(m)
    return out


def _output_paths(inputs: ActionInputs, env: Mapping[str, str]) -> tuple[Path, Path]:
    """Where the JSON report and the markdown summary go.

    Under a runner both default to a fresh directory in ``$RUNNER_TEMP``, so that two uses of
    the action in one job (two components) do not overwrite each other's files.
    """
    temp = env.get("RUNNER_TEMP")
    if temp and Path(temp).is_dir():
        base = Path(tempfile.mkdtemp(prefix="memgate-", dir=temp))
    else:
        base = Path.cwd()
    report = Path(inputs.json_report) if inputs.json_report else base / REPORT_NAME
    summary = base / SUMMARY_NAME
    return report.absolute(), summary.absolute()


def regressions(report: Mapping[str, Any]) -> int:
    """Significant findings of severity ``fail``: what fails the gate."""
    return sum(1 for f in report["findings"] if f["severity"] == "fail" and f["significant"])


def source_lines(report: Mapping[str, Any], profiles: Sequence[Any],
                 root: str | os.PathLike[str]) -> dict[str, SourceLine]:
    """Where each finding's function is in the repository at ``root``, when its profile's
    line table names a file there (:func:`memgate.github.repository_file`): the function's
    ``start_line``, else the first line the profile records for it."""
    wanted = {str(f["function"]) for f in report["findings"]}
    out: dict[str, SourceLine] = {}
    matched: dict[str, str | None] = {}
    for prof in profiles:
        for idx, fn in enumerate(prof.functions):
            if fn.name not in wanted or fn.name in out or not fn.filename:
                continue
            if fn.filename not in matched:
                matched[fn.filename] = repository_file(fn.filename, root)
            path = matched[fn.filename]
            if path is None:
                continue
            line = fn.start_line if fn.start_line > 0 else 0
            if not line:
                locs = prof.locations
                nums = locs.line_number[(locs.line_function == idx) & (locs.line_number > 0)]
                line = int(nums.min()) if nums.size else 1
            out[fn.name] = SourceLine(path, line)
    return out


def annotate(report: Mapping[str, Any], out: TextIO,
             where: Mapping[str, SourceLine] | None = None) -> None:
    """One ``::error``/``::warning`` per finding, on the function's file and line when
    ``where`` knows them; crossings within noise are not findings."""
    counts = {"fail": 0, "warn": 0}
    for f in report["findings"]:
        if not f.get("significant", True):
            continue
        out.write(finding_annotation(f, (where or {}).get(str(f["function"]))) + "\n")
        counts["fail" if f["severity"] == "fail" else "warn"] += 1
    hidden = sum(max(0, n - ANNOTATIONS_SHOWN) for n in counts.values())
    if hidden:
        out.write(
            f"memgate: GitHub shows {ANNOTATIONS_SHOWN} annotations of each kind per step; "
            f"{hidden} more findings are in the log above and in the summary\n")


def post_comment(inputs: ActionInputs, env: Mapping[str, str], markdown: str,
                 out: TextIO) -> None:
    """Create or update the PR comment; any failure is a warning, never the job's failure."""
    try:
        pr = PullRequest.from_env(env, inputs.github_token)
        client = Client(pr.api_url, pr.token)
        result = client.upsert_comment(pr, comment_marker(inputs.check.component), markdown)
    except CommentSkipped as e:
        out.write(workflow_command(
            "warning", f"not commenting on the pull request: {e}", title=TITLE) + "\n")
        return
    except GitHubAPIError as e:
        out.write(workflow_command(
            "warning", f"could not comment on the pull request ({e}); {hint_for(e)}. The "
            "result is in the job summary.", title=TITLE) + "\n")
        return
    where = f": {escape.text(result.url)}" if result.url else ""
    out.write(f"memgate: {result.action} the pull-request comment{where}\n")


def run(env: Mapping[str, str], out: TextIO) -> int:
    """The whole action; returns the exit code. Raises MemgateError for bad input."""
    from memgate.checkrun import run_check_full
    from memgate.config import Config
    from memgate.fs import outside_roots
    from memgate.outputs import Output, check_outputs
    from memgate.progress import Progress
    from memgate.report.emit import emit_report
    from memgate.report.format import VERDICT_WORD
    from memgate.report.html import html_page
    from memgate.report.markdown import render_markdown

    inputs = ActionInputs.from_env(env)
    # The limits (MEMGATE_MAX_*) are inputs too: a bad one is found before any work. With a
    # run budget: --max-total counts every profile of the check.
    config = Config.from_env(env)
    profiles = expand_profiles(inputs.check.candidate)
    out.write(f"memgate: checking {len(profiles)} profile(s)"
              f"{f' of {inputs.check.component}' if inputs.check.component else ''}: "
              f"{' '.join(escape.text(p) for p in profiles)}\n")
    opts = replace(inputs.check, candidate=profiles)
    report_path, summary_path = _output_paths(inputs, env)
    html_path = Path(inputs.html).absolute() if inputs.html else None
    roots = [env.get("GITHUB_WORKSPACE") or os.getcwd(), env.get("RUNNER_TEMP") or ""]
    for name, path in (("json-report", report_path), ("html", html_path)):
        if path is not None:
            # The branch may commit `memgate.html -> /home/runner/.bashrc`: an output that a
            # symbolic link leads out of the workspace (or $RUNNER_TEMP) is not written.
            if outside_roots(path, roots):
                raise InputError(f"{escape.text(path)} is a symbolic link (or inside one) that "
                                 f"leads to {escape.text(os.path.realpath(path))}, outside the "
                                 "workspace; remove the link or choose another path",
                                 source=name)
            try:
                check_outputs([str(path)], profiles)
            except MemgateError as e:
                raise InputError(f"{e}", source=name) from None
    check_outputs([str(report_path), str(summary_path), str(html_path or "")], profiles)
    result = run_check_full(opts, config, Progress(False))
    report = result.report
    page = html_page(report, result) if html_path else None
    emit_report(report, json_path=str(report_path), summary_path=str(summary_path),
                extra=[Output(str(html_path), page)] if html_path and page is not None else [],
                step_summary=None if inputs.summary else False)
    # Annotation paths are relative to the repository root (the checkout), not to the
    # working-directory input.
    root = env.get("GITHUB_WORKSPACE") or os.getcwd()
    if not Path(root).is_dir():
        root = os.getcwd()
    annotate(report, out, source_lines(
        report, [r.profile for r in (*result.candidate, *result.baseline)], root))

    verdict = report["verdict"]
    n = regressions(report)
    write_outputs({"verdict": verdict, "regressions": str(n), "report": str(report_path),
                   "summary": str(summary_path),
                   "html": str(html_path) if html_path and page is not None else ""}, env)
    out.write(f"memgate: {VERDICT_WORD[verdict]} ({report['summary']['fail']} failing, "
              f"{report['summary']['warn']} warning, {report['summary']['within_noise']} "
              f"within noise); report: {escape.text(report_path)}\n")
    if inputs.comment:
        post_comment(inputs, env, render_markdown(report, limit=COMMENT_MARKDOWN_LIMIT), out)
    if verdict != "fail":
        return EXIT_OK
    if not inputs.fail_on_regression:
        out.write(workflow_command(
            "warning", f"the gate failed ({n} regression{'s' if n != 1 else ''}) but "
            "fail-on-regression is false: not failing the job", title=TITLE) + "\n")
        return EXIT_OK
    return EXIT_FAIL


def _report_error(error: MemgateError, env: Mapping[str, str], out: TextIO) -> None:
    """An error is shown three ways: the annotation, the step summary, and ``verdict=error``."""
    out.write(workflow_command("error", str(error), title=TITLE) + "\n")
    try:
        write_outputs({"verdict": "error"}, env)
        if parse_bool("summary", env.get("MEMGATE_SUMMARY"), True):
            code = escape.md_code(str(error), table=False)
            append_step_summary(f"## ⛔ memgate: **ERROR**\n\n{code}\n")
    except (OSError, MemgateError):
        pass  # the annotation above already says what went wrong


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: never a traceback for bad input, always a named exit code."""
    del argv  # inputs come from the environment only
    env = dict(os.environ)
    out = sys.stdout
    try:
        return run(env, out)
    except MemgateError as e:
        _report_error(e, env, out)
        return EXIT_ERROR
    except OSError as e:  # the runner's own files ($GITHUB_OUTPUT, the step summary)
        _report_error(MemgateError(f"cannot write: {e.strerror or e}", source=e.filename),
                      env, out)
        return EXIT_ERROR
    except KeyboardInterrupt:
        out.write("memgate: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - a bug: still exit 3 and verdict=error, not exit 1
        if os.environ.get("MEMGATE_DEBUG", "").strip() not in ("", "0"):
            raise
        _report_error(internal_error(e), env, out)
        return EXIT_ERROR
    finally:
        out.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
