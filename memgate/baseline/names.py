"""What may name a component, and the names of the store's own temporary entries.

A component name becomes a directory under ``baselines/``, so this is the one place that
decides which names are safe; the store's temporary entries (``.<component>.new-<token>``
and its ``old``/``trash`` kin) start with a dot so that no valid name can collide with them.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Final

from memgate.errors import BaselineError

MAX_NAME_LENGTH: Final = 100

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TOKEN_LEN: Final = 16
#: A temporary entry of an update: ``.<component>.<kind>-<token>`` (the module docstring of
#: :mod:`memgate.baseline.store` says what each kind is).
TEMP_RE: Final = re.compile(rf"\.(?P<name>.+)\.(?P<kind>new|old|trash)-[0-9a-f]{{{_TOKEN_LEN}}}")


def validate_component_name(name: str) -> str:
    """Return ``name`` if it can name a directory under ``baselines/``, else raise.

    A component name becomes a path, so anything that could leave the store (separators,
    ``..``, absolute paths) or hide in it (a leading dot is reserved for the store's own
    temporary entries) is refused, and so are control characters, which would make one-line
    messages lie. The allowed alphabet is the one policy files use for ``components`` keys,
    so that every baseline can have a policy section.
    """
    shown = repr(name)
    if not isinstance(name, str) or name == "":
        raise BaselineError("invalid component name: it is empty", slug="component-name")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        reason = "contains a control character"
    elif name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", name):
        reason = "is an absolute path"
    elif "/" in name or "\\" in name:
        reason = "contains a path separator"
    elif ".." in name or name == ".":
        reason = "contains '.' or '..' path parts"
    elif name.startswith("."):
        reason = "starts with '.' (reserved for the store's temporary files)"
    elif len(name) > MAX_NAME_LENGTH:
        reason = f"is longer than {MAX_NAME_LENGTH} characters"
    elif not _NAME_RE.fullmatch(name):
        reason = ("may contain only ASCII letters, digits, '.', '_' and '-' and must start "
                  "with a letter or digit")
    else:
        return name
    raise BaselineError(f"invalid component name {shown}: it {reason}", slug="component-name")



def new_token() -> str:
    """The random part of a temporary entry's name: unique per update."""
    return secrets.token_hex(_TOKEN_LEN // 2)


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line of at most ``limit`` characters, for one-line messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
