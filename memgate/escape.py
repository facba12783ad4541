"""Escaping for every kind of output, in one place: whatever a profile or a report holds.

In a pull request the author controls every string of the candidate profiles (function and
file names, sample types, labels), the names of the files a glob matches, and anything
committed as a baseline or a report. Those strings reach a reviewer through the terminal or
the Actions log (text), the step summary and the pull-request comment (markdown), the
workflow commands that make annotations, the HTML page and the JSON report. Each kind of
output has its own dangerous characters, so each has one function here, and the renderers
call these at the points where they emit a string they did not write themselves:

============================  ==================================================================
:func:`text`                   a value inside a line of text output (terminal, Actions log)
:func:`text_block`             a whole text output, as a last line of defence
:func:`md_code`                a value as a markdown code span (a table cell, a name)
:func:`md_text`                a value as plain markdown text (a warning, a sentence)
:func:`workflow_data`,         a workflow command's message and property values
:func:`workflow_property`
:func:`json_text`              a JSON document printed or written (the exact strings stay)
:func:`fill_template`          an HTML (or any) template filled in one pass
============================  ==================================================================

Names stay readable: a control character is *shown* as an escape (``\\r``, ``\\x1b``,
``\\u202e``), never dropped, so two names that differ only in one stay different, and the
JSON report keeps the exact string for anyone who needs to find the original.

What is neutralised everywhere:

* control characters: C0 and C1 (``\\r``, ``\\n``, ``\\t``, ESC, CSI ...), DEL, the line and
  paragraph separators U+2028/U+2029, every format character (the bidirectional overrides and
  isolates U+202A-U+202E and U+2066-U+2069, zero-width joiners and spaces, the BOM) and lone
  surrogates (file names that are not UTF-8 reach Python as ``\\udcXX``; they are shown as
  the byte, ``\\xXX``). A terminal escape needs ESC or a C1 character, so none survives;
* workflow commands: the Actions runner reads ``::command::`` at the start of a line (after
  any spaces) and the older ``##[command]`` *anywhere* in a line. A value that would start a
  line with ``::`` gets its first colon escaped, and ``##[`` becomes ``#\\x23[``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "fill_template",
    "is_unsafe_char",
    "json_dumps",
    "json_text",
    "md_code",
    "md_text",
    "text",
    "text_block",
    "visible",
    "workflow_data",
    "workflow_property",
]

#: Unicode categories never written raw: controls, format characters (bidi overrides, zero
#: width), surrogates, and the line and paragraph separators.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_unsafe_char(ch: str) -> bool:
    """Whether ``ch`` must not be written raw to a terminal, a log or a markdown file."""
    return _UNSAFE_RE.fullmatch(ch) is not None


def _escape_char(ch: str) -> str:
    short = _SHORT.get(ch)
    if short is not None:
        return short
    cp = ord(ch)
    if 0xDC80 <= cp <= 0xDCFF:
        return f"\\x{cp - 0xDC00:02x}"  # a byte that was not UTF-8 (surrogateescape)
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


#: The code points of those categories (Unicode 14, Python 3.11's database, plus the format
#: characters later versions added: U+13439-U+1343F in Unicode 15), as ranges. Written out
#: rather than computed at import: walking the whole Unicode table takes 0.3 s, which every
#: command would pay. A test checks the table against the running Python's database.
UNSAFE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)


def _unsafe_class() -> str:
    def one(cp: int) -> str:
        return f"\\U{cp:08x}"

    return "[" + "".join(one(a) if a == b else f"{one(a)}-{one(b)}"
                         for a, b in UNSAFE_RANGES) + "]"


_UNSAFE_RE = re.compile(_unsafe_class())


def visible(value: object) -> str:
    """``value`` as text with every unsafe character shown as an escape (see the module
    docstring). Safe text is returned unchanged."""
    s = value if isinstance(value, str) else str(value)
    if _UNSAFE_RE.search(s) is None:
        return s
    return _UNSAFE_RE.sub(lambda m: _escape_char(m.group()), s)


# --------------------------------------------------------------------------- text (terminal, log)

_LEGACY_COMMAND = "##["


def text(value: object) -> str:
    """A value to put inside a line of text output (terminal, CI log): one line, no control
    character, no workflow command (module docstring)."""
    s = visible(value).replace(_LEGACY_COMMAND, "#\\x23[")
    stripped = s.lstrip()
    if stripped.startswith("::"):
        cut = len(s) - len(stripped)
        s = s[:cut] + "\\x3a" + s[cut + 1:]
    return s


def text_block(output: str, *, sgr: bool = False) -> str:
    """A whole text output made safe line by line, keeping its line breaks.

    Renderers escape each value they insert with :func:`text`; this is the net under them,
    applied where a command prints: no line starts a workflow command or holds a control
    character other than the line break. ``sgr`` keeps memgate's own colour sequences
    (``ESC [ ... m``, which only the renderer writes) and escapes everything else.
    """
    if not sgr:
        return "\n".join(text(line) for line in output.split("\n"))
    out = []
    for line in output.split("\n"):
        codes = _SGR_RE.findall(line)
        pieces = [visible(p).replace(_LEGACY_COMMAND, "#\\x23[") for p in _SGR_RE.split(line)]
        if "".join(pieces).lstrip().startswith("::"):
            out.append(text(line))  # such a line loses its colour
            continue
        out.append("".join(p + (codes[i] if i < len(codes) else "")
                           for i, p in enumerate(pieces)))
    return "\n".join(out)


_SGR_RE = re.compile(r"\x1b\[[0-9;]*m")


# --------------------------------------------------------------------------- markdown

#: Markdown punctuation escaped in text; ``_`` only where it could open or close emphasis
#: (GitHub ignores it inside words, so ``inuse_space`` stays as it is written).
_MD_TEXT_SPECIAL = re.compile(r"[\\`*\[\]<>|~#!&$]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_MD_ENTITY = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def md_code(value: object, *, table: bool = True) -> str:
    """``value`` as one inline code span that stays inside a GitHub table cell.

    Backticks in the value are kept: the span's fence is one backtick longer than the longest
    run inside it (padded with spaces where the value starts or ends with one); in a table
    cell (``table``) ``|`` is escaped as ``\\|``, which GitHub's table parser undoes inside
    code spans. Outside a table nothing undoes it, so there ``|`` stays as it is: a code span
    shows its text literally, backslashes included. Control characters are shown as escapes,
    so no line break can end the cell, the table or the span. Inside a code span nothing else
    is markup: ``<!--``, ``**``, ``@mention`` stay literal.
    """
    s = visible(value)
    if table:
        s = s.replace("|", "\\|")
    s = s.replace(_LEGACY_COMMAND, "#\\x23[")
    if s == "" or s.strip(" ") == "":
        return "` " + s + " `" if s else "` `"
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if (s[0] in "` " or s[-1] in "` ") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def md_text(value: object) -> str:
    """``value`` as plain markdown text inside a line: no markup, no HTML, no mention.

    Markdown's punctuation is backslash-escaped (``<`` ``>`` ``&`` as entities), control
    characters are shown as escapes (so the value cannot end the line, the paragraph or a
    block quote), and ``@`` is written as a one-character code span: GitHub does not link
    mentions inside code, so ``@octocat`` in a file name notifies nobody.
    """
    s = visible(value).replace(_LEGACY_COMMAND, "#\\x23[")
    s = _MD_TEXT_SPECIAL.sub(lambda m: _MD_ENTITY.get(m.group(), "\\" + m.group()), s)
    return s.replace("@", "`@`")


# --------------------------------------------------------------------------- workflow commands


def workflow_data(value: object) -> str:
    """A workflow command's message: the runner's own escapes (``%``, CR, LF), so that the
    message is one line and cannot hold another command, and visible control characters."""
    s = value if isinstance(value, str) else str(value)
    # CR and LF become the runner's own escapes (an annotation may have several lines; they
    # cannot end the command); every other control character is shown as an escape.
    return visible(s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def workflow_property(value: object) -> str:
    """A workflow command's property value (``title=...``): also ``:`` and ``,``."""
    return workflow_data(value).replace(":", "%3A").replace(",", "%2C")


# --------------------------------------------------------------------------- JSON


def _json_escape(ch: str) -> str:
    if ch == "\n":
        return ch  # json.dumps escapes the controls inside strings: a raw one is indentation
    cp = ord(ch)
    if cp > 0xFFFF:
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"
    return f"\\u{cp:04x}"


def json_text(document: str) -> str:
    """A JSON document (as ``json.dumps(..., ensure_ascii=False)`` writes it) whose unsafe
    characters are written as ``\\uXXXX`` escapes: the same strings to any JSON reader, but
    nothing a terminal, a log or an encoder chokes on (lone surrogates cannot even be written
    as UTF-8). ``##[`` is written as ``#\\u0023[`` for the same reason as in :func:`text`;
    JSON syntax itself never contains it, nor a line starting with ``::``."""
    if _UNSAFE_RE.search(document) is not None:
        document = _UNSAFE_RE.sub(lambda m: _json_escape(m.group()), document)
    return document.replace(_LEGACY_COMMAND, "#\\u0023[")


def json_dumps(data: Any, **kwargs: Any) -> str:
    """``json.dumps`` (UTF-8 text, no NaN) made safe with :func:`json_text`."""
    kwargs.setdefault("ensure_ascii", False)
    kwargs.setdefault("allow_nan", False)
    return json_text(json.dumps(data, **kwargs))


# --------------------------------------------------------------------------- templates

_PLACEHOLDER = re.compile(r"%([A-Z][A-Z_]*)%")


def fill_template(template: str, values: Mapping[str, str] | Callable[[str], str]) -> str:
    """Replace every ``%NAME%`` of ``template`` in one pass.

    One pass matters: with chained ``str.replace`` a value that contains another placeholder
    (a function name ``%SCRIPT%`` in the page's data) would be filled in too. Here what a
    value holds is never looked at again. An unknown placeholder is an error (a typo in the
    template), not silently left in the output.
    """
    get = values if callable(values) else values.__getitem__

    def one(m: re.Match[str]) -> str:
        return get(m.group(1))

    return _PLACEHOLDER.sub(one, template)
