"""Fetch profiles over http(s), as from a Go service's net/http/pprof endpoints.

A Go service serves ``/debug/pprof/heap`` (a snapshot) and ``/debug/pprof/heap?seconds=N`` (a
delta profile: the server waits N seconds before it answers). The fetch waits accordingly, shows
a countdown when asked, refuses other schemes, follows a bounded number of redirects and never
reads more than the size limit.
"""

from __future__ import annotations

import base64
import http.client
import math
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from typing import Any

from memgate.errors import FetchError, LimitError, MemgateError
from memgate.profile.fetch_options import DEFAULT_TIMEOUT, FetchOptions, parse_env_headers
from memgate.profile.gunzip import gunzip
from memgate.profile.limits import InputLimits, raise_with
from memgate.progress import Progress

#: Redirects followed before a fetch gives up.
MAX_REDIRECTS = 5
#: The longest delta window (``seconds=N``) waited for: a week. Beyond it (or not a finite
#: number) the URL is still fetched, but memgate adds nothing to its own timeout.
MAX_DELTA_SECONDS = 7 * 24 * 3600.0
#: What a socket accepts as a timeout (larger values overflow the platform's time_t).
_MAX_SOCKET_TIMEOUT = 1e7


def delta_seconds(url: str) -> float:
    """The ``seconds=N`` a pprof URL asks the server to wait for (0 when absent or invalid)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    for raw in query.get("seconds", []):
        try:
            value = float(raw)
        except ValueError:
            return 0.0
        return value if math.isfinite(value) and 0 < value <= MAX_DELTA_SECONDS else 0.0
    return 0.0


class _LimitedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, limit: int, private: Sequence[str] = ()) -> None:
        # urllib reads these as class attributes; per-instance values bound this opener only.
        self.__dict__.update(max_redirections=limit, max_repeats=limit)
        #: Headers the user gave (--header, $MEMGATE_HTTP_HEADERS): credentials in practice
        #: (Authorization, PRIVATE-TOKEN, X-Api-Key ...), sent to the URL's origin only.
        self.private = frozenset(n.lower() for n in private) | _CREDENTIAL_HEADERS

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError(
                f"redirected to a {scheme or 'relative'} URL, only http and https are fetched",
                source=req.full_url,
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            # Credentials go to the origin they were given for, never to where it redirects
            # (curl and Go's http client do the same).
            for name in list(new.headers):
                if name.lower() in self.private:
                    del new.headers[name]
        return new


#: Headers always dropped when a redirect leaves the origin of the URL (with the user's).
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


class HTTPStatusError(FetchError):
    """The server answered with an HTTP error status (kept in ``status`` for protocol clients,
    such as a Connect client that falls back to JSON on 415)."""

    def __init__(self, message: str, *, source: str, status: int) -> None:
        super().__init__(message, source=source, slug="fetch-status")
        self.status = status


@dataclass(frozen=True)
class Response:
    """A fetched body (size-limited, ``Content-Encoding`` undone) and its content type."""

    body: bytes
    content_type: str


def redact_url(url: str) -> str:
    """``url`` without the password (and user) of its userinfo: what messages and reports
    show of a URL such as ``https://user:token@host/heap``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/?#]*@", "//***@", url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query,
                                    parts.fragment))


def _userinfo(url: str) -> tuple[str, tuple[tuple[str, str], ...], list[str]]:
    """The URL without userinfo, the ``Authorization: Basic`` header it stood for (as curl
    and Go's client send it), and the secrets to keep out of every message."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url, (), []
    if "@" not in parts.netloc:
        return url, (), []
    info, host = parts.netloc.rsplit("@", 1)
    user, _, password = info.partition(":")
    user, password = urllib.parse.unquote(user), urllib.parse.unquote(password)
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    clean = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query,
                                     parts.fragment))
    return clean, (("Authorization", f"Basic {token}"),), [info, user, password, token]


def _secrets(values: Iterable[str]) -> list[str]:
    """What to redact for each secret value: the value, and the credential after a scheme
    word (``Bearer X`` -> ``X``), longest first. Very short values are not redacted (they
    would blank out ordinary words), nor is a scheme word alone."""
    out: set[str] = set()
    for v in values:
        v = v.strip()
        if len(v) >= 4:
            out.add(v)
        parts = v.split(None, 1)
        if len(parts) == 2 and len(parts[1].strip()) >= 4:
            out.add(parts[1].strip())
    return sorted(out, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` on one line, with every secret replaced by ``***``."""
    text = " ".join(text.split())
    for s in secrets:
        text = text.replace(s, "***")
    return text


def fetch_url(
    url: str,
    limits: InputLimits,
    options: FetchOptions,
    progress: Progress | None = None,
) -> bytes:
    """GET ``url`` (a pprof endpoint) within the limits; the body."""
    return request(url, limits, options, progress).body


def request(
    url: str,
    limits: InputLimits,
    options: FetchOptions,
    progress: Progress | None = None,
    *,
    data: bytes | None = None,
    headers: Sequence[tuple[str, str]] = (),
    shown: str | None = None,
) -> Response:
    """One HTTP request with every rule of :func:`fetch_url`: http(s) only, bounded
    redirects, the whole exchange within the timeout, at most the size limit, the user's
    headers (not sent on to another origin) and errors as one line.

    ``data`` makes it a POST (the Connect protocol of Pyroscope); ``headers`` are the
    protocol's own (content type, protocol version), sent before the user's, which may
    override them. ``shown`` names the request in messages instead of ``url`` (a profiler URL
    as the user wrote it, without credentials).

    Every error is one line naming the URL with its userinfo redacted, and no message holds
    the value of a header the user gave (a server may echo ``Authorization`` in its error
    page) or the URL's credentials.
    """
    clean, basic, secrets = _userinfo(url)
    extra = (*parse_env_headers(options.environ_headers), *basic, *options.headers)
    hidden = _secrets([*secrets, *(v for _, v in extra)])
    try:
        return _fetch(clean, limits, options, extra, progress, data=data, headers=headers,
                      shown=shown)
    except MemgateError as e:
        e.message = redact(e.message, hidden)
        e.source = redact(shown or redact_url(url), hidden)
        raise


def _fetch(
    url: str,
    limits: InputLimits,
    options: FetchOptions,
    extra: Sequence[tuple[str, str]],
    progress: Progress | None,
    *,
    data: bytes | None = None,
    headers: Sequence[tuple[str, str]] = (),
    shown: str | None = None,
) -> Response:
    progress = progress or Progress(False)
    src = shown or url
    if not (math.isfinite(options.timeout) and options.timeout > 0):
        raise FetchError(f"the timeout must be a positive number of seconds, not "
                         f"{options.timeout!r}", source=src, slug="fetch-timeout")
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError as e:
        raise FetchError(f"invalid URL: {e}", source=src, slug="fetch-url") from None
    if scheme not in ("http", "https"):
        raise FetchError(
            f"unsupported URL scheme {scheme!r}: only http and https",
            source=src,
            slug="fetch-scheme",
        )
    wait = delta_seconds(url) if data is None else 0.0
    timeout = min(options.timeout + wait, _MAX_SOCKET_TIMEOUT)
    # One deadline for the whole fetch: connection, status line, headers, redirects and body.
    # A server that sends a byte now and then never trips the socket's per-read timeout, so a
    # watchdog shuts the connection down when the deadline passes (_Deadline).
    deadline = _Deadline(timeout)
    opener = urllib.request.build_opener(
        _LimitedRedirects(MAX_REDIRECTS, [n for n, _ in extra]),
        _DeadlineHTTPHandler(deadline), _DeadlineHTTPSHandler(deadline))
    req = urllib.request.Request(url, data=data,
                                 headers={"User-Agent": "memgate", "Accept": "*/*"})
    for name, value in (*headers, *extra):
        req.add_header(name, value)
    try:
        with deadline, progress.countdown(f"fetching {src}", wait) if wait else _nullcontext():
            with opener.open(req, timeout=timeout) as resp:
                assert isinstance(resp, HTTPResponse) or hasattr(resp, "read")
                payload = _read_limited(resp, src, limits.max_decompressed_bytes,
                                        deadline.end, timeout)
                ctype = (getattr(resp, "headers", None) or {}).get("Content-Type", "") or ""
                return Response(_content_decoded(resp, payload, src, limits), str(ctype))
    except MemgateError:
        if deadline.expired:
            raise _timed_out(src, timeout) from None
        raise
    except urllib.error.HTTPError as e:
        if deadline.expired:
            raise _timed_out(src, timeout) from None
        body = _snippet(e)
        raise HTTPStatusError(
            f"HTTP {e.code} {e.reason}{body}", source=src, status=e.code
        ) from None
    except urllib.error.URLError as e:
        reason = e.reason
        if deadline.expired or isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise _timed_out(src, timeout) from None
        raise FetchError(f"cannot fetch: {reason}", source=src) from None
    except TimeoutError:
        raise _timed_out(src, timeout) from None
    except (HTTPException, OSError, ValueError) as e:
        if deadline.expired:
            raise _timed_out(src, timeout) from None
        # ValueError: what urllib raises for URLs it cannot use (a bad port, a bad host).
        raise FetchError(f"cannot fetch: {e}", source=src) from None


def _timed_out(url: str, timeout: float) -> FetchError:
    return FetchError(f"timed out after {timeout:g}s", source=url, slug="fetch-timeout")


class _Deadline:
    """The end of a fetch: connections opened under it get a socket timeout no longer than
    what remains, and when it passes a watchdog timer shuts down every socket still open, so
    a read in progress (a status line arriving a byte at a time, a TLS handshake) ends at
    once. ``with deadline:`` starts and stops the watchdog."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0 or self.expired:
            self.expired = True
            raise TimeoutError("the fetch's deadline passed")
        return left

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                _shutdown(sock)
            self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def __enter__(self) -> _Deadline:
        self.end = time.monotonic() + self.seconds
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    """Stop a socket's reads and writes from another thread (the base class's shutdown: an
    SSL socket's own would tear down its TLS state under the reading thread)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _connection_class(base: type[http.client.HTTPConnection], deadline: _Deadline) -> Any:
    class Connection(base):  # type: ignore[valid-type, misc]
        def connect(self) -> None:
            current: Any = getattr(self, "timeout", None)
            self.timeout = deadline.remaining() if current is None else min(
                current, deadline.remaining())
            create: Any = self._create_connection  # type: ignore[has-type]

            def created(*args: Any, **kwargs: Any) -> socket.socket:
                sock: socket.socket = create(*args, **kwargs)
                deadline.register(sock)
                return sock

            self._create_connection = created
            super().connect()
            if self.sock is not None:
                deadline.register(self.sock)  # the TLS socket, once wrapped

    return Connection


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._conn = _connection_class(http.client.HTTPConnection, deadline)

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._conn, req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._conn = _connection_class(http.client.HTTPSConnection, deadline)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._conn, req, context=getattr(self, "_context", None))


def _content_decoded(resp: object, body: bytes, url: str, limits: InputLimits) -> bytes:
    """Undo a ``Content-Encoding: gzip`` that a proxy put on top of the profile.

    memgate does not ask for compressed responses, but proxies (an API server's, a CDN) may
    compress anyway; Go's http client, which pprof uses, undoes that transparently.
    """
    headers = getattr(resp, "headers", None)
    encoding = ((headers.get("Content-Encoding", "") if headers is not None else "") or "")
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gunzip(body, url, limits.max_decompressed_bytes)
    raise FetchError(f"the response has Content-Encoding {encoding[:40]!r}, which memgate "
                     "cannot decode (gzip only)", source=url, slug="fetch-encoding")


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _snippet(err: urllib.error.HTTPError) -> str:
    try:
        raw = err.read(2000)
    except Exception:  # noqa: BLE001 - the body is only decoration for the message
        return ""
    message = _rpc_error(raw)
    if message:
        return f": {message}"
    text = raw[:200].decode("utf-8", "replace").strip().splitlines()
    return f": {text[0][:120]}" if text else ""


def _rpc_error(raw: bytes) -> str:
    """``code: message`` of a Connect (``{"code": "unauthenticated", "message": ...}``) or
    grpc-gateway (``{"code": 16, "message": ...}``) error body, else ""."""
    import json

    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ""
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        return ""
    code = doc.get("code")
    head = f"{code}: " if isinstance(code, (str, int)) and not isinstance(code, bool) else ""
    return " ".join(f"{head}{doc['message']}".split())[:200]


def _read_limited(resp: object, url: str, limit: int, deadline: float | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Read the body: at most ``limit`` bytes, finished by ``deadline`` (a server that sends a
    byte now and then never trips the socket timeout, which bounds each read only)."""
    read1 = getattr(resp, "read1", None)
    if deadline is None or read1 is None:
        data = resp.read(limit + 1)  # type: ignore[attr-defined]
    else:
        parts: list[bytes] = []
        size = 0
        while size <= limit:
            if time.monotonic() > deadline:
                raise FetchError(f"timed out after {timeout:g}s (the body was still arriving)",
                                 source=url, slug="fetch-timeout")
            chunk = read1(min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        data = b"".join(parts)
        missing = getattr(resp, "length", None)
        if isinstance(missing, int) and missing > 0 and len(data) <= limit:
            raise FetchError(f"connection closed after {len(data)} of {len(data) + missing} "
                             "bytes", source=url, slug="fetch-truncated")
    if len(data) > limit:
        raise LimitError(f"response larger than the limit of {limit} bytes "
                         f"({raise_with('max_decompressed_bytes')})", source=url)
    ctype = ""
    headers = getattr(resp, "headers", None)
    if headers is not None:
        ctype = headers.get("Content-Type", "") or ""
    if "text/html" in ctype.lower() or data[:64].lstrip().lower().startswith(
        (b"<!doctype html", b"<html")
    ):
        raise FetchError(
            "the server answered with an HTML page, not a profile "
            "(is the URL right, e.g. /debug/pprof/heap?)",
            source=url,
            slug="fetch-html",
        )
    return bytes(data)
