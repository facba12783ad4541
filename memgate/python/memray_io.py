"""memray capture files (``.bin``) as pprof, read in a separate process.

memray sees every allocation, freed or not, Python objects and native ``malloc`` alike
(``trace_python_allocators`` decides whether pymalloc's small objects are seen one by one or
only as the arenas pymalloc gets from ``malloc``). A converted profile has

* ``alloc_objects``/``alloc_space``: every allocation the file records (not for files written
  with ``--aggregate``, which keep no per-allocation records);
* ``inuse_objects``/``inuse_space``: what was still allocated when tracking ended (memray's
  "leaks");
* ``peak_objects``/``peak_space``: what was allocated at the moment the heap was highest
  (memray's high-water mark), per stack.

memray's reader is C++ parsing a binary format; a damaged or hostile file could crash it or
exhaust memory. It therefore runs in a child interpreter with a time limit: whatever goes wrong
there becomes one line naming the file, never a crash of memgate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from memgate.errors import LimitError, ProfileError

#: LZ4 frame magic (memray compresses its files by default) and memray's own header magic.
_MAGICS = (b"\x04\x22\x4d\x18", b"memray")
#: Seconds the child may take to read a capture.
TIMEOUT = float(os.environ.get("MEMGATE_CONVERT_TIMEOUT", "600"))
_ERROR_MARK = "memgate-convert-error: "

ALLOCATORS_FREEING = {"FREE", "MUNMAP", "PYMALLOC_FREE"}


def is_memray(data: bytes) -> bool:
    return data.startswith(_MAGICS)


def memray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("memray") is not None


def convert_memray(path: str, source: str, header: dict[str, Any] | None = None,
                   max_samples: int = 20_000_000) -> bytes:
    """The pprof profile (gzip) of a memray capture file; ProfileError when it cannot be read."""
    if not memray_available():
        raise ProfileError("is a memray capture; reading it needs memray "
                           "(pip install 'memgate[memray]')", source=source,
                           slug="memray-missing")
    import memgate

    root = os.path.dirname(os.path.dirname(os.path.abspath(memgate.__file__)))
    with tempfile.TemporaryDirectory(prefix="memgate-convert-") as tmp:
        out = os.path.join(tmp, "out.pb.gz")
        cfg = {"input": os.path.abspath(path), "out": out, "header": header or {},
               "max_samples": max_samples}
        env = dict(os.environ, MEMGATE_CONVERT=json.dumps(cfg))
        code = (f"import sys; sys.path.insert(0, {root!r}); "
                "from memgate.python.memray_io import _child_main; _child_main()")
        try:
            proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                  timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ProfileError(f"memray's reader did not finish within {TIMEOUT:g} s "
                               "(MEMGATE_CONVERT_TIMEOUT)", source=source,
                               slug="memray-invalid") from None
        if proc.returncode != 0:
            raise _child_error(proc, source)
        try:
            with open(out, "rb") as fh:
                return fh.read()
        except OSError:
            raise ProfileError("memray's reader wrote no profile", source=source,
                               slug="memray-invalid") from None


def _child_error(proc: subprocess.CompletedProcess[bytes], source: str) -> ProfileError:
    from memgate.python.pprof import clean

    text = proc.stderr.decode("utf-8", "replace")
    for line in reversed(text.splitlines()):
        if line.startswith(_ERROR_MARK):
            msg = line[len(_ERROR_MARK):]
            if msg.startswith("limit: "):
                return LimitError(clean(msg[7:], 300), source=source)
            return ProfileError(clean(msg, 300), source=source, slug="memray-invalid")
    if proc.returncode < 0:
        return ProfileError(f"not a readable memray capture (memray's reader was killed by "
                            f"signal {-proc.returncode})", source=source, slug="memray-invalid")
    return ProfileError(f"not a readable memray capture (memray's reader failed with status "
                        f"{proc.returncode})", source=source, slug="memray-invalid")


def _child_main() -> None:
    """In the child: read the capture, write the profile; one marked line on failure."""
    cfg = json.loads(os.environ.pop("MEMGATE_CONVERT"))
    try:
        data = _convert(cfg)
    except _Limit as e:
        print(f"{_ERROR_MARK}limit: {e}", file=sys.stderr)
        sys.exit(3)
    except Exception as e:  # noqa: BLE001 - the file's fault; reported in one line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"{_ERROR_MARK}not a readable memray capture: {msg[:200]}", file=sys.stderr)
        sys.exit(3)
    with open(cfg["out"], "wb") as fh:
        fh.write(data)


class _Limit(Exception):
    pass


def _convert(cfg: dict[str, Any]) -> bytes:
    import memray

    from memgate.python.pprof import PyFrame, StackProfile
    from memgate.python.tracemalloc_io import FrameNamer

    LAUNCHER = PyFrame("<launcher>", "<launcher>", 0)
    header = cfg["header"]
    reader = memray.FileReader(cfg["input"])
    meta = reader.metadata
    aggregated = getattr(meta.file_format, "name", "") == "AGGREGATED_ALLOCATIONS"
    types = [] if aggregated else [("alloc_objects", "count"), ("alloc_space", "bytes")]
    types += [("inuse_objects", "count"), ("inuse_space", "bytes"),
              ("peak_objects", "count"), ("peak_space", "bytes")]
    prof = StackProfile(types, default_sample_type="inuse_space")
    names = FrameNamer()
    internal = _launcher_files(header.get("trim_runner", False))
    stacks: dict[int, list[Any]] = {}
    base = 0 if aggregated else 2
    width = len(types)

    def stack(rec: Any) -> list[Any]:
        key = rec.stack_id
        got = stacks.get(key)
        if got is None:
            raw = [(fn, f, ln) for fn, f, ln in rec.stack_trace()]
            if internal:
                if raw and raw[-1][1] == "<string>" and header.get("trim_runner"):
                    raw.pop()
                while raw and _is_launcher(raw[-1][1], internal):
                    raw.pop()
            # A stack of nothing but launcher frames (runpy reading the script, memray's own
            # start-up) keeps one frame that says so.
            got = stacks[key] = [names(f, int(ln), fn) for fn, f, ln in raw] or [LAUNCHER]
            if len(stacks) > cfg["max_samples"]:
                raise _Limit(f"the capture has more than {cfg['max_samples']} distinct stacks "
                             "(--max-samples)")
        return got

    def add(rec: Any, col: int) -> None:
        row = [0] * width
        row[col], row[col + 1] = int(rec.n_allocations), int(rec.size)
        prof.add(stack(rec), row)

    if not aggregated:
        for rec in reader.get_allocation_records():
            if memray.AllocatorType(rec.allocator).name not in ALLOCATORS_FREEING:
                add(rec, 0)
    for rec in reader.get_leaked_allocation_records(merge_threads=True):
        add(rec, base)
    for rec in reader.get_high_watermark_allocation_records(merge_threads=True):
        add(rec, base + 2)
    start = meta.start_time.timestamp()
    wall = max(0.0, (meta.end_time - meta.start_time).total_seconds())
    prof.time_nanos = int(header.get("time_nanos") or start * 1e9)
    wall_nanos = int(header.get("wall_nanos") or wall * 1e9)
    prof.duration_nanos = int(header.get("duration_nanos") or max(1, wall_nanos))
    if header.get("command"):
        prof.comments.append(f"memgate capture: {header['command']}")
    elif meta.command_line:
        prof.comments.append(f"memray: {meta.command_line}")
    prof.comments.append(f"wall time {wall_nanos / 1e9:.3f} s")
    prof.comments.append(
        f"memray {getattr(memray, '__version__', '')}: peak memory {meta.peak_memory} bytes, "
        f"{meta.total_allocations} allocations, python allocators "
        f"{'traced' if meta.trace_python_allocators else 'not traced (arenas only)'}")
    reader.close()
    return prof.encode()


def _launcher_files(with_runner: bool) -> tuple[str, ...]:
    """Files whose frames at the root of a stack are how the program was started."""
    import runpy

    dirs = []
    try:
        import memray

        dirs.append(os.path.dirname(os.path.realpath(memray.__file__)) + os.sep)
    except ImportError:  # pragma: no cover - the child only runs with memray
        pass
    files = [os.path.realpath(runpy.__file__), "<frozen runpy>"]
    if with_runner:
        from memgate.python import runner

        files.append(os.path.realpath(runner.__file__))
    return (*dirs, *files)


def _is_launcher(filename: str, internal: tuple[str, ...]) -> bool:
    real = os.path.realpath(filename) if filename.startswith(os.sep) else filename
    return any(real == i or (i.endswith(os.sep) and real.startswith(i)) for i in internal)
