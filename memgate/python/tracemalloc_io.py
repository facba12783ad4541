"""tracemalloc snapshots as pprof: live blocks per stack become ``inuse_objects``/``inuse_space``.

tracemalloc keeps a trace only for blocks that are still allocated, so a snapshot says what is
in use, never what was allocated and freed: a profile from it has no ``alloc_*`` types (the
memray backend has them). Every allocation is traced, so the sampling period is 1 and
memgate compares the numbers exactly (no sampling noise).

A raw trace is ``(domain, size, frames, total_nframe)`` with ``frames`` a tuple of
``(filename, lineno)``, most recent first: the leaf-first order pprof stacks use.

A pickled ``tracemalloc.Snapshot`` (``Snapshot.dump``) is read with an unpickler that builds
nothing but plain containers: a pickle from a pull request could otherwise run any code.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable, Sequence
from typing import Any

from memgate.errors import LimitError, ProfileError
from memgate.python.names import FunctionNamer
from memgate.python.pprof import PyFrame, StackProfile

INUSE_TYPES = (("inuse_objects", "count"), ("inuse_space", "bytes"))

#: (filename, lineno) frames of one trace, most recent first.
RawFrames = Sequence[tuple[str, int]]


class FrameNamer:
    """Raw ``(filename, lineno)`` frames to :class:`PyFrame`, cached."""

    def __init__(self, namer: FunctionNamer | None = None) -> None:
        self.namer = namer or FunctionNamer()
        self._cache: dict[tuple[str, int], PyFrame] = {}

    def __call__(self, filename: str, line: int, function: str | None = None) -> PyFrame:
        key = (filename, line)
        fr = self._cache.get(key)
        if fr is None:
            fn = self.namer.name(filename, line, function)
            fr = self._cache[key] = PyFrame(fn.name, filename, line, fn.start_line)
        return fr


def add_traces(profile: StackProfile, traces: Iterable[tuple[int, RawFrames]],
               frames: FrameNamer) -> None:
    """Add ``(size, frames)`` traces as in-use objects and bytes, one sample per stack."""
    grouped: dict[tuple[tuple[str, int], ...], list[int]] = {}
    for size, raw in traces:
        key = tuple(raw)
        g = grouped.get(key)
        if g is None:
            grouped[key] = [1, size]
        else:
            g[0] += 1
            g[1] += size
    for raw, (count, size) in grouped.items():
        profile.add([frames(f, ln) for f, ln in raw], [count, size])


def snapshot_traces(snapshot: Any) -> list[tuple[int, RawFrames]]:
    """``(size, frames)`` of every trace of a live ``tracemalloc.Snapshot``."""
    # Snapshot.traces._traces is the raw list (domain, size, frames, total_nframe); the public
    # Trace objects wrap the same tuples at a cost per trace.
    raw = getattr(snapshot.traces, "_traces", None)
    if raw is None:  # pragma: no cover - a future Python without the raw list
        return [(t.size, [(f.filename, f.lineno) for f in reversed(t.traceback)])
                for t in snapshot.traces]
    return [(t[1], t[2]) for t in raw]


# --- pickled snapshots -----------------------------------------------------------------


class _Stub:
    """What the restricted unpickler builds for tracemalloc's classes: a bag of state."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _SnapshotStub(_Stub):
    pass


class _TracesStub(_Stub):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows tracemalloc.Snapshot and tracemalloc._Traces, as stubs; nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "tracemalloc" and name == "Snapshot":
            return _SnapshotStub
        if module == "tracemalloc" and name == "_Traces":
            return _TracesStub
        raise pickle.UnpicklingError(f"refers to {module[:60]}.{name[:60]}, which a "
                                     "tracemalloc snapshot does not contain")


def is_pickle(data: bytes) -> bool:
    """Protocol 2+ pickles start with PROTO (0x80) and a protocol number."""
    return len(data) > 2 and data[0] == 0x80 and 2 <= data[1] <= 5


def load_snapshot_pickle(data: bytes, source: str,
                         max_traces: int) -> tuple[list[tuple[int, RawFrames]], int]:
    """The traces of a pickled ``tracemalloc.Snapshot``, checked field by field; and its
    traceback limit."""
    def bad(why: str) -> ProfileError:
        return ProfileError(f"not a valid pickled tracemalloc snapshot: {why}", source=source,
                            slug="snapshot-invalid")

    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except RecursionError:
        raise bad("nested too deeply") from None
    except MemoryError:
        raise bad("too large to load") from None
    except Exception as e:  # noqa: BLE001 - any unpickling failure is the file's fault
        raise bad(f"{type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(obj, _SnapshotStub) or not isinstance(getattr(obj, "state", None), dict):
        raise bad("the pickle holds something else")
    state = obj.state
    traces_obj = state.get("traces")
    limit = state.get("traceback_limit")
    if not isinstance(traces_obj, _TracesStub) or not isinstance(
            getattr(traces_obj, "state", None), dict):
        raise bad("no traces")
    raw = traces_obj.state.get("_traces")
    if not isinstance(raw, (list, tuple)):
        raise bad("no trace list")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise bad("traceback_limit is not a count")
    if len(raw) > max_traces:
        raise LimitError(f"the snapshot has {len(raw)} traces, more than the limit of "
                         f"{max_traces} (--max-samples)", source=source)
    out: list[tuple[int, RawFrames]] = []
    for i, t in enumerate(raw):
        if not isinstance(t, tuple) or len(t) not in (3, 4):
            raise bad(f"trace {i} is not a (domain, size, frames[, total]) tuple")
        size, frames = t[1], t[2]
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 1 << 62:
            raise bad(f"trace {i}: the size is not a byte count")
        if not isinstance(frames, tuple):
            raise bad(f"trace {i}: frames are not a tuple")
        for fr in frames:
            if (not isinstance(fr, tuple) or len(fr) != 2 or not isinstance(fr[0], str)
                    or not isinstance(fr[1], int) or isinstance(fr[1], bool)
                    or not 0 <= fr[1] < 1 << 31):
                raise bad(f"trace {i}: a frame is not (filename, line)")
        out.append((size, frames))
    return out, limit
