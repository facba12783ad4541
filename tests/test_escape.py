"""The escaping layer (memgate/escape.py), function by function."""

from __future__ import annotations

import json
import unicodedata

import pytest

from memgate import escape


def test_the_unsafe_table_covers_this_pythons_unicode_database() -> None:
    missing = [hex(cp) for cp in range(0x110000)
               if unicodedata.category(chr(cp)) in escape.UNSAFE_CATEGORIES
               and not escape.is_unsafe_char(chr(cp))]
    assert missing == []


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain.name", "plain.name"),
    ("a\r\nb\tc", "a\\r\\nb\\tc"),
    ("\x1b[31mred", "\\x1b[31mred"),
    ("\x85\x9b", "\\x85\\x9b"),
    ("\u202eevil\u2066", "\\u202eevil\\u2066"),
    ("\u2028\u2029", "\\u2028\\u2029"),
    ("bad\udcffbyte", "bad\\xffbyte"),
    ("tag\U000e0041", "tag\\U000e0041"),
    ("émoji ✅ stay", "émoji ✅ stay"),
])
def test_visible(raw: str, shown: str) -> None:
    assert escape.visible(raw) == shown


def test_text_never_starts_or_holds_a_command() -> None:
    assert escape.text("::error::x") == "\\x3a:error::x"
    assert escape.text("  ::warning::x") == "  \\x3a:warning::x"
    assert escape.text("a ##[error]b") == "a #\\x23[error]b"
    assert escape.text("std::vector<int>::push_back") == "std::vector<int>::push_back"
    block = escape.text_block("ok\n::error::x\n\x1b[1mbold\x1b[0m", sgr=True)
    assert block == "ok\n\\x3a:error::x\n\x1b[1mbold\x1b[0m"
    assert escape.text_block("\x1b[1mx") == "\\x1b[1mx"


@pytest.mark.parametrize(("raw", "code"), [
    ("name", "`name`"),
    ("a|b", "`a\\|b`"),
    ("a`b", "``a`b``"),
    ("`a", "`` `a ``"),
    ("a``b`", "``` a``b` ```"),
    (" x ", "`  x  `"),
    ("", "` `"),
    ("<!-- @x **y**", "`<!-- @x **y**`"),
    ("##[error]", "`#\\x23[error]`"),
])
def test_md_code(raw: str, code: str) -> None:
    assert escape.md_code(raw) == code


def test_md_text() -> None:
    assert escape.md_text("inuse_space") == "inuse_space"
    assert escape.md_text("<!-- x") == "&lt;\\!-- x"
    assert escape.md_text("hi @octocat") == "hi `@`octocat"
    assert escape.md_text("**b** _i_ [l](u)") == "\\*\\*b\\*\\* \\_i\\_ \\[l\\](u)"
    assert "\n" not in escape.md_text("a\nb") and "\r" not in escape.md_text("a\rb")


def test_workflow_values() -> None:
    assert escape.workflow_data("50% a\r\nb\x1b") == "50%25 a%0D%0Ab\\x1b"
    assert escape.workflow_property("a:b,c") == "a%3Ab%2Cc"


def test_json_text_keeps_the_data() -> None:
    data = {"name": "x\u2028\udcff\U000e0041\x85##[error]\n", "n": [1, 2]}
    text = escape.json_dumps(data, indent=2)
    assert json.loads(text) == data
    assert not any(escape.is_unsafe_char(c) for c in text.replace("\n", ""))
    assert "##[" not in text


def test_fill_template_is_one_pass() -> None:
    page = escape.fill_template("<a>%X%</a><b>%Y%</b>", {"X": "%Y%", "Y": "y"})
    assert page == "<a>%Y%</a><b>y</b>"
    with pytest.raises(KeyError):
        escape.fill_template("%NOPE%", {})
