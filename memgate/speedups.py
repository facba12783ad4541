"""Access to the optional C loops (memgate/_speedups.c).

memgate works without them: numpy paths do the same work. They are used when the extension was
built at install time, unless ``MEMGATE_NO_SPEEDUPS=1`` (the tests run both paths against the
same pprof goldens).
"""

from __future__ import annotations

import os
from types import ModuleType


def module() -> ModuleType | None:
    """The compiled module, or None when it is missing or switched off."""
    if os.environ.get("MEMGATE_NO_SPEEDUPS", "").strip() not in ("", "0"):
        return None
    try:
        from memgate import _speedups  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _speedups  # type: ignore[no-any-return]
