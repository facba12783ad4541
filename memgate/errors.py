"""Errors and exit codes.

Every failure a user can cause is a :class:`MemgateError` subclass carrying a short slug and the
source it is about (a file, URL or policy path). The CLI prints it as one line,
``memgate: <source>: <problem>``, and exits with :data:`EXIT_ERROR`; only a bug produces a
traceback. Exit codes are named here so that tests and the GitHub Action speak the same numbers.
"""

from __future__ import annotations

#: The command succeeded; for ``check``: the gate passed (warnings allowed).
EXIT_OK = 0
#: The gate failed: at least one finding of severity ``fail``.
EXIT_FAIL = 1
#: Command-line usage error (click's own exit code).
EXIT_USAGE = 2
#: Bad input or a tool error: unreadable profile, invalid policy, missing baseline, ...
EXIT_ERROR = 3
#: Interrupted by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class MemgateError(Exception):
    """A user-facing error: one line, naming what it is about.

    ``source`` is the file, URL or setting the problem is in; ``slug`` a stable identifier for
    the kind of problem (``profile-truncated``, ``policy-invalid``, ...) that scripts may match on.
    """

    slug = "error"

    def __init_subclass__(cls, slug: str = "", **kwargs: object) -> None:
        """``class ProfileError(MemgateError, slug="profile-invalid")``: each kind of error
        names its default slug where it is declared."""
        super().__init_subclass__(**kwargs)
        if slug:
            cls.slug = slug

    def __init__(self, message: str, *, source: str | None = None, slug: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        if slug is not None:
            self.slug = slug

    def __str__(self) -> str:
        if self.source:
            return f"{self.source}: {self.message}"
        return self.message


def internal_error(error: BaseException) -> MemgateError:
    """The one-line error a bug is reported as (exit 3, never the gate's exit 1)."""
    from memgate import __version__

    return MemgateError(f"internal error: {type(error).__name__}: {error} (a bug in memgate "
                        f"{__version__}; MEMGATE_DEBUG=1 shows the traceback)", slug="internal")


class ProfileError(MemgateError, slug="profile-invalid"):
    """A profile could not be read, decoded or validated."""


class FetchError(ProfileError, slug="fetch-failed"):
    """A profile URL could not be fetched."""


class LimitError(ProfileError, slug="limit-exceeded"):
    """An input crossed a configured size limit (decompressed bytes, samples, locations)."""


class PolicyError(MemgateError, slug="policy-invalid"):
    """A policy file is unreadable or does not match the schema."""


class BaselineError(MemgateError, slug="baseline-invalid"):
    """The baseline store is missing, corrupt or locked."""


class CompareError(MemgateError, slug="incompatible"):
    """Two sides cannot be compared (different sample types, periods, no duration, ...)."""


class ReportError(MemgateError, slug="report-invalid"):
    """A JSON report is unreadable or does not match its schema."""
