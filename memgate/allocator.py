"""Tune glibc's malloc for memgate's allocation pattern (command-line process only).

Decoding and aggregating allocate large temporaries chunk after chunk and free them again.
With glibc's defaults, a freed block above the (dynamic) mmap threshold goes back to the
operating system and the next chunk faults its pages in afresh, which on a virtual machine
costs about as much as the arithmetic done on them; and freed memory at the top of the heap is
trimmed away too. Keeping it for reuse cuts a 1M-sample decode's page faults by a quarter and
its time by about 15% (and lowers peak RSS a little). Measured in docs/performance.md.

Only the command-line entry point calls this: a library must not change its host process's
allocator. Elsewhere than glibc (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: The largest mmap threshold glibc's dynamic adjustment would reach on 64-bit systems.
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = (1 << 31) - 1


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse; True if it was applied.

    ``MEMGATE_NO_MALLOPT=1`` leaves the allocator alone (to measure the difference).
    """
    if not sys.platform.startswith("linux"):
        return False
    if os.environ.get("MEMGATE_NO_MALLOPT", "").strip() not in ("", "0"):
        return False
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
            return False
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
        return bool(libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and ok)
    except (OSError, AttributeError, ValueError):  # pragma: no cover - exotic platforms
        return False
