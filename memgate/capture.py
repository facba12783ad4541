"""Marks for ``memgate capture --snapshot-at mark``: the program says when its memory counts.

In-use memory at exit includes whatever the program builds and keeps until then; a server or a
batch job often has a moment that matters more (the workload done, before teardown). Call
:func:`snapshot` there::

    import memgate.capture
    ...
    memgate.capture.snapshot()

Under ``memgate capture --snapshot-at mark`` the profile's in-use memory is what was allocated
at the last such call (or the last ``SIGUSR1``). Anywhere else the call does nothing and costs
nothing, so it can stay in the code.
"""

from __future__ import annotations


def snapshot() -> bool:
    """Record the in-use memory now, if ``memgate capture --snapshot-at mark`` runs this
    program; True when it did."""
    import sys

    runner = sys.modules.get("memgate.python.runner")
    active = getattr(runner, "_active", None) if runner is not None else None
    return bool(active is not None and active.mark())
