"""Where profile bytes come from: a path, ``-`` (stdin), an http(s) URL or a continuous
profiler's query (``pyroscope+https://...``, ``parca+https://...``:
:mod:`memgate.profile.profilers`).

Reading files needs nothing from the network stack, so the URL client
(:mod:`memgate.profile.fetch`, which pulls in urllib and http.client) is imported only when a
URL is given: ``memgate top FILE`` starts faster.
"""

from __future__ import annotations

import os
import re
import sys
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from memgate.errors import FetchError, LimitError, ProfileError
from memgate.profile.decode import decode
from memgate.profile.limits import Limits
from memgate.profile.model import Profile
from memgate.progress import Progress

#: Seconds to wait for a server beyond the ``seconds=N`` it was asked to collect for.
DEFAULT_TIMEOUT = 30.0
MAX_REDIRECTS = 5


#: Extra request headers for every URL, one ``Name: value`` per line: how a CI secret (a
#: bearer token for an API-server proxy URL, say) reaches memgate without appearing in argv.
HEADERS_ENV = "MEMGATE_HTTP_HEADERS"

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` -> ``("Name", "value")``; ValueError (without the value, which may be
    a secret) for anything that is not one well-formed header."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep:
        raise ValueError("not a 'Name: value' header (no colon)")
    if not _HEADER_NAME.fullmatch(name):
        # Not echoed: a mistyped header may well be a token.
        raise ValueError("not a 'Name: value' header (the name before the colon is missing "
                         "or holds spaces or other characters a header name cannot have)")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"header {name}: the value holds a line break or NUL")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        # HTTP header values are bytes; typographic quotes pasted from a web page are not.
        raise ValueError(f"header {name}: the value holds characters HTTP headers cannot "
                         "carry (typographic quotes or other non-Latin-1 text?)") from None
    return name, value


def env_headers() -> tuple[tuple[str, str], ...]:
    """The headers of ``$MEMGATE_HTTP_HEADERS`` (blank lines and ``#`` comments skipped)."""
    out = []
    # Lines end at \n (and \r\n), not at every Unicode line separator splitlines knows.
    for line in os.environ.get(HEADERS_ENV, "").replace("\r\n", "\n").split("\n"):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                out.append(parse_header(line))
            except ValueError as e:
                raise FetchError(str(e), source=f"${HEADERS_ENV}", slug="fetch-header") from None
    return tuple(out)


@dataclass(frozen=True)
class FetchOptions:
    timeout: float = DEFAULT_TIMEOUT
    max_redirects: int = MAX_REDIRECTS
    #: Request headers (``--header``), sent after those of ``$MEMGATE_HTTP_HEADERS``.
    headers: tuple[tuple[str, str], ...] = ()


#: Fetch options given on the command line (``--timeout``, ``--header``) for the running
#: command, for readers that take no options themselves (the store's ``baseline update``).
#: Set by the CLI, reset when the command ends.
_FETCH_DEFAULTS: ContextVar[FetchOptions | None] = ContextVar("memgate_fetch", default=None)


def set_fetch_defaults(**values: Any) -> object:
    """Override fields of the fetch options of this command; a token for
    :func:`reset_fetch_defaults`."""
    return _FETCH_DEFAULTS.set(replace(fetch_defaults(), **values))


def reset_fetch_defaults(token: object) -> None:
    _FETCH_DEFAULTS.reset(token)  # type: ignore[arg-type]


def fetch_defaults() -> FetchOptions:
    return _FETCH_DEFAULTS.get() or FetchOptions()


def read_bytes(
    spec: str, limits: Limits, progress: Progress | None = None, options: FetchOptions | None = None
) -> tuple[bytes, str]:
    """Return ``(data, source)`` for a path, ``-``, a URL or a profiler URL (whose source is
    the URL with its time range made absolute and without credentials)."""
    if spec == "-":
        data = sys.stdin.buffer.read(limits.max_decompressed_bytes + 1)
        if len(data) > limits.max_decompressed_bytes:
            raise LimitError(
                "standard input is larger than the limit of "
                f"{limits.max_decompressed_bytes} bytes (raise it with --max-decompressed or "
                "MEMGATE_MAX_DECOMPRESSED_BYTES)", source="<stdin>")
        return data, "<stdin>"
    if "://" in spec and not Path(spec).exists():
        from memgate.profile.profilers import is_profiler_url

        if is_profiler_url(spec):
            from memgate.profile.profilers import fetch

            return fetch(spec, limits, options, progress)
        from memgate.profile.fetch import fetch_url, redact_url

        # The URL names the profile in messages and reports: never with its credentials.
        return fetch_url(spec, limits, options, progress), redact_url(spec)
    from memgate.fs import ReadLimitExceeded, read_limited

    try:
        # Bounded by what is read, not by st_size: /dev/zero, a FIFO or a link to a device
        # has no meaningful size.
        return read_limited(spec, limits.max_decompressed_bytes), spec
    except ReadLimitExceeded:
        raise LimitError(
            f"file is larger than the limit of {limits.max_decompressed_bytes} bytes (raise it "
            "with --max-decompressed or MEMGATE_MAX_DECOMPRESSED_BYTES)",
            source=spec,
        ) from None
    except FileNotFoundError:
        raise ProfileError("no such file", source=spec, slug="not-found") from None
    except PermissionError:
        raise ProfileError("permission denied", source=spec, slug="unreadable") from None
    except IsADirectoryError:
        raise ProfileError(
            "is a directory, not a profile", source=spec, slug="not-a-file"
        ) from None
    except OSError as e:
        raise ProfileError(
            f"cannot read: {e.strerror or e}", source=spec, slug="unreadable"
        ) from None


def load_profile(
    spec: str,
    limits: Limits | None = None,
    progress: Progress | None = None,
    options: FetchOptions | None = None,
) -> Profile:
    """Read and decode one profile from a path, ``-`` or URL."""
    limits = limits or Limits.from_env()
    progress = progress or Progress(False)
    data, source = read_bytes(spec, limits, progress, options)
    progress.note(f"decoding {source} ({len(data)} bytes)")
    prof = decode(data, source, limits,
                  on_progress=lambda f: progress.fraction(f"decoding {source}", f))
    progress.done()
    return prof
