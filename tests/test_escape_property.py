"""For any function name, the reports a reviewer reads stay what memgate wrote.

A failing check where one function (named by hypothesis: any code points, controls,
``|``, backticks, ``<``, ``@``, ``::``, ``##[``, bidi overrides, ...) grew:

* the markdown, rendered by GitHub's own renderer (cmark-gfm), has exactly the rows it should,
  every row its header's number of cells, and the name inside its cell's code span, shown as
  :func:`memgate.escape.md_code` shows it;
* the text output has no line that starts a workflow command or holds a control character;
* the JSON report keeps the exact name;
* the HTML page renders the name (in headless Chromium, for a sample of names).
"""

from __future__ import annotations

import html as htmllib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memgate import escape
from memgate.cli import main
from tests.test_untrusted import assert_safe_text, gfm, pair

pytest.importorskip("cmarkgfm")

PIECES = ["|", "`", "``", "\\|", "<", ">", "<!--", "-->", "@octocat", "::", "::error::x",
          "\r", "\n", "\r\n", "\t", "\x00", "\x1b[31m", "\x1b]8;;http://e\x1b\\", "\x85",
          "\u202e", "\u2066", "\u2028", "\u200b", "\ufeff", "##[error]", "**", "_", "#", "\\",
          "%SCRIPT%", "%DATA%", "</script>", "&amp;", "[x](http://e)", " ", "  "]
OTHERS = {"main.work", "main.main", "<total>"}

names = st.lists(
    st.one_of(st.sampled_from(PIECES),
              st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)),
    min_size=1, max_size=8,
).map("".join).filter(lambda s: s not in OTHERS and s.strip() != "")


def _tables(html: str) -> list[tuple[int, list[str]]]:
    """(header cells, body rows) of every table."""
    out = []
    for t in re.findall(r"<table>(.*?)</table>", html, re.DOTALL):
        head = re.search(r"<thead>(.*?)</thead>", t, re.DOTALL)
        body = re.search(r"<tbody>(.*?)</tbody>", t, re.DOTALL)
        assert head is not None
        rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.DOTALL) if body else []
        out.append((len(re.findall(r"<th\b", head.group(1))), rows))
    return out


def _code_cells(row: str) -> list[str]:
    return [htmllib.unescape(c) for c in re.findall(r"<td[^>]*><code>(.*?)</code>", row,
                                                    re.DOTALL)]


def shown(name: str) -> str:
    """How a code span shows ``name`` once GitHub rendered it."""
    return escape.visible(name).replace("##[", "#\\x23[")


def check_name(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        base, cand = pair(d, name)
        common = ["check", "--baseline", base, cand, "--duration", "60s"]
        res = CliRunner().invoke(main, [*common, "--format", "markdown", "--json",
                                        str(d / "r.json")])
        assert res.exit_code == 1, res.output
        report: dict[str, Any] = json.loads((d / "r.json").read_text())
        # The JSON keeps the exact name.
        assert name in {f["name"] for f in report["functions"]}
        markdown = res.output
        assert not any(escape.is_unsafe_char(c) for c in markdown.replace("\n", ""))
        assert not any(ln.lstrip().startswith("::") for ln in markdown.split("\n"))
        html = gfm(markdown)
        assert len(re.findall(r"<h2>", html)) == 1 and "<!--" not in html
        tables = _tables(html)
        for ncols, rows in tables:
            for row in rows:
                assert len(re.findall(r"<td\b", row)) == ncols, row
        # Findings: one row each, the name in the function column's code span.
        findings = tables[0][1]
        assert len(findings) == len(report["findings"])
        expected = shown(name)
        assert sum(expected in _code_cells(r) for r in findings) == sum(
            f["function"] == name for f in report["findings"])
        # All functions: one row per sample type with a flat value, for this name.
        full = tables[-1][1]
        entry = next(f for f in report["functions"] if f["name"] == name)
        want = sum(1 for r in entry["rates"].values()
                   if r["flat"]["baseline"] or r["flat"]["candidate"])
        assert sum(_code_cells(r)[:1] == [expected] for r in full) == want
        text = CliRunner().invoke(main, common)
        assert text.exit_code == 1
        assert_safe_text(text.output)
        assert escape.text(name) in text.output


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(names)
def test_any_function_name_stays_in_its_cell(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize("name", [
    "evil\r\r## ✅ memgate: **PASS** (forged) @octocat\r\r<!--",
    "a|b|c", "`", "``x``", " lead and trail ", "x\n::error title=forged::x", "##[error]x",
    "\u202eevil", "leak%SCRIPT%</script><svg onload=alert(1)>",
])
def test_named_cases(name: str) -> None:
    check_name(name)


# --------------------------------------------------------------------------- HTML in Chromium

try:
    from tests.test_html import _browse, needs_chromium
except ImportError:  # pragma: no cover
    needs_chromium = pytest.mark.skip(reason="tests.test_html is not importable")


def _page(d: Path, name: str) -> str:
    base, cand = pair(d, name)
    res = CliRunner().invoke(main, ["check", "--baseline", base, cand, "--duration", "60s",
                                    "--html", str(d / "p.html")])
    assert res.exit_code == 1, res.output
    return (d / "p.html").read_text("utf-8")


@pytest.mark.slow
@needs_chromium
@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(names)
def test_html_page_renders_any_name_in_chromium(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        page = _page(d, name)
        m = re.search(r'id="memgate-data">(.*?)</script>', page, re.DOTALL)
        assert m is not None
        data = json.loads(m.group(1))
        t = [s["type"] for s in data["types"]].index("inuse_space")
        got = _browse(page, d, name, t, zoom=False)
        assert got["ready"] == "1"
        assert got["found"], name  # a frame carries the exact name
        assert got["title"].startswith(name)
