"""The code's layout as the README's "Code map" describes it: every module listed there exists
and every module is listed, none grows past the size a reader can hold, and no two modules
import each other (directly or round a loop, lazy imports included)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "memgate"

#: Generated code is not read by people; it is left out of the size rule.
GENERATED = {"memgate/profile/profile_pb2.py"}
MAX_MODULE_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The memgate modules ``module`` imports anywhere in its body (lazy imports count: a
    cycle through a function-level import is still a cycle)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                if not is_package:
                    parts = parts[:-1]
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([base] if base else [])])
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.add(name if name in modules else base)
    return {m for m in found if m in modules and m != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_too_long_to_read() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _modules().values()
            if str(p.relative_to(ROOT)) not in GENERATED
            and (n := len(p.read_text("utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def code_map(readme: str) -> list[str]:
    """The module files the README's "Code map" tree names: the first code block of that
    section, two spaces of indent a level, ``name/`` a package, ``name.py`` a module, then
    a description."""
    section = readme.split("## Code map", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1].splitlines()[1:]
    dirs: list[str] = []
    files = []
    for line in block:
        m = re.match(r"( *)(\S+)", line)
        if not m:
            continue
        depth, entry = len(m.group(1)) // 2, m.group(2)
        del dirs[depth:]
        if entry.endswith("/"):
            dirs.append(entry.rstrip("/"))
        elif entry.endswith(".py"):
            files.append("/".join([*dirs, entry]))
    return files


def test_code_map_parser() -> None:
    readme = ("## Code map\n```text\nmemgate/\n  a.py    x\n  sub/    y\n    b.py  z\n"
              "  c.py    w\n```\n## Next\n")
    assert code_map(readme) == ["memgate/a.py", "memgate/sub/b.py", "memgate/c.py"]


def test_readme_code_map_is_the_layout() -> None:
    """The README's "Code map" names every module file, once, and only files that exist."""
    listed = code_map((ROOT / "README.md").read_text("utf-8"))
    actual = {str(p.relative_to(ROOT)) for p in _modules().values()}
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert sorted(actual - set(listed)) == [], "modules missing from the README's code map"
    assert sorted(set(listed) - actual) == [], "the code map names modules that do not exist"
