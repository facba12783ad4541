"""How URLs are fetched: the options a run gives every fetch, and request headers.

Shared by :mod:`memgate.profile.fetch` (plain URLs), :mod:`memgate.profile.profilers`
(continuous profilers) and the configuration (:mod:`memgate.config`); it imports none of them,
nor the network stack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from memgate.errors import FetchError

#: Seconds to wait for a server beyond the ``seconds=N`` it was asked to collect for.
DEFAULT_TIMEOUT = 30.0

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


def parse_env_headers(text: str) -> tuple[tuple[str, str], ...]:
    """The headers of ``$MEMGATE_HTTP_HEADERS`` (blank lines and ``#`` comments skipped)."""
    out = []
    # Lines end at \n (and \r\n), not at every Unicode line separator splitlines knows.
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                out.append(parse_header(line))
            except ValueError as e:
                raise FetchError(str(e), source=f"${HEADERS_ENV}", slug="fetch-header") from None
    return tuple(out)


@dataclass(frozen=True)
class FetchOptions:
    """What every fetch of a run uses: ``--timeout``, ``--header`` and
    ``$MEMGATE_HTTP_HEADERS``."""

    timeout: float = DEFAULT_TIMEOUT
    #: Request headers (``--header``), sent after those of ``$MEMGATE_HTTP_HEADERS``.
    headers: tuple[tuple[str, str], ...] = ()
    #: ``$MEMGATE_HTTP_HEADERS`` as the environment had it: parsed when a URL is fetched, so
    #: that a malformed value fails the fetch (naming the variable) and not a run that reads
    #: only files. Not in ``repr``: it holds secrets.
    environ_headers: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FetchOptions:
        return cls(environ_headers=environ.get(HEADERS_ENV, ""))

