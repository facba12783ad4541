"""Name Python frames as functions: ``module.QualName`` from a file name and a line number.

tracemalloc records only (file, line) per frame; memray records a bare function name. A gate
compares functions by name, across runs on different machines, so a name must

* say which function it is, not just which line (``JsonCache.put``, not ``cache.py:42``), and
  not merge the many ``__init__`` and ``get`` of a program into one (hence the qualified name,
  as Python 3.11's ``co_qualname`` spells it, with the module in front);
* not depend on where the checkout is: the module is the file's path relative to the longest
  import root it lies under (``sys.path`` entries: the script's directory, site-packages, the
  standard library), so ``/home/runner/work/app/app/cache.py`` and ``/src/app/cache.py`` both
  give ``app.cache`` when their roots are ``.../app`` and ``/src``.

The qualified name comes from compiling the file's source (what ``linecache`` finds) and
asking which code object a line belongs to. Source that cannot be read or compiled gives
``module.<unknown>``; a file is compiled once per :class:`FunctionNamer`.
"""

from __future__ import annotations

import linecache
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import CodeType

#: Source files larger than this are not compiled for names (a generated file of many MiB
#: would cost seconds for one name).
MAX_SOURCE_BYTES = 4 << 20

_SYNTHETIC = re.compile(r"<frozen ([A-Za-z0-9_.]+)>")
_SUFFIXES = (".py", ".pyc", ".pyw", ".pyx", ".pyi")
#: Code objects that a line should be attributed to only when nothing else has the line:
#: Python 3.12 inlines comprehensions, and a name must not change with the interpreter.
_INNER_ONLY = {"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<lambda>"}


@dataclass(frozen=True)
class FunctionName:
    """A Python function as a profile names it: ``module.qualname``, and its first line."""

    name: str
    start_line: int


def import_roots(paths: Iterable[str] | None = None) -> tuple[str, ...]:
    """Directories modules are named relative to, longest first (``sys.path`` by default)."""
    import sys

    roots = {os.path.realpath(os.path.abspath(p or ".")) for p in (paths if paths is not None
                                                                    else sys.path)}
    return tuple(sorted(roots, key=len, reverse=True))


def module_name(filename: str, roots: Sequence[str]) -> str:
    """The dotted module a file is, from the longest import root it lies under.

    ``<frozen importlib._bootstrap>`` is ``importlib._bootstrap``; other ``<...>`` names
    (``<string>``, ``<stdin>``) stay as they are; a file under no root is named by its stem.
    """
    m = _SYNTHETIC.fullmatch(filename)
    if m:
        return m.group(1)
    if filename.startswith("<"):
        return filename
    path = os.path.realpath(os.path.abspath(filename)) if os.path.isabs(filename) or \
        os.path.exists(filename) else filename
    rel = None
    for root in roots:
        if path.startswith(root.rstrip(os.sep) + os.sep):
            rel = path[len(root.rstrip(os.sep)) + 1:]
            break
    if rel is None:
        rel = os.path.basename(path)
    for suffix in _SUFFIXES:
        if rel.endswith(suffix):
            rel = rel[: -len(suffix)]
            break
    parts = [p for p in rel.replace("\\", "/").split("/") if p]
    if parts and parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts) or filename


class FunctionNamer:
    """Names (file, line) and (file, line, function) frames; caches per file."""

    def __init__(self, roots: Sequence[str] | None = None) -> None:
        self.roots = tuple(roots) if roots is not None else import_roots()
        self._lines: dict[str, dict[int, FunctionName] | None] = {}
        self._modules: dict[str, str] = {}

    def module(self, filename: str) -> str:
        mod = self._modules.get(filename)
        if mod is None:
            mod = self._modules[filename] = module_name(filename, self.roots)
        return mod

    def name(self, filename: str, line: int, function: str | None = None) -> FunctionName:
        """The function of ``filename:line``; ``function`` (memray's bare name) is the
        fallback when the source cannot tell."""
        if filename in self._lines:
            table = self._lines[filename]
        else:
            table = self._lines[filename] = _line_table(filename)
        if table:
            found = table.get(line)
            if found is not None:
                return FunctionName(f"{self.module(filename)}.{found.name}", found.start_line)
        fallback = function if function else "<unknown>"
        return FunctionName(f"{self.module(filename)}.{fallback}", 0)


def _line_table(filename: str) -> dict[int, FunctionName] | None:
    """line -> the function that line's code belongs to, from the file's source."""
    frozen = _SYNTHETIC.fullmatch(filename)
    if frozen:
        # Frozen standard-library modules (importlib, runpy, ... in 3.11+) run code compiled
        # from the library's own source file, with the same line numbers.
        import sysconfig

        filename = os.path.join(sysconfig.get_paths()["stdlib"],
                                *frozen.group(1).split(".")) + ".py"
        if not os.path.isfile(filename):
            return None
    try:
        if os.path.getsize(filename) > MAX_SOURCE_BYTES:
            return None
    except OSError:
        pass  # linecache may still know it (zip imports, exec'd code registered by a tool)
    try:
        lines = linecache.getlines(filename)
    except Exception:  # noqa: BLE001 - a loader's get_source may raise anything
        return None
    source = "".join(lines)
    if not source or len(source) > MAX_SOURCE_BYTES:
        return None
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None
    # For each line, the candidate code objects with their nesting depth.
    candidates: dict[int, list[tuple[int, CodeType, str]]] = {}
    stack: list[tuple[CodeType, int, str]] = [(code, 0, "<module>")]
    while stack:
        co, depth, qual = stack.pop()
        for _, _, line in co.co_lines():
            if line is not None:
                entry = candidates.setdefault(line, [])
                if not entry or entry[-1][1] is not co:
                    entry.append((depth, co, qual))
        for const in co.co_consts:
            if isinstance(const, CodeType):
                qualname = getattr(const, "co_qualname", None) or (
                    const.co_name if depth == 0 else f"{qual}.{const.co_name}")
                stack.append((const, depth + 1, qualname))
    table: dict[int, FunctionName] = {}
    for line, cands in candidates.items():
        # The `def` line belongs to the code that executes the def (it allocates the function
        # object), not to the function's own prologue.
        pick = [c for c in cands if c[1].co_firstlineno != line or c[1] is code] or cands
        plain = [c for c in pick if c[1].co_name not in _INNER_ONLY] or pick
        depth, co, qual = max(plain, key=lambda c: c[0])
        table[line] = FunctionName(qual, 0 if co is code else co.co_firstlineno)
    return table
