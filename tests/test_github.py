"""GitHub plumbing: workflow-command escaping, step outputs, and the pull-request comment.

The comment is tested against a loopback HTTP server standing in for the REST API (the
action finds it through ``GITHUB_API_URL``): the first run creates the comment, the second
updates the same one, and a fork's read-only token (HTTP 403) only produces a warning.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from memgate.github import (
    COMMENT_LIMIT,
    Client,
    CommentSkipped,
    GitHubAPIError,
    PullRequest,
    comment_body,
    comment_marker,
    escape_data,
    escape_property,
    finding_annotation,
    format_outputs,
    next_link,
    pr_number,
    workflow_command,
    write_outputs,
)
from tests.test_action import SVC, Workspace, make_workspace, parse_file_command, run_action

TOKEN = "ghs_test_token"


# --------------------------------------------------------------------------- pure helpers


def test_escaping() -> None:
    assert escape_data("50% of a\r\nb") == "50%25 of a%0D%0Ab"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert workflow_command("error", "x: 1%", title="t: a,b") == "::error title=t%3A a%2Cb::x: 1%25"
    assert workflow_command("warning", "plain") == "::warning::plain"


def test_finding_annotation() -> None:
    f = {"rule": "json", "function": "a.(*B).c", "severity": "fail", "message": "grew\n+5%"}
    assert finding_annotation(f) == "::error title=memgate json%3A a.(*B).c::grew%0A+5%25"
    assert finding_annotation({**f, "severity": "warn"}).startswith("::warning title=")


def test_outputs_round_trip_through_the_runner_parser() -> None:
    values = {"verdict": "fail", "multi": "line one\nline two\n", "empty": "",
              "tricky": "EOF\nghadelimiter_\nname=value\nx<<y"}
    text = format_outputs(values)
    assert parse_file_command(text) == values
    delims = re.findall(r"^[a-z]+<<(ghadelimiter_.*)$", text, re.MULTILINE)
    assert len(set(delims)) == 4


def test_output_names_are_checked() -> None:
    with pytest.raises(ValueError):
        format_outputs({"a\nb": "x"})
    with pytest.raises(ValueError):
        format_outputs({"a<<b": "x"})


def test_write_outputs_appends(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("python=/x\n")
    assert write_outputs({"verdict": "pass"}, {"GITHUB_OUTPUT": str(out)})
    assert write_outputs({"report": "/r.json"}, {"GITHUB_OUTPUT": str(out)})
    assert parse_file_command(out.read_text()) == {
        "python": "/x", "verdict": "pass", "report": "/r.json"}
    assert not write_outputs({"verdict": "pass"}, {})


def test_next_link() -> None:
    header = ('<https://api.github.com/repositories/1/issues/2/comments?page=2>; rel="next", '
              '<https://api.github.com/repositories/1/issues/2/comments?page=5>; rel="last"')
    assert next_link(header) == "https://api.github.com/repositories/1/issues/2/comments?page=2"
    assert next_link('<https://x/?page=1>; rel="prev"') is None
    assert next_link("") is None


def test_pr_number(tmp_path: Path) -> None:
    ev = tmp_path / "event.json"
    ev.write_text(json.dumps({"pull_request": {"number": 42}}))
    assert pr_number(str(ev)) == 42
    ev.write_text(json.dumps({"ref": "refs/heads/main"}))
    with pytest.raises(CommentSkipped, match="no pull_request.number"):
        pr_number(str(ev))
    ev.write_text("{not json")
    with pytest.raises(CommentSkipped, match="cannot read"):
        pr_number(str(ev))


def test_pull_request_from_env(tmp_path: Path) -> None:
    ev = tmp_path / "event.json"
    ev.write_text(json.dumps({"pull_request": {"number": 3}}))
    env = {"GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_EVENT_PATH": str(ev),
           "GITHUB_REPOSITORY": "o/r"}
    pr = PullRequest.from_env(env, "t")
    assert (pr.api_url, pr.repository, pr.number) == ("https://api.github.com", "o/r", 3)
    with pytest.raises(CommentSkipped, match="no github-token"):
        PullRequest.from_env(env, "")
    with pytest.raises(CommentSkipped, match="push event, not a pull request"):
        PullRequest.from_env({**env, "GITHUB_EVENT_NAME": "push"}, "t")
    for bad in ("../x", "o/..", "o", "o/r/x", "o/r?x"):
        with pytest.raises(CommentSkipped, match="not owner/name"):
            PullRequest.from_env({**env, "GITHUB_REPOSITORY": bad}, "t")


def test_comment_body_is_marked_and_capped() -> None:
    marker = comment_marker("api")
    assert marker == "<!-- memgate:api -->"
    assert comment_marker(None) == "<!-- memgate:default -->"
    assert comment_body(marker, "hi").startswith(marker + "\n")
    long = comment_body(marker, "x" * 200_000)
    assert len(long) <= COMMENT_LIMIT and long.startswith(marker)
    assert "truncated" in long[-200:]


# --------------------------------------------------------------------------- the fake API


@dataclass
class FakeGitHub:
    """The four endpoints the comment uses, with comments kept in memory."""

    url: str = ""
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 1000
    page_size: int = 100  # what per_page=100 yields; smaller to force pagination
    fail: dict[str, int] = field(default_factory=dict)  # method -> HTTP status to answer
    foreign_next: bool = False  # send a Link header pointing at another host
    redirect: bool = False
    #: The token's login for GET /user; None: 403, as for the workflow's GITHUB_TOKEN.
    login: str | None = None

    def add(self, body: str, user: str = "github-actions[bot]") -> int:
        self.next_id += 1
        self.comments[self.next_id] = {"id": self.next_id, "body": body,
                                       "user": {"login": user}}
        return self.next_id

    @property
    def methods(self) -> list[str]:
        """The requests made, without the GET /user that asks who the token is."""
        return [m for m, p in self.requests if p != "/user"]


def _handler(api: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            api.requests.append((self.command, self.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"message": "Bad credentials"})
            if self.command in api.fail:
                return self._send(api.fail[self.command],
                                  {"message": "Resource not accessible by integration"})
            if api.redirect:
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.2:1/steal")
                self.end_headers()
                return None
            parts = urlsplit(self.path)
            if self.command == "GET" and parts.path == "/user":
                if api.login is None:
                    return self._send(403, {"message": "Resource not accessible by integration"})
                return self._send(200, {"login": api.login})
            length = int(self.headers.get("Content-Length") or 0)
            body: dict[str, Any] = json.loads(self.rfile.read(length)) if length else {}
            if self.command == "GET" and parts.path == "/repos/o/r/issues/7/comments":
                q = parse_qs(parts.query)
                assert q.get("per_page") == ["100"]
                page = int(q.get("page", ["1"])[0])
                items = sorted(api.comments.values(), key=lambda c: c["id"])
                chunk = items[(page - 1) * api.page_size: page * api.page_size]
                headers = {}
                if page * api.page_size < len(items):
                    host = "http://evil.example" if api.foreign_next else api.url
                    headers["Link"] = (f'<{host}/repos/o/r/issues/7/comments?per_page=100&'
                                       f'page={page + 1}>; rel="next"')
                return self._send(200, chunk, headers)
            if self.command == "POST" and parts.path == "/repos/o/r/issues/7/comments":
                cid = api.add(body["body"], api.login or "github-actions[bot]")
                return self._send(201, {**api.comments[cid],
                                        "html_url": f"https://github.test/o/r/pull/7#{cid}"})
            m = re.fullmatch(r"/repos/o/r/issues/comments/(\d+)", parts.path)
            if self.command == "PATCH" and m and int(m.group(1)) in api.comments:
                api.comments[int(m.group(1))]["body"] = body["body"]
                return self._send(200, api.comments[int(m.group(1))])
            return self._send(404, {"message": "Not Found"})

        do_GET = do_POST = do_PATCH = _handle

    return Handler


@pytest.fixture
def api() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def _pr(api: FakeGitHub) -> PullRequest:
    return PullRequest(api_url=api.url, repository="o/r", number=7, token=TOKEN)


# --------------------------------------------------------------------------- the client


def test_client_creates_then_updates(api: FakeGitHub) -> None:
    api.add("an unrelated comment")
    client = Client(api.url, TOKEN)
    first = client.upsert_comment(_pr(api), "<!-- memgate:api -->", "## first")
    assert first.action == "created"
    second = client.upsert_comment(_pr(api), "<!-- memgate:api -->", "## second")
    assert (second.action, second.id) == ("updated", first.id)
    assert api.comments[first.id]["body"] == "<!-- memgate:api -->\n## second"
    assert api.methods == ["GET", "POST", "GET", "PATCH"]
    # Another component gets its own comment.
    other = client.upsert_comment(_pr(api), "<!-- memgate:web -->", "## web")
    assert other.action == "created" and other.id != first.id


def test_client_follows_pagination(api: FakeGitHub) -> None:
    api.page_size = 3
    for k in range(7):
        api.add(f"comment {k}")
    cid = api.add("<!-- memgate:api -->\nold")
    result = Client(api.url, TOKEN).upsert_comment(_pr(api), "<!-- memgate:api -->", "new")
    assert (result.action, result.id) == ("updated", cid)
    assert api.methods == ["GET", "GET", "GET", "PATCH"]


def test_a_quoted_marker_is_not_memgates_comment(api: FakeGitHub) -> None:
    api.add("> <!-- memgate:api -->\n> quoting the bot")
    result = Client(api.url, TOKEN).upsert_comment(_pr(api), "<!-- memgate:api -->", "x")
    assert result.action == "created"


def test_the_token_never_leaves_the_api_host(api: FakeGitHub) -> None:
    api.page_size = 1
    api.add("a")
    api.add("b")
    api.foreign_next = True
    with pytest.raises(GitHubAPIError, match="refusing to send the token"):
        Client(api.url, TOKEN).upsert_comment(_pr(api), "<!-- memgate:x -->", "x")
    api.foreign_next = False
    api.redirect = True
    with pytest.raises(GitHubAPIError, match="HTTP 302"):
        Client(api.url, TOKEN).upsert_comment(_pr(api), "<!-- memgate:x -->", "x")


def test_client_errors_carry_the_status(api: FakeGitHub) -> None:
    api.fail["POST"] = 403
    with pytest.raises(GitHubAPIError) as info:
        Client(api.url, TOKEN).upsert_comment(_pr(api), "<!-- memgate:x -->", "x")
    assert info.value.status == 403
    assert "Resource not accessible by integration" in str(info.value)
    with pytest.raises(GitHubAPIError) as info:
        Client("http://127.0.0.1:9", TOKEN, timeout=2).upsert_comment(
            PullRequest("http://127.0.0.1:9", "o/r", 7, TOKEN), "<!-- memgate:x -->", "x")
    assert info.value.status is None


# --------------------------------------------------------------------------- through the action


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path)


def _comment_run(ws: Workspace, api: FakeGitHub, profiles: str, **kw: Any) -> Any:
    return run_action(ws, {"profiles": profiles, **SVC, "comment": "true"},
                      env={"GITHUB_API_URL": api.url}, token=TOKEN, **kw)


def test_action_creates_then_updates_the_comment(ws: Workspace, api: FakeGitHub) -> None:
    first = _comment_run(ws, api, ws.leak)
    assert first.returncode == 1
    assert api.methods == ["GET", "POST"]
    assert "memgate: created the pull-request comment: https://github.test/o/r/pull/7#" \
        in first.stdout
    (cid, c), = api.comments.items()
    assert c["body"].startswith("<!-- memgate:svc -->\n## ❌ memgate: **FAIL** — `svc`")

    second = _comment_run(ws, api, ws.ok)
    assert second.returncode == 0
    assert api.methods == ["GET", "POST", "GET", "PATCH"]
    assert list(api.comments) == [cid]
    assert api.comments[cid]["body"].startswith("<!-- memgate:svc -->\n## ✅ memgate: **PASS**")
    assert not any(a.startswith("::warning title=memgate::") for a in second.annotations)


def test_fork_pull_request_only_warns(ws: Workspace, api: FakeGitHub) -> None:
    api.fail["POST"] = 403
    run = _comment_run(ws, api, ws.leak)
    assert run.returncode == 1  # the gate's, not the comment's
    assert run.outputs["verdict"] == "fail"
    warnings = [a for a in run.annotations if a.startswith("::warning title=memgate::")]
    assert len(warnings) == 1
    assert "could not comment on the pull request (POST /repos/o/r/issues/7/comments: HTTP " \
           "403: Resource not accessible by integration)" in warnings[0]
    assert "fork pull requests get a read-only token" in warnings[0]
    ok = _comment_run(ws, api, ws.ok)
    assert ok.returncode == 0 and ok.outputs["verdict"] == "pass"


@pytest.mark.parametrize("status", [401, 404, 500])
def test_other_api_failures_only_warn(ws: Workspace, api: FakeGitHub, status: int) -> None:
    api.fail["GET"] = status
    run = _comment_run(ws, api, ws.ok)
    assert run.returncode == 0
    assert any(f"HTTP {status}" in a for a in run.annotations if a.startswith("::warning"))


def test_no_comment_outside_pull_requests(ws: Workspace, api: FakeGitHub) -> None:
    run = _comment_run(ws, api, ws.ok, event_name="push", event={"ref": "refs/heads/main"})
    assert run.returncode == 0
    assert api.requests == []
    assert ("::warning title=memgate::not commenting on the pull request: this run is for a "
            "push event, not a pull request") in run.annotations


def test_no_comment_without_a_token(ws: Workspace, api: FakeGitHub) -> None:
    run = run_action(ws, {"profiles": ws.ok, **SVC, "comment": "true", "github-token": ""},
                     env={"GITHUB_API_URL": api.url}, token="")
    assert run.returncode == 0
    assert api.requests == []
    assert any("no github-token given" in a for a in run.annotations)


def test_comment_false_makes_no_request(ws: Workspace, api: FakeGitHub) -> None:
    run = run_action(ws, {"profiles": ws.leak, **SVC}, env={"GITHUB_API_URL": api.url},
                     token=TOKEN)
    assert run.returncode == 1
    assert api.requests == []
