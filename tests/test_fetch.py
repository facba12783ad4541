"""Fetching profiles over HTTP from a local server on loopback, as from /debug/pprof/heap."""

from __future__ import annotations

import gzip
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from memgate.config import Config
from memgate.errors import FetchError, LimitError
from memgate.profile.fetch import delta_seconds
from memgate.profile.fetch_options import FetchOptions
from memgate.profile.limits import InputLimits
from memgate.profile.source import load_profile
from tests import clirun

PROFILES = Path(__file__).parent / "fixtures" / "profiles"
HEAP = (PROFILES / "seedleak-noleak-1.pb.gz").read_bytes()
DELTA = (PROFILES / "seedleak-delta.pb.gz").read_bytes()
TOKEN = "s3cr3t-token"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/octet-stream") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/debug/pprof/heap":
            if "seconds" in q:
                time.sleep(float(q["seconds"][0]))
                self._send(200, DELTA)
            else:
                self._send(200, HEAP)
        elif url.path == "/html":
            self._send(200, b"<!DOCTYPE html><html><body>login</body></html>", "text/html")
        elif url.path == "/slow":
            time.sleep(3)
            self._send(200, HEAP)
        elif url.path == "/big":
            self._send(200, b"\x00" * 4096)
        elif url.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif url.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
        elif url.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/debug/pprof/heap")
            self.end_headers()
        elif url.path == "/auth":
            # Like an API server's proxy URL: a bearer token or 401.
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                self._send(200, HEAP)
            else:
                self._send(401, b"Unauthorized\n", "text/plain")
        elif url.path == "/echo-headers":
            body = "\n".join(f"{k}: {v}" for k, v in self.headers.items()).encode()
            self._send(200, body, "text/plain")
        elif url.path == "/to-other-echo":
            self.send_response(302)
            self.send_header("Location",
                             f"http://localhost:{self.server.server_address[1]}/echo-headers")
            self.end_headers()
        elif url.path in ("/same-origin", "/other-origin"):
            host = "127.0.0.1" if url.path == "/same-origin" else "localhost"
            self.send_response(302)
            self.send_header("Location", f"http://{host}:{self.server.server_address[1]}/auth")
            self.end_headers()
        elif url.path == "/gzip-encoded":
            # A proxy that compresses the (already gzip) profile once more.
            body = gzip.compress(HEAP)
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif url.path == "/br-encoded":
            self.send_response(200)
            self.send_header("Content-Encoding", "br")
            self.send_header("Content-Length", str(len(HEAP)))
            self.end_headers()
            self.wfile.write(HEAP)
        else:
            self._send(404, b"404 page not found\n", "text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    # A client that gave up (the timeout test) makes the handler's write fail: expected.
    srv.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    t = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_fetch_heap_profile(server: str) -> None:
    prof = load_profile(f"{server}/debug/pprof/heap")
    assert prof.sample_type_names()[-1] == "inuse_space"
    assert prof.source == f"{server}/debug/pprof/heap"


def test_fetch_delta_profile_waits_and_has_duration(server: str) -> None:
    url = f"{server}/debug/pprof/heap?seconds=1"
    assert delta_seconds(url) == 1.0
    t0 = time.monotonic()
    # The timeout is shorter than the delta window: the window is added to it.
    prof = load_profile(url, Config(fetch=FetchOptions(timeout=2.0)))
    assert time.monotonic() - t0 >= 1.0
    assert prof.duration_seconds is not None and prof.duration_seconds > 0


def test_redirect_is_followed(server: str) -> None:
    assert len(load_profile(f"{server}/redirect").samples) > 0


@pytest.mark.parametrize(("path", "message"), [
    ("/missing", "HTTP 404 Not Found: 404 page not found"),
    ("/html", "HTML page, not a profile"),
    ("/loop", "HTTP 302"),
    ("/to-file", "is not allowed"),
])
def test_fetch_errors(server: str, path: str, message: str) -> None:
    with pytest.raises(FetchError) as info:
        load_profile(server + path)
    assert message in str(info.value)
    assert str(info.value).startswith(server + path)


def test_timeout(server: str) -> None:
    with pytest.raises(FetchError, match="timed out after 0.5s"):
        load_profile(f"{server}/slow", Config(fetch=FetchOptions(timeout=0.5)))


def test_oversized_body(server: str) -> None:
    with pytest.raises(LimitError, match="larger than the limit of 1000 bytes"):
        load_profile(f"{server}/big", Config(limits=InputLimits(max_decompressed_bytes=1000)))


def test_unsupported_scheme() -> None:
    with pytest.raises(FetchError, match="only http and https"):
        load_profile("ftp://example.invalid/heap")


def test_cli_url_404_is_one_line_exit_3(server: str) -> None:
    out = clirun.run(["top", f"{server}/nope"])
    assert out.returncode == 3
    assert out.stderr.strip().splitlines() == [
        f"memgate: {server}/nope: HTTP 404 Not Found: 404 page not found"]


def test_cli_progress_on_request(server: str) -> None:
    out = clirun.run(["top", "--progress", "-n", "1", f"{server}/debug/pprof/heap?seconds=1"])
    assert out.returncode == 0, out.stderr
    assert "remaining" in out.stderr
    quiet = clirun.run(["top", "-n", "1", f"{server}/debug/pprof/heap"])
    assert quiet.stderr == ""


def test_headers_reach_the_server(server: str) -> None:
    """An API server's proxy URL wants a bearer token: --header, or the environment."""
    with pytest.raises(FetchError, match="HTTP 401"):
        load_profile(f"{server}/auth")
    auth = (("Authorization", f"Bearer {TOKEN}"),)
    assert len(load_profile(f"{server}/auth", Config(fetch=FetchOptions(headers=auth))).samples)
    cmd = ["top", "-n", "1"]
    out = clirun.run([*cmd, "-H", f"Authorization: Bearer {TOKEN}", f"{server}/auth"])
    assert out.returncode == 0, out.stderr
    env = {**os.environ, "MEMGATE_HTTP_HEADERS": f"# CI secret\nAuthorization: Bearer {TOKEN}\n"}
    out = clirun.run([*cmd, f"{server}/auth"], env=env)
    assert out.returncode == 0, out.stderr


def test_credentials_stay_with_their_origin(server: str) -> None:
    auth = FetchOptions(headers=(("Authorization", f"Bearer {TOKEN}"),))
    assert len(load_profile(f"{server}/same-origin", Config(fetch=auth)).samples)
    # Redirected to another host (localhost is not 127.0.0.1 by name): no token is sent on.
    with pytest.raises(FetchError, match="HTTP 401"):
        load_profile(f"{server}/other-origin", Config(fetch=auth))


def test_bad_headers_are_usage_errors_without_the_value(server: str) -> None:
    out = clirun.run(["top", "-H", "Bearer s3cr3t", f"{server}/auth"])
    assert out.returncode == 2 and "--header" in out.stderr
    env = {**os.environ, "MEMGATE_HTTP_HEADERS": "Authorization Bearer s3cr3t"}
    out = clirun.run(["top", f"{server}/auth"], env=env)
    assert out.returncode == 3
    assert out.stderr.startswith("memgate: $MEMGATE_HTTP_HEADERS: not a 'Name: value' header")
    assert "s3cr3t" not in out.stderr


def test_content_encoding(server: str) -> None:
    """A proxy's Content-Encoding: gzip is undone (Go's client, and so pprof, does the same);
    an encoding memgate cannot decode is named."""
    prof = load_profile(f"{server}/gzip-encoded")
    assert prof.sample_type_names()[-1] == "inuse_space" and len(prof.samples)
    with pytest.raises(FetchError, match="Content-Encoding 'br'"):
        load_profile(f"{server}/br-encoded")


def test_baseline_update_takes_the_url_options(server: str, tmp_path: Path) -> None:
    """`baseline update` reads URLs too: --header, --timeout and --max-decompressed as in
    `check`."""
    cmd = ["baseline", "update", "-c", "api", "--reason", "r", "--baselines", str(tmp_path / "b"),
           "--duration", "1m"]
    out = clirun.run([*cmd, f"{server}/auth"])
    assert out.returncode == 3 and "HTTP 401" in out.stderr
    out = clirun.run([*cmd, "-H", f"Authorization: Bearer {TOKEN}", f"{server}/auth"])
    assert out.returncode == 0, out.stderr
    out = clirun.run([*cmd, "--timeout", "0.5", f"{server}/slow"])
    assert out.returncode == 3 and "timed out after 0.5s" in out.stderr
    out = clirun.run([*cmd, "--max-decompressed", "1000", f"{server}/debug/pprof/heap"])
    assert out.returncode == 3
    assert "larger than the limit of 1000 bytes (raise it with --max-decompressed" in out.stderr


def test_no_user_header_follows_a_redirect_to_another_origin(server: str) -> None:
    """Any header the user gives is a credential in practice (PRIVATE-TOKEN, X-Api-Key)."""
    from memgate.profile.fetch import fetch_url

    opts = FetchOptions(headers=(("X-Api-Key", "k3y"), ("Private-Token", "t0k"),
                                 ("Authorization", "Bearer x")))
    # The other origin echoes the request headers it received.
    echoed = fetch_url(f"{server}/to-other-echo", InputLimits(), opts).decode().lower()
    assert "user-agent: memgate" in echoed
    assert "k3y" not in echoed and "t0k" not in echoed and "bearer" not in echoed
    # Without the redirect the same headers do arrive (the test would see them).
    direct = fetch_url(f"{server}/echo-headers", InputLimits(), opts).decode().lower()
    assert "k3y" in direct and "t0k" in direct and "bearer x" in direct


def test_header_values_must_be_latin_1(server: str) -> None:
    out = clirun.run(["top", "-H", "Authorization: Bearer \u201ctoken\u201d", f"{server}/auth"])
    assert out.returncode == 2 and "cannot carry" in out.stderr

