"""GitHub Actions plumbing: workflow commands, step outputs, the step summary, and the
pull-request comment.

Pure helpers first (escaping, ``$GITHUB_OUTPUT`` heredocs, annotation lines), so that the
rules GitHub parses by are written down once and unit-tested; then a small REST client on
:mod:`urllib` (no extra dependency in the action's install) that creates or updates one
comment per component on the pull request.

The comment is a convenience, never part of the gate: every way it can fail (no token, not a
pull request, a fork's read-only token, an unreachable API) is reported to the caller as a
:class:`CommentSkipped` or :class:`GitHubAPIError` so that the action can print a warning and
keep the gate's exit code.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from memgate import __version__, escape
from memgate.errors import MemgateError

#: GitHub refuses comment bodies over 65,536 characters; keep a margin for the marker.
COMMENT_LIMIT = 65_000
#: Seconds to wait for any one API request: a slow API must not hold up the job for long.
API_TIMEOUT = 10.0
#: Pages of comments read before giving up the search (100 comments each).
MAX_PAGES = 50
DEFAULT_API_URL = "https://api.github.com"
#: Who writes with the workflow's GITHUB_TOKEN (which may not read ``GET /user``).
ACTIONS_BOT = "github-actions[bot]"
PR_EVENTS = ("pull_request", "pull_request_target")


# --------------------------------------------------------------------------- workflow commands


def escape_data(text: str) -> str:
    """Escape a workflow command's message, as the runner unescapes it.

    Without this a newline in a message would end the command and the rest of the line would
    be printed as plain log text (or read as another command). Other control characters are
    shown as escapes (:func:`memgate.escape.workflow_data`).
    """
    return escape.workflow_data(text)


def escape_property(text: str) -> str:
    """Escape a workflow command's property value (``title=...``): also ``:`` and ``,``,
    which separate the properties from each other and from the message."""
    return escape.workflow_property(text)


def workflow_command(command: str, message: str, **properties: str) -> str:
    """One ``::command key=value,...::message`` line, everything escaped."""
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items())
    head = f"::{command} {props}" if props else f"::{command}"
    return f"{head}::{escape_data(message)}"


def annotation(severity: str, title: str, message: str) -> str:
    """An ``::error`` (severity ``fail``) or ``::warning`` (anything else) annotation."""
    command = "error" if severity in ("fail", "error") else "warning"
    return workflow_command(command, message, title=title)


def finding_annotation(finding: Mapping[str, Any], where: SourceLine | None = None) -> str:
    """The annotation of one finding: titled with the rule and the function, so that the
    annotation list on the run page reads as a list of culprits; with ``where`` (the
    function's file in the repository) also ``file=`` and ``line=``, so that GitHub shows it
    on the pull request's diff."""
    title = f"memgate {finding['rule']}: {finding['function']}"
    command = "error" if str(finding["severity"]) in ("fail", "error") else "warning"
    if where is None:
        return workflow_command(command, str(finding["message"]), title=title)
    return workflow_command(command, str(finding["message"]), file=where.path,
                            line=str(where.line), title=title)


# --------------------------------------------------------------------------- source files


@dataclass(frozen=True)
class SourceLine:
    """A place in the repository: ``path`` relative to its root, with ``/``; ``line`` >= 1."""

    path: str
    line: int


#: Path strings come from a profile, which a pull request controls: bounded before any use.
_MAX_SOURCE_PATH = 4096
_MAX_SOURCE_PARTS = 64


def repository_file(source: str, root: str | os.PathLike[str]) -> str | None:
    """The repository file a profile's source path names, matched on path suffixes.

    Go records a function's file as the build saw it: an import path with ``-trimpath``
    (``github.com/org/repo/pkg/x.go``), else an absolute path on the build machine
    (``/home/runner/work/repo/repo/pkg/x.go``). The longest suffix that is a regular file
    under ``root`` wins (``pkg/x.go``). The string is untrusted: it is split into plain names
    (none of them ``..``, no NUL), and a match whose real path (symlinks resolved) leaves the
    repository is not one. Returns the path relative to ``root`` with ``/``, or None.
    """
    if not source or len(source) > _MAX_SOURCE_PATH or "\x00" in source:
        return None
    parts = [p for p in re.split(r"[/\\]+", source) if p and p != "."]
    if not parts or ".." in parts or len(parts) > _MAX_SOURCE_PARTS:
        return None
    try:
        real_root = os.path.realpath(root)
    except (OSError, ValueError):
        return None
    for i in range(len(parts)):
        rel = "/".join(parts[i:])
        candidate = os.path.join(real_root, *parts[i:])
        try:
            real = os.path.realpath(candidate)
            if os.path.commonpath([real, real_root]) != real_root or real == real_root:
                continue
            if os.path.isfile(real):
                return rel
        except (OSError, ValueError):
            continue
    return None


# --------------------------------------------------------------------------- step outputs


def new_delimiter(values: Iterable[str] = ()) -> str:
    """A heredoc delimiter that occurs in none of ``values``.

    Random, so that no value (a file name, a message) can end the heredoc early and inject
    another output: the same rule the runner's own toolkit follows.
    """
    texts = list(values)
    while True:
        delim = f"ghadelimiter_{uuid.uuid4()}"
        if not any(delim in t for t in texts):
            return delim


def format_outputs(values: Mapping[str, str]) -> str:
    """``name<<DELIM`` / value / ``DELIM`` blocks for ``$GITHUB_OUTPUT``, one per value."""
    out = []
    for name, value in values.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            raise ValueError(f"invalid output name {name!r}")
        delim = new_delimiter([name, value])
        out.append(f"{name}<<{delim}\n{value}\n{delim}\n")
    return "".join(out)


def write_outputs(values: Mapping[str, str], env: Mapping[str, str] | None = None) -> bool:
    """Append ``values`` to ``$GITHUB_OUTPUT``; False when not running under Actions."""
    environ = os.environ if env is None else env
    target = environ.get("GITHUB_OUTPUT")
    if not target:
        return False
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(format_outputs(values))
    return True


def step_summary_target(asked: bool = False) -> str | None:
    """$GITHUB_STEP_SUMMARY when a summary goes there: under GitHub Actions, or (``asked``,
    ``--step-summary``) wherever the variable is set; None otherwise."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target or (not asked and os.environ.get("GITHUB_ACTIONS") != "true"):
        return None
    return target


def append_step_summary(markdown: str, *, asked: bool = False, check_only: bool = False
                        ) -> bool:
    """Append to $GITHUB_STEP_SUMMARY (see :func:`step_summary_target`); whether it did.

    ``check_only``: open it for appending and write nothing, so that a target that cannot be
    written is found before the report's other files are (all or none)."""
    target = step_summary_target(asked)
    if target is None:
        return False
    try:
        with open(target, "a", encoding="utf-8") as fh:
            if not check_only:
                fh.write(markdown)
                if not markdown.endswith("\n"):
                    fh.write("\n")
    except OSError as e:
        raise MemgateError(f"cannot append the step summary: {e.strerror or e}",
                           source=f"GITHUB_STEP_SUMMARY={target}", slug="bad-path") from None
    return True


# --------------------------------------------------------------------------- pull-request comment


class GitHubAPIError(Exception):
    """An API request failed. ``status`` is the HTTP status, or None when none arrived."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CommentSkipped(Exception):
    """There is nothing to comment on, or no way to: not a pull request, no token, ..."""


@dataclass(frozen=True)
class PullRequest:
    """Where the comment goes, from the runner's environment."""

    api_url: str
    repository: str
    number: int
    token: str

    @classmethod
    def from_env(cls, env: Mapping[str, str], token: str | None) -> PullRequest:
        """Read the event the run is for; raise :class:`CommentSkipped` if it is no PR."""
        if not token:
            raise CommentSkipped("no github-token given")
        event_name = env.get("GITHUB_EVENT_NAME", "")
        if event_name not in PR_EVENTS:
            raise CommentSkipped(
                f"this run is for a {event_name or 'unknown'!s} event, not a pull request"
            )
        repository = env.get("GITHUB_REPOSITORY", "")
        owner, _, name = repository.partition("/")
        if not (re.fullmatch(r"[A-Za-z0-9-]+", owner) and re.fullmatch(r"[A-Za-z0-9_.-]+", name)
                and name not in (".", "..")):
            raise CommentSkipped(f"GITHUB_REPOSITORY is not owner/name: {repository!r}")
        number = pr_number(env.get("GITHUB_EVENT_PATH", ""))
        api_url = (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        return cls(api_url=api_url, repository=repository, number=number, token=token)


def pr_number(event_path: str) -> int:
    """The pull request's number from the event payload (``pull_request.number``)."""
    if not event_path:
        raise CommentSkipped("GITHUB_EVENT_PATH is not set")
    try:
        with open(event_path, encoding="utf-8") as fh:
            event = json.load(fh)
    except (OSError, ValueError) as e:
        raise CommentSkipped(f"cannot read the event payload {event_path}: {e}") from None
    pr = event.get("pull_request") if isinstance(event, dict) else None
    number = pr.get("number") if isinstance(pr, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise CommentSkipped("the event payload has no pull_request.number")
    return number


def comment_marker(component: str | None) -> str:
    """The hidden first line that identifies memgate's comment for one component, so that a
    re-run edits its own comment instead of adding one per push, and components gated in
    separate jobs keep separate comments."""
    return f"<!-- memgate:{component or 'default'} -->"


def comment_body(marker: str, markdown: str) -> str:
    """Marker plus markdown, cut to GitHub's comment limit with a note."""
    body = f"{marker}\n{markdown}"
    if len(body) <= COMMENT_LIMIT:
        return body
    note = "\n\n_Comment truncated to GitHub's size limit; the run's summary has it all._\n"
    return body[: COMMENT_LIMIT - len(note)] + note


@dataclass(frozen=True)
class CommentResult:
    action: str  # "created" | "updated"
    id: int
    url: str | None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are refused, not followed: urllib would resend the Authorization header to
    whatever host a redirect names."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> None:
        return None


class Client:
    """Just enough of the REST API for one comment, with the token only ever sent to the
    configured API host."""

    def __init__(self, api_url: str, token: str, timeout: float = API_TIMEOUT) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        base = urllib.parse.urlsplit(self.api_url)
        self._origin = (base.scheme, base.netloc)
        self._opener = urllib.request.build_opener(_NoRedirect())

    def request(
        self, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> tuple[Any, Mapping[str, str]]:
        """One request; returns the decoded JSON and the response headers."""
        parts = urllib.parse.urlsplit(url)
        if (parts.scheme, parts.netloc) != self._origin:
            raise GitHubAPIError(f"refusing to send the token to {parts.scheme}://{parts.netloc}")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", f"memgate/{__version__}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as e:
            raise GitHubAPIError(
                f"{method} {parts.path}: HTTP {e.code}{_api_message(e)}", e.code
            ) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise GitHubAPIError(f"{method} {parts.path}: {reason}") from None
        try:
            return (json.loads(raw) if raw else None), headers
        except ValueError:
            raise GitHubAPIError(f"{method} {parts.path}: the response is not JSON") from None

    def viewer_login(self) -> str:
        """The login the token writes as: ``GET /user`` for a personal token; the workflow's
        GITHUB_TOKEN may not read it (403) and writes as ``github-actions[bot]``."""
        try:
            me, _ = self.request("GET", f"{self.api_url}/user")
        except GitHubAPIError as e:
            if e.status in (401, 403, 404):
                return ACTIONS_BOT
            raise
        login = me.get("login") if isinstance(me, dict) else None
        return login if isinstance(login, str) and login else ACTIONS_BOT

    def find_comment(self, pr: PullRequest, marker: str,
                     author: str | None = None) -> dict[str, Any] | None:
        """The first comment on the PR whose body starts with ``marker`` (all pages), and,
        with ``author``, that this login wrote: anyone can post a comment that starts with
        the marker, and memgate must not edit other people's comments (nor let them steer
        which comment carries the verdict)."""
        url: str | None = (
            f"{self.api_url}/repos/{pr.repository}/issues/{pr.number}/comments?per_page=100"
        )
        for _ in range(MAX_PAGES):
            if url is None:
                return None
            page, headers = self.request("GET", url)
            if not isinstance(page, list):
                raise GitHubAPIError("listing comments: the response is not a list")
            for c in page:
                if not isinstance(c, dict) or not str(c.get("body") or "").startswith(marker):
                    continue
                user = c.get("user")
                login = user.get("login") if isinstance(user, dict) else None
                if author is None or login == author:
                    return c
            url = next_link(headers.get("link", ""))
        return None

    def upsert_comment(self, pr: PullRequest, marker: str, markdown: str) -> CommentResult:
        """Update memgate's comment for ``marker``, or create it."""
        body = comment_body(marker, markdown)
        existing = self.find_comment(pr, marker, self.viewer_login())
        if existing is not None and isinstance(existing.get("id"), int):
            cid = existing["id"]
            resp, _ = self.request(
                "PATCH", f"{self.api_url}/repos/{pr.repository}/issues/comments/{cid}",
                {"body": body})
            return CommentResult("updated", cid, _html_url(resp))
        resp, _ = self.request(
            "POST", f"{self.api_url}/repos/{pr.repository}/issues/{pr.number}/comments",
            {"body": body})
        cid = resp.get("id") if isinstance(resp, dict) else None
        return CommentResult("created", cid if isinstance(cid, int) else 0, _html_url(resp))


def _html_url(resp: Any) -> str | None:
    url = resp.get("html_url") if isinstance(resp, dict) else None
    return url if isinstance(url, str) else None


def _api_message(e: urllib.error.HTTPError) -> str:
    """GitHub's own explanation (``{"message": ...}``), kept to one short line."""
    try:
        payload = json.loads(e.read() or b"null")
    except (ValueError, OSError):
        return ""
    msg = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(msg, str) or not msg:
        return ""
    return ": " + " ".join(msg.split())[:200]


def next_link(header: str) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 ``Link`` header, as GitHub paginates."""
    for part in header.split(","):
        m = re.match(r'\s*<([^>]*)>\s*;(.*)$', part)
        if m and re.search(r'\brel="?next"?', m.group(2)):
            return m.group(1)
    return None


def hint_for(error: GitHubAPIError) -> str:
    """Why a comment request most likely failed, in terms of what the user can change."""
    if error.status in (401, 403):
        return (
            "the token may not write pull-request comments: fork pull requests get a read-only "
            "token; otherwise grant `permissions: pull-requests: write`"
        )
    if error.status == 404:
        return "the pull request or repository was not found with this token"
    return "the GitHub API could not be reached"


__all__ = [
    "COMMENT_LIMIT",
    "Client",
    "CommentResult",
    "CommentSkipped",
    "GitHubAPIError",
    "PullRequest",
    "annotation",
    "comment_body",
    "comment_marker",
    "escape_data",
    "escape_property",
    "finding_annotation",
    "repository_file",
    "SourceLine",
    "format_outputs",
    "hint_for",
    "new_delimiter",
    "next_link",
    "pr_number",
    "workflow_command",
    "write_outputs",
]
