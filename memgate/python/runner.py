"""The child side of ``memgate capture``: run the target under a tracer, write its profile.

``memgate capture`` starts ``python [interpreter options] -c BOOTSTRAP`` with its settings in
``$MEMGATE_CAPTURE`` (JSON). This module then makes the interpreter look as it would for the
target (``sys.argv``, ``sys.path[0]``, ``__main__``), starts tracemalloc (or a memray tracker),
runs the script, module or code, takes the snapshot when it returns (or uses the last mark),
stops tracing, and writes the profile to the private path the parent gave. The target's exit
status becomes the process's, as Python would set it.

The runner's own frames (the bootstrap, this module, runpy) are cut from the root of every
stack, so that profiles show the program, not how it was started.
"""

from __future__ import annotations

import io
import json
import os
import runpy
import sys
import time
import traceback
from typing import Any

#: The environment variable the parent passes the settings in.
CONFIG_ENV = "MEMGATE_CAPTURE"

#: Set while a capture runs in this process (memgate.capture.snapshot() marks through it).
_active: _Capture | None = None


class _Capture:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.marks = 0
        self.marked: Any = None

    def mark(self) -> bool:
        import tracemalloc

        if self.cfg["snapshot_at"] != "mark" or not tracemalloc.is_tracing():
            return False
        self.marked = None  # free the previous mark's traces before taking the next
        self.marked = tracemalloc.take_snapshot()
        self.marks += 1
        return True


def _internal_files() -> set[str]:
    """The files of the frames that start the target: this module and runpy (which 3.11+
    runs frozen, as ``<frozen runpy>``)."""
    return {os.path.realpath(__file__), runpy.__file__, os.path.realpath(runpy.__file__),
            "<frozen runpy>"}


def trim_root(frames: list[tuple[str, int]], internal: set[str]) -> list[tuple[str, int]]:
    """Drop the bootstrap (``<string>``, the outermost frame) and the runner's and runpy's
    frames from the root end of a leaf-first stack."""
    out = list(frames)
    if out and out[-1][0] == "<string>":
        out.pop()
    while out and (out[-1][0] in internal or (out[-1][0].startswith(os.sep)
                                              and os.path.realpath(out[-1][0]) in internal)):
        out.pop()
    return out


def _exit_code(e: SystemExit) -> int:
    """The status ``python`` exits with for this SystemExit (a message is printed, status 1)."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _run_target(cfg: dict[str, Any]) -> int:
    """Run the target as ``python`` would; its exit status."""
    kind, target, args = cfg["kind"], cfg["target"], cfg["args"]
    try:
        if kind == "script" and os.path.isfile(target):
            # As `python SCRIPT` does, in the real __main__ module: its globals live until
            # the interpreter ends (runpy.run_path's temporary module would free them on
            # SystemExit, before the snapshot).
            sys.argv = [target, *args]
            with io.open_code(target) as fh:
                source = fh.read()
            main = sys.modules["__main__"]
            main.__dict__.update(__file__=target, __cached__=None, __spec__=None,
                                 __package__=None, __doc__=None)
            exec(compile(source, target, "exec", dont_inherit=True), main.__dict__)
        elif kind == "script":  # a directory or zip file with __main__.py
            sys.argv = [target, *args]
            runpy.run_path(target, run_name="__main__")
        elif kind == "module":
            sys.argv = [target, *args]  # run_module sets argv[0] to the module's file
            runpy._run_module_as_main(target, alter_argv=True)  # type: ignore[attr-defined]
        else:
            sys.argv = ["-c", *args]
            # So that the profile names the code's functions (linecache is where the namer
            # finds source), as tracebacks of -c code cannot.
            import linecache

            linecache.cache["<string>"] = (len(target), None, target.splitlines(True),
                                           "<string>")
            main = sys.modules["__main__"]
            code = compile(target, "<string>", "exec")
            exec(code, main.__dict__)
    except SystemExit as e:
        return _exit_code(e)
    except KeyboardInterrupt:
        traceback.print_exc()
        return 130
    except BaseException:  # noqa: BLE001 - the target's uncaught exception, as Python shows it
        sys.excepthook(*sys.exc_info())
        return 1
    return 0


def _fix_path(cfg: dict[str, Any]) -> None:
    """sys.path as ``python SCRIPT`` / ``-m`` / ``-c`` would have it."""
    if sys.path and sys.path[0] == cfg["memgate_root"]:
        sys.path.pop(0)
    if getattr(sys.flags, "safe_path", False):  # -P / -I (3.11+)
        return
    first = {"script": os.path.dirname(os.path.realpath(cfg["target"])),
             "module": os.getcwd(), "code": ""}[cfg["kind"]]
    if sys.path and sys.path[0] == "":
        sys.path[0] = first
    else:
        sys.path.insert(0, first)


def main() -> None:
    global _active
    cfg = json.loads(os.environ.pop(CONFIG_ENV))
    _fix_path(cfg)
    started = time.time_ns()
    t0 = time.perf_counter_ns()
    if cfg["backend"] == "memray":
        import memray

        tracker = memray.Tracker(cfg["out"] + ".bin", native_traces=False,
                                 trace_python_allocators=True, follow_fork=False)
        with tracker:
            code = _run_target(cfg)
        wall = time.perf_counter_ns() - t0
        _write_meta(cfg, started, wall, marks=0, peak=0)
        sys.stdout.flush()
        sys.exit(code)

    # What runpy imports on first use is the runner's cost, not the program's.
    import importlib.machinery  # noqa: F401
    import pkgutil  # noqa: F401
    import tracemalloc

    _active = _Capture(cfg)
    if cfg["snapshot_at"] == "mark" and hasattr(__import__("signal"), "SIGUSR1"):
        import signal

        signal.signal(signal.SIGUSR1, lambda *_: _active.mark() if _active else None)
    tracemalloc.start(cfg["frames"])
    try:
        code = _run_target(cfg)
        snap = _active.marked if cfg["snapshot_at"] == "mark" else tracemalloc.take_snapshot()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    wall = time.perf_counter_ns() - t0
    marks = _active.marks
    _active = None
    if snap is not None:
        _write_tracemalloc(cfg, snap, started, wall, peak)
    _write_meta(cfg, started, wall, marks=marks, peak=peak)
    sys.exit(code)


def _write_meta(cfg: dict[str, Any], started: int, wall: int, *, marks: int, peak: int) -> None:
    tmp = cfg["out"] + ".meta.part"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"time_nanos": started, "wall_nanos": wall, "marks": marks, "peak": peak}, fh)
    os.replace(tmp, cfg["out"] + ".meta")


def header(prof: Any, cfg: dict[str, Any], started: int, wall: int) -> None:
    """Time, duration (the wall time, or the nominal ``--duration``) and the command line."""
    prof.time_nanos = started
    prof.duration_nanos = cfg.get("duration_nanos") or max(1, wall)
    prof.comments.append(f"memgate capture: {cfg['command']}")
    prof.comments.append(f"wall time {wall / 1e9:.3f} s")


def _write_tracemalloc(cfg: dict[str, Any], snap: Any, started: int, wall: int,
                       peak: int) -> None:
    from memgate.python.pprof import StackProfile
    from memgate.python.tracemalloc_io import INUSE_TYPES, FrameNamer, add_traces, snapshot_traces

    internal = _internal_files()
    prof = StackProfile(INUSE_TYPES, default_sample_type="inuse_space")
    # Blocks whose whole stack is the runner's (its own bookkeeping) are not the program's.
    traces = [(size, stack) for size, frames in snapshot_traces(snap)
              if (stack := trim_root(list(frames), internal))]
    add_traces(prof, traces, FrameNamer())
    header(prof, cfg, started, wall)
    prof.comments.append(f"tracemalloc, {cfg['frames']} frames; peak of traced memory "
                         f"{peak} bytes")
    tmp = cfg["out"] + ".part"
    with open(tmp, "wb") as fh:
        fh.write(prof.encode())
    os.replace(tmp, cfg["out"])
