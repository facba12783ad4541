"""Linear-time regular expressions (RE2) for every pattern a profile or a policy supplies.

Python's :mod:`re` backtracks: ``(a+)+$`` against forty ``a`` and a ``b`` takes longer than
any CI job may run. A profile carries its own patterns (``drop_frames``/``keep_frames``), a
policy has ``re:`` rules, and both may come from a pull request, so memgate matches them with
RE2 (the ``google-re2`` binding), whose time is linear in the text: the engine pprof itself
uses (Go's ``regexp`` is RE2), so a pattern means in memgate what it means in pprof. The
legacy text parsers use it too, for the same reason (pprof's regexes are Go's).

RE2's syntax is Go's: no backreferences and no look-around (``(?=...)``, ``\\1``); such a
pattern is an error here, with RE2's reason, rather than a slow match.
"""

from __future__ import annotations

from typing import Any, Protocol

from memgate.errors import MemgateError

__all__ = ["MAX_PATTERN_LENGTH", "Pattern", "RegexError", "compile"]

#: Longer patterns are refused before RE2 sees them (a real one is a few hundred characters;
#: pprof's legacy allocator list, the longest memgate knows, is about 2,000).
MAX_PATTERN_LENGTH = 64 * 1024
#: Memory RE2 may use for one compiled pattern (its DFA caches included). Patterns that need
#: more fail to compile; matching falls back to the NFA, still linear, when the DFA is full.
MAX_MEMORY = 64 << 20


class RegexError(ValueError):
    """A pattern RE2 cannot compile (or too long); the message says why, on one line."""


class Match(Protocol):
    def group(self, *groups: int) -> Any: ...
    def groups(self, default: Any = None) -> tuple[Any, ...]: ...
    def start(self, group: int = 0) -> int: ...
    def end(self, group: int = 0) -> int: ...


class Pattern(Protocol):
    """The part of a compiled RE2 pattern memgate uses (the :mod:`re` API)."""

    @property
    def pattern(self) -> str: ...
    def search(self, text: str, pos: int | None = None) -> Match | None: ...
    def match(self, text: str, pos: int | None = None) -> Match | None: ...
    def fullmatch(self, text: str) -> Match | None: ...
    def finditer(self, text: str) -> Any: ...
    def findall(self, text: str) -> list[Any]: ...
    def sub(self, repl: Any, text: str, count: int = 0) -> str: ...


def _engine() -> Any:
    try:
        import re2  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError as e:  # pragma: no cover - google-re2 is a dependency
        raise MemgateError(
            f"the google-re2 package is missing or broken ({e}); memgate matches regular "
            "expressions with RE2: reinstall memgate (pip install memgate) to get it",
            slug="missing-dependency") from None
    return re2


_OPTIONS: Any = None


def compile(pattern: str) -> Pattern:  # noqa: A001 - the name of the re API
    """Compile ``pattern`` with RE2 (Go syntax, UTF-8). :class:`RegexError` if it cannot."""
    global _OPTIONS
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RegexError(f"the pattern is {len(pattern)} characters long, more than "
                         f"{MAX_PATTERN_LENGTH}")
    re2 = _engine()
    if _OPTIONS is None:
        options = re2.Options()
        options.log_errors = False  # RE2 would print every bad pattern on stderr
        options.max_mem = MAX_MEMORY
        _OPTIONS = options
    try:
        compiled: Pattern = re2.compile(pattern, _OPTIONS)
    except re2.error as e:
        raise RegexError(_reason(e)) from None
    except (TypeError, ValueError, UnicodeError) as e:  # a lone surrogate cannot be UTF-8
        raise RegexError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    return compiled


def _reason(e: BaseException) -> str:
    """RE2's message (the binding passes it as bytes), on one line."""
    arg = e.args[0] if e.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return " ".join(text.split()) or "invalid regular expression"


def fullmatch(pattern: Pattern, text: str) -> bool:
    """Whether ``pattern`` matches all of ``text``; text that cannot be UTF-8 (a lone
    surrogate) is matched as its bytes, so that no input string makes matching fail."""
    try:
        return pattern.fullmatch(text) is not None
    except UnicodeEncodeError:
        return pattern.fullmatch(text.encode("utf-8", "surrogatepass")) is not None  # type: ignore[arg-type]
