"""What kind of profile a byte string holds, from its content alone (never its name).

The one place that knows the headers: gzip magic ``1f 8b``; legacy text (``heap profile:``,
``--- heapz``); anything else is taken for raw protobuf and left to the protobuf decoder.
"""

from __future__ import annotations

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(data: bytes) -> bool:
    """Whether ``data`` starts with the gzip magic."""
    return data[:2] == GZIP_MAGIC


def looks_like_text(data: bytes) -> bool:
    """Legacy formats are ASCII text; a protobuf profile starts with a field tag byte."""
    head = data[:256].lstrip()
    return bool(head) and all(32 <= c < 127 or c in (9, 10, 13) for c in head[:64])
