"""pprof's goldens as tests/gen/regenerate.sh stores them: ``NAME.txt``, or ``NAME.txt.gz``
(gzip) when the text is over 128 KiB, so that the big profiles' goldens do not weigh on every
checkout."""

from __future__ import annotations

import gzip
from pathlib import Path


def golden_path(path: Path) -> Path:
    """``path`` (``.../functions.0.txt``) or its compressed copy, whichever is committed."""
    if path.is_file():
        return path
    return path.with_name(path.name + ".gz")


def read_golden(path: Path) -> bytes:
    """The golden's bytes, decompressed when it is stored as ``.txt.gz``."""
    found = golden_path(path)
    data = found.read_bytes()
    return gzip.decompress(data) if found.suffix == ".gz" else data


def read_golden_text(path: Path) -> str:
    """As ``Path.read_text()`` reads the plain file: UTF-8, universal newlines."""
    text = read_golden(path).decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")
