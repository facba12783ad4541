"""``memgate convert``: what Python tracers write, as pprof.

Inputs are recognised by content, as profiles are: a memray capture (LZ4 frame or ``memray``
magic) or a pickled ``tracemalloc.Snapshot`` (``Snapshot.dump``). Every result is decoded again
by memgate's own pprof reader before it is written, so that a converter bug cannot leave a
profile behind that the gate would refuse later.
"""

from __future__ import annotations

from memgate.config import Config
from memgate.errors import LimitError, ProfileError
from memgate.profile.decode import decode
from memgate.profile.sniff import is_gzip
from memgate.python.pprof import StackProfile


def read_input(path: str, config: Config) -> bytes:
    from memgate.profile.source import read_bytes

    if path == "-" or "://" in path:
        raise ProfileError("convert reads a file (memray and tracemalloc files are not "
                           "streamed or fetched)", source=path, slug="usage")
    data, _ = read_bytes(path, config)
    return data


def convert(path: str, config: Config) -> bytes:
    """The gzip pprof profile of a memray capture or pickled tracemalloc snapshot."""
    from memgate.python import memray_io
    from memgate.python.tracemalloc_io import (
        INUSE_TYPES,
        FrameNamer,
        add_traces,
        is_pickle,
        load_snapshot_pickle,
    )

    limits = config.limits
    data = read_input(path, config)
    if memray_io.is_memray(data):
        out = memray_io.convert_memray(path, path, max_samples=limits.max_samples)
    elif is_pickle(data):
        traces, limit = load_snapshot_pickle(data, path, limits.max_samples)
        prof = StackProfile(INUSE_TYPES, default_sample_type="inuse_space")
        add_traces(prof, traces, FrameNamer())
        prof.comments.append(f"tracemalloc snapshot, {limit} frames")
        out = prof.encode()
    elif is_gzip(data):
        raise ProfileError("is already a pprof profile; memgate reads it as it is",
                           source=path, slug="usage")
    else:
        raise ProfileError("not a memray capture (.bin) or a pickled tracemalloc snapshot "
                           "(tracemalloc.Snapshot.dump)", source=path, slug="unknown-format")
    check(out, path, config)
    return out


def check(data: bytes, source: str, config: Config) -> None:
    """The written profile must be one memgate itself reads back."""
    try:
        decode(data, source, config.limits, budget=config.budget)
    except LimitError:
        raise
    except ProfileError as e:  # pragma: no cover - a converter bug
        raise ProfileError(f"the converted profile does not decode ({e.message}); "
                           "a bug in memgate", source=source) from None
