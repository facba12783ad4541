"""Where profile bytes come from: a path, ``-`` (stdin), an http(s) URL or a continuous
profiler's query (``pyroscope+https://...``, ``parca+https://...``:
:mod:`memgate.profile.profilers`).

This module dispatches; the URL clients (:mod:`memgate.profile.fetch`, which pulls in urllib
and http.client, and :mod:`memgate.profile.profilers`) never import it, and are imported only
when a URL is given: ``memgate top FILE`` starts faster.
"""

from __future__ import annotations

import sys
from pathlib import Path

from memgate.config import DEFAULT_CONFIG, Config
from memgate.errors import LimitError, ProfileError
from memgate.profile.decode import decode
from memgate.profile.limits import raise_with
from memgate.profile.model import Profile
from memgate.progress import Progress


def is_url(spec: str) -> bool:
    """Whether ``spec`` names a URL (an existing file named like one is still a file)."""
    return "://" in spec and not Path(spec).exists()


def read_bytes(spec: str, config: Config, progress: Progress | None = None) -> tuple[bytes, str]:
    """Return ``(data, source)`` for a path, ``-``, a URL or a profiler URL (whose source is
    the URL with its time range made absolute and without credentials), within
    ``config.limits`` and fetched with ``config.fetch``."""
    limits = config.limits
    if spec == "-":
        data = sys.stdin.buffer.read(limits.max_decompressed_bytes + 1)
        if len(data) > limits.max_decompressed_bytes:
            raise LimitError(
                "standard input is larger than the limit of "
                f"{limits.max_decompressed_bytes} bytes ({raise_with('max_decompressed_bytes')})",
                source="<stdin>")
        return data, "<stdin>"
    if is_url(spec):
        from memgate.profile.profilers import is_profiler_url

        if is_profiler_url(spec):
            from memgate.profile.profilers import fetch

            return fetch(spec, limits, config.fetch, progress)
        from memgate.profile.fetch import fetch_url, redact_url

        # The URL names the profile in messages and reports: never with its credentials.
        return fetch_url(spec, limits, config.fetch, progress), redact_url(spec)
    from memgate.fs import ReadLimitExceeded, read_limited

    try:
        # Bounded by what is read, not by st_size: /dev/zero, a FIFO or a link to a device
        # has no meaningful size.
        return read_limited(spec, limits.max_decompressed_bytes), spec
    except ReadLimitExceeded:
        raise LimitError(
            f"file is larger than the limit of {limits.max_decompressed_bytes} bytes "
            f"({raise_with('max_decompressed_bytes')})",
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
    spec: str, config: Config = DEFAULT_CONFIG, progress: Progress | None = None
) -> Profile:
    """Read and decode one profile from a path, ``-`` or URL."""
    progress = progress or Progress(False)
    data, source = read_bytes(spec, config, progress)
    progress.note(f"decoding {source} ({len(data)} bytes)")
    prof = decode(data, source, config.limits, budget=config.budget,
                  on_progress=lambda f: progress.fraction(f"decoding {source}", f))
    progress.done()
    return prof
