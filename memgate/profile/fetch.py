"""Fetch profiles over http(s), as from a Go service's net/http/pprof endpoints.

A Go service serves ``/debug/pprof/heap`` (a snapshot) and ``/debug/pprof/heap?seconds=N`` (a
delta profile: the server waits N seconds before it answers). The fetch waits accordingly, shows
a countdown when asked, refuses other schemes, follows a bounded number of redirects and never
reads more than the size limit.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from pathlib import Path

from memgate.errors import FetchError, LimitError
from memgate.profile.decode import Limits, gunzip
from memgate.profile.source import (
    DEFAULT_TIMEOUT,
    MAX_REDIRECTS,
    FetchOptions,
    env_headers,
    fetch_defaults,
    load_profile,
    read_bytes,
)
from memgate.progress import Progress

# Re-exported: callers used to find these here.
__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_REDIRECTS",
    "FetchOptions",
    "HTTPStatusError",
    "Response",
    "delta_seconds",
    "fetch_url",
    "request",
    "load_profile",
    "read_bytes",
]

#: The longest delta window (``seconds=N``) waited for: a week. Beyond it (or not a finite
#: number) the URL is still fetched, but memgate adds nothing to its own timeout.
MAX_DELTA_SECONDS = 7 * 24 * 3600.0
#: What a socket accepts as a timeout (larger values overflow the platform's time_t).
_MAX_SOCKET_TIMEOUT = 1e7


def is_url(spec: str) -> bool:
    return "://" in spec and not Path(spec).exists()


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


def fetch_url(
    url: str,
    limits: Limits,
    options: FetchOptions | None = None,
    progress: Progress | None = None,
) -> bytes:
    """GET ``url`` (a pprof endpoint) within the limits; the body."""
    return request(url, limits, options, progress).body


def request(
    url: str,
    limits: Limits,
    options: FetchOptions | None = None,
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
    """
    options = options or fetch_defaults()
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
    extra = (*env_headers(), *options.headers)
    opener = urllib.request.build_opener(
        _LimitedRedirects(options.max_redirects, [n for n, _ in extra]))
    req = urllib.request.Request(url, data=data,
                                 headers={"User-Agent": "memgate", "Accept": "*/*"})
    for name, value in (*headers, *extra):
        req.add_header(name, value)
    timeout = min(options.timeout + wait, _MAX_SOCKET_TIMEOUT)
    try:
        with progress.countdown(f"fetching {src}", wait) if wait else _nullcontext():
            with opener.open(req, timeout=timeout) as resp:
                assert isinstance(resp, HTTPResponse) or hasattr(resp, "read")
                deadline = time.monotonic() + timeout
                payload = _read_limited(resp, src, limits.max_decompressed_bytes, deadline,
                                        timeout)
                ctype = (getattr(resp, "headers", None) or {}).get("Content-Type", "") or ""
                return Response(_content_decoded(resp, payload, src, limits), str(ctype))
    except urllib.error.HTTPError as e:
        body = _snippet(e)
        raise HTTPStatusError(
            f"HTTP {e.code} {e.reason}{body}", source=src, status=e.code
        ) from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise FetchError(
                f"timed out after {timeout:g}s", source=src, slug="fetch-timeout"
            ) from None
        raise FetchError(f"cannot fetch: {reason}", source=src) from None
    except TimeoutError:
        raise FetchError(
            f"timed out after {timeout:g}s", source=src, slug="fetch-timeout"
        ) from None
    except (HTTPException, OSError, ValueError) as e:
        # ValueError: what urllib raises for URLs it cannot use (a bad port, a bad host).
        raise FetchError(f"cannot fetch: {e}", source=src) from None


def _content_decoded(resp: object, body: bytes, url: str, limits: Limits) -> bytes:
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
        raise LimitError(f"response larger than the limit of {limit} bytes (raise it with "
                         "--max-decompressed or MEMGATE_MAX_DECOMPRESSED_BYTES)", source=url)
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
