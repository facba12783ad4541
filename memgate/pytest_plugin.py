"""memgate's pytest plugin: what each test retains, as a pprof profile ``memgate check`` gates.

Installed with memgate (entry point ``pytest11``) and **off** unless ``--memgate=DIR`` is
given: without it the plugin only declares its options and its marker, and no hook runs per
test. With it, for every test:

* tracemalloc starts when the test's call phase starts and stops after its teardown (after a
  ``gc.collect()``), so the profile holds exactly the blocks the test allocated and still held
  after its teardown: its **retained** memory (``inuse_objects``/``inuse_space``), per Python
  stack. Module- and session-scoped fixtures are set up before the call phase and are not
  charged to the test that happens to run first; first-use caches (imports, ``re``'s cache,
  ``functools.lru_cache``) are charged to the test that fills them, the same test in every
  run of the same suite;
* the highest traced memory between those two points is the test's **peak** (``peak_space``,
  a sample on the test's own frame);
* every function is named per test, ``module.function@<node id>``
  (``app.remember@tests/test_app.py::test_remember``), so that each finding of ``memgate
  check`` names the function and the test at once; every stack hangs under a root frame
  ``pytest:<node id>`` and carries a string label ``test`` with the node id (``go tool pprof
  -tagfocus``) (docs/python.md).

Stacks are cut at pytest's machinery (the innermost pluggy frame and the ``_pytest`` frames
under it); memory allocated by pytest itself, or by code outside the project's root directory
that pytest calls, is not attributed to the test.

``@pytest.mark.memgate(max_retained="1MiB", max_peak="50MiB")`` and the ini options
``memgate_max_retained``/``memgate_max_peak`` set limits checked after each test's teardown;
a test over its limit fails there (pytest reports it as an error at teardown) with a one-screen
message: the amounts and the top 5 functions.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Generator

    from memgate.python.pprof import PyFrame, StackProfile
    from memgate.python.tracemalloc_io import FrameNamer

#: Functions shown in a failure message.
TOP_N = 5
_INI_RETAINED = "memgate_max_retained"
_INI_PEAK = "memgate_max_peak"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memgate", "memory profiles for memgate check")
    group.addoption(
        "--memgate", metavar="DIR", dest="memgate_dir", default=None,
        help="Trace each test's allocations and write DIR/pytest.pb.gz, a pprof profile of "
             "the memory every test retained after its teardown, for `memgate check`. Off "
             "unless given.")
    group.addoption(
        "--memgate-frames", metavar="N", type=int, default=8, dest="memgate_frames",
        help="Frames kept per stack, from the allocating frame (default 8). tracemalloc's "
             "cost per allocation grows with the frames it walks, and pytest's own stacks "
             "are deep.")
    group.addoption(
        "--memgate-backend", choices=["tracemalloc", "memray"], default="tracemalloc",
        dest="memgate_backend",
        help="tracemalloc (default): retained memory and each test's peak. memray (pip "
             "install 'memgate[memray]'): also every allocation (alloc_*) and the "
             "high-water mark (peak_*) per function; slower.")
    group.addoption(
        "--memgate-duration", metavar="D", default=None, dest="memgate_duration",
        help="Record D (30s, 1m) as the profile's duration instead of the session's wall "
             "time, so that `memgate check` rates do not move with timing.")
    parser.addini(_INI_RETAINED, "Default limit on the memory a test retains after its "
                  "teardown (e.g. 1MiB); checked only with --memgate.", default="")
    parser.addini(_INI_PEAK, "Default limit on a test's peak traced memory (e.g. 100MiB); "
                  "checked only with --memgate.", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "memgate(max_retained=None, max_peak=None): limits (e.g. '1MiB') on the memory the "
        "test retains after its teardown and on its peak, checked under --memgate.")
    directory = config.getoption("memgate_dir", None)
    if not directory:
        return
    frames = config.getoption("memgate_frames")
    if not 1 <= frames <= 1000:
        raise pytest.UsageError("--memgate-frames must be between 1 and 1000")
    duration = config.getoption("memgate_duration")
    nominal = None
    if duration:
        from memgate.quantities import parse_duration

        try:
            nominal = parse_duration(duration)
        except ValueError as e:
            raise pytest.UsageError(f"--memgate-duration: {e}") from None
    defaults = MemoryLimits(_ini_amount(config, _INI_RETAINED), _ini_amount(config, _INI_PEAK),
                      "ini")
    backend = config.getoption("memgate_backend")
    if backend == "memray":
        import importlib.util

        if importlib.util.find_spec("memray") is None:
            raise pytest.UsageError("--memgate-backend=memray needs memray: "
                                    "pip install 'memgate[memray]'")
    worker = getattr(config, "workerinput", {}).get("workerid")
    name = f"pytest-{worker}.pb.gz" if worker else "pytest.pb.gz"
    config.pluginmanager.register(
        MemgatePlugin(config, os.path.join(directory, name), frames, nominal, defaults,
                      backend),
        "memgate-recorder")


def _amount(text: Any, where: str) -> float | None:
    if text is None or text == "":
        return None
    from memgate.quantities import parse_amount

    try:
        q = parse_amount(str(text))
    except ValueError as e:
        raise pytest.UsageError(f"{where}: {e}") from None
    if q.dimension != "bytes":
        raise pytest.UsageError(f"{where}: {text!r} is not an amount of bytes (e.g. 1MiB)")
    return q.value


def _ini_amount(config: pytest.Config, name: str) -> float | None:
    return _amount(config.getini(name), name)


@dataclass(frozen=True)
class MemoryLimits:
    """A test's bounds on what it may retain and its peak, in bytes (None: no bound)."""

    retained: float | None
    peak: float | None
    #: Where they come from, for the message: "marker" or "ini".
    origin: str


@dataclass(frozen=True)
class TestMemory:
    """What one test retained and its peak."""

    nodeid: str
    retained_bytes: int
    retained_objects: int
    peak_bytes: int
    #: (function, file:line, retained bytes) of the top functions (flat), largest first.
    top: tuple[tuple[str, str, int], ...]


class MemgatePlugin:
    """The active half of the plugin, registered only under ``--memgate``."""

    def __init__(self, config: pytest.Config, output: str, frames: int,
                 nominal_seconds: float | None, defaults: MemoryLimits,
                 backend: str = "tracemalloc") -> None:
        from memgate.python.pprof import StackProfile
        from memgate.python.tracemalloc_io import FrameNamer

        self.config = config
        self.output = output
        self.frames = frames
        self.nominal = nominal_seconds
        self.defaults = defaults
        self.backend = backend
        #: Column of the retained objects (bytes next to it) and of the per-test peak.
        if backend == "memray":
            types = [("alloc_objects", "count"), ("alloc_space", "bytes"),
                     ("inuse_objects", "count"), ("inuse_space", "bytes"),
                     ("peak_objects", "count"), ("peak_space", "bytes")]
            self._inuse_col = 2
        else:
            types = [("inuse_objects", "count"), ("inuse_space", "bytes"),
                     ("peak_space", "bytes")]
            self._inuse_col = 0
        self.profile: StackProfile = StackProfile(types, default_sample_type="inuse_space")
        # Modules are named relative to sys.path and the project's root directory: the same
        # names whether pytest runs as `pytest` (no project directory on sys.path) or as
        # `python -m pytest`.
        from memgate.python.names import FunctionNamer, import_roots

        self.namer: FrameNamer = FrameNamer(FunctionNamer(import_roots(
            [*__import__("sys").path, str(config.rootpath)])))
        self.started = time.time_ns()
        self.t0 = time.perf_counter_ns()
        self.root = os.path.realpath(str(config.rootpath)) + os.sep
        self._framework = _framework_dirs()
        self._outside: dict[str, bool] = {}
        self.results: dict[str, TestMemory] = {}
        self._tracing_for: str | None = None
        self._tracker: Any = None
        self._tmp: str | None = None

    # --- the measurement ------------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        self._tracing_for = item.nodeid if self._start() else None
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        yield
        if self._tracing_for != item.nodeid:
            return
        self._tracing_for = None
        measured = self._stop()
        if measured is not None:
            self.results[item.nodeid] = self._record(item, *measured)

    def _start(self) -> bool:
        """Start tracing; False when this test cannot be measured.

        Everything alive now is moved to the collector's permanent generation
        (``gc.freeze``), so that the ``gc.collect()`` after the teardown only looks at what
        the test created: a full collection of a large test process costs about 0.1 s, a
        cost per test that would dominate the plugin's overhead. ``_stop`` unfreezes.
        """
        import gc
        import tracemalloc

        if tracemalloc.is_tracing():
            # Someone else traces (python -X tracemalloc, a test of tracemalloc itself):
            # leave them alone and measure nothing for this test.
            return False
        if self.backend == "memray":
            import tempfile

            import memray

            if self._tmp is None:
                self._tmp = tempfile.mkdtemp(prefix="memgate-pytest-")
            path = os.path.join(self._tmp, "test.bin")
            if os.path.exists(path):
                os.unlink(path)
            self._tracker = memray.Tracker(path, native_traces=False,
                                           trace_python_allocators=True)
            try:
                self._tracker.__enter__()
            except Exception:  # noqa: BLE001 - another tracker is active (memray's own tests)
                self._tracker = None
                return False
            gc.freeze()
            return True
        gc.freeze()
        tracemalloc.start(self.frames)
        return True

    def _stop(self) -> tuple[list[tuple[int, int, int, Any]], int] | None:
        """Stop tracing after a garbage collection: the records ``(column, count, size,
        frames)`` and the test's peak; None when the test stopped tracing itself."""
        import gc

        if self.backend == "memray":
            tracker, self._tracker = self._tracker, None
            if tracker is None:
                return None
            gc.collect()
            gc.unfreeze()
            tracker.__exit__(None, None, None)
            return self._read_memray()
        import tracemalloc

        if not tracemalloc.is_tracing():
            gc.unfreeze()
            return None
        gc.collect()
        gc.unfreeze()
        snap = tracemalloc.take_snapshot()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        from memgate.python.tracemalloc_io import snapshot_traces

        return [(0, 1, size, raw) for size, raw in snapshot_traces(snap)], peak

    def _read_memray(self) -> tuple[list[tuple[int, int, int, Any]], int]:
        import memray

        from memgate.python.memray_io import ALLOCATORS_FREEING

        assert self._tmp is not None
        path = os.path.join(self._tmp, "test.bin")
        reader = memray.FileReader(path)
        stacks: dict[int, list[tuple[str, int, str]]] = {}

        def frames(rec: Any) -> list[tuple[str, int, str]]:
            got = stacks.get(rec.stack_id)
            if got is None:
                got = stacks[rec.stack_id] = [(f, int(ln), fn)
                                              for fn, f, ln in rec.stack_trace(self.frames)]
            return got

        out: list[tuple[int, int, int, Any]] = []
        freeing = {memray.AllocatorType[n] for n in ALLOCATORS_FREEING}
        for rec in reader.get_allocation_records():
            if rec.allocator not in freeing:
                out.append((0, int(rec.n_allocations), int(rec.size), frames(rec)))
        for rec in reader.get_leaked_allocation_records(merge_threads=True):
            out.append((2, int(rec.n_allocations), int(rec.size), frames(rec)))
        for rec in reader.get_high_watermark_allocation_records(merge_threads=True):
            out.append((4, int(rec.n_allocations), int(rec.size), frames(rec)))
        peak = int(reader.metadata.peak_memory)
        reader.close()
        os.unlink(path)
        return out, peak

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        if call.when != "teardown":
            return
        mem = self.results.get(item.nodeid)
        if mem is None:
            return
        report = outcome.get_result()
        message = self._over_limit(item, mem)
        if message and report.outcome == "passed":
            report.outcome = "failed"
            report.longrepr = message

    def _record(self, item: pytest.Item, records: list[tuple[int, int, int, Any]],
                peak: int) -> TestMemory:
        from memgate.python.pprof import PyFrame, clean

        nodeid = item.nodeid
        test_frame = PyFrame(clean(f"pytest:{nodeid}"), clean(str(item.path)), 0)
        label = (("test", clean(nodeid, 4096)),)
        width = len(self.profile.sample_types)
        grouped: dict[tuple[PyFrame, ...], list[int]] = {}
        for col, count, size, raw in records:
            stack = self._user_stack(raw)
            if not stack:
                continue
            key = tuple(self.namer(*fr) for fr in stack)
            g = grouped.get(key)
            if g is None:
                g = grouped[key] = [0] * width
            g[col] += count
            g[col + 1] += size
        flat: dict[tuple[str, str], int] = {}
        objects = total = 0
        col = self._inuse_col
        suffix = f"@{nodeid}"
        for frames, values in grouped.items():
            # Every function is named per test ("app.remember@tests/test_app.py::test_x"):
            # the gate reports functions, so a finding then says which test and which
            # function; a rule on "app.remember@*" still covers the function in every test.
            per_test = [PyFrame(clean(fr.function + suffix), fr.filename, fr.line,
                                fr.start_line) for fr in frames]
            self.profile.add([*per_test, test_frame], values, label)
            if values[col + 1]:
                objects += values[col]
                total += values[col + 1]
                where = f"{os.path.basename(frames[0].filename)}:{frames[0].line}"
                key2 = (frames[0].function, where)
                flat[key2] = flat.get(key2, 0) + values[col + 1]
        if self.backend != "memray":
            self.profile.add([test_frame], [0, 0, peak], label)
        top = sorted(((fn, where, v) for (fn, where), v in flat.items()),
                     key=lambda t: (-t[2], t[0]))[:TOP_N]
        return TestMemory(nodeid, total, objects, peak, tuple(top))

    def _user_stack(self, raw: Any) -> list[Any]:
        """The frames of the test's own code: leaf first, cut at pytest's machinery; empty
        when the block was allocated by pytest or by code outside the project that it
        called."""
        stack = list(raw)
        cut = False
        for k, fr in enumerate(stack):
            if self._is_pluggy(fr[0]):
                stack, cut = stack[:k], True
                break
        while stack and self._is_framework(stack[-1][0]):
            stack.pop()
        # A stack cut short by --memgate-frames never reaches pytest: it is the test's.
        if not stack or (cut and self._is_outside(stack[-1][0])):
            return []
        return stack

    def _is_pluggy(self, filename: str) -> bool:
        return f"{os.sep}pluggy{os.sep}" in filename

    def _is_framework(self, filename: str) -> bool:
        return filename.startswith(self._framework) or filename == __file__

    def _is_outside(self, filename: str) -> bool:
        got = self._outside.get(filename)
        if got is None:
            real = os.path.realpath(filename) if os.path.isabs(filename) else filename
            got = self._outside[filename] = (
                not real.startswith(self.root)
                or any(p in real for p in ("site-packages", "dist-packages")))
        return got

    # --- limits ---------------------------------------------------------------------------

    def _limits(self, item: pytest.Item) -> MemoryLimits:
        marker = item.get_closest_marker("memgate")
        if marker is None:
            return self.defaults
        unknown = set(marker.kwargs) - {"max_retained", "max_peak"}
        if unknown or marker.args:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.memgate takes max_retained= and max_peak= only")
        where = f"{item.nodeid}: @pytest.mark.memgate"
        retained = (_amount(marker.kwargs["max_retained"], where)
                    if "max_retained" in marker.kwargs else self.defaults.retained)
        peak = (_amount(marker.kwargs["max_peak"], where)
                if "max_peak" in marker.kwargs else self.defaults.peak)
        return MemoryLimits(retained, peak, "marker")

    def _over_limit(self, item: pytest.Item, mem: TestMemory) -> str | None:
        from memgate.quantities import format_amount

        limits = self._limits(item)
        problems = []
        if limits.retained is not None and mem.retained_bytes > limits.retained:
            blocks = "block" if mem.retained_objects == 1 else "blocks"
            problems.append(f"retained {format_amount(mem.retained_bytes, 'bytes')} "
                            f"({mem.retained_objects} {blocks}) after its teardown, more than "
                            f"max_retained {format_amount(limits.retained, 'bytes')}")
        if limits.peak is not None and mem.peak_bytes > limits.peak:
            problems.append(f"peaked at {format_amount(mem.peak_bytes, 'bytes')}, more than "
                            f"max_peak {format_amount(limits.peak, 'bytes')}")
        if not problems:
            return None
        return render_failure(mem, problems, limits.origin, self.output)

    # --- the profile ----------------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from memgate.errors import MemgateError
        from memgate.outputs import Output, write_outputs

        wall = time.perf_counter_ns() - self.t0
        self.profile.time_nanos = self.started
        self.profile.duration_nanos = int(self.nominal * 1e9) if self.nominal else max(1, wall)
        self.profile.comments.append(f"memgate pytest plugin: {len(self.results)} tests, "
                                     f"{self.backend} {self.frames} frames")
        if self._tmp is not None:
            import shutil

            shutil.rmtree(self._tmp, ignore_errors=True)
        self.profile.comments.append(f"wall time {wall / 1e9:.3f} s")
        os.makedirs(os.path.dirname(self.output) or ".", exist_ok=True)
        try:
            write_outputs([Output(self.output, self.profile.encode())])
        except MemgateError as e:
            raise pytest.UsageError(f"memgate: {e}") from None

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from memgate.quantities import format_amount

        total = sum(m.retained_bytes for m in self.results.values())
        terminalreporter.write_line(
            f"memgate: {len(self.results)} tests retained {format_amount(total, 'bytes')} in "
            f"all; profile: {self.output}")


def render_failure(mem: TestMemory, problems: list[str], origin: str, output: str) -> str:
    """The one-screen message of a test over its limit: what, the limit, the top functions."""
    from memgate.python.pprof import clean
    from memgate.quantities import format_amount

    lines = [f"memgate: {clean(mem.nodeid, 300)} " + "; ".join(problems) +
             f" (limit from the {origin})"]
    if mem.top:
        lines.append(f"top {len(mem.top)} functions by retained memory (flat):")
        for fn, where, size in mem.top:
            lines.append(f"  {format_amount(size, 'bytes'):>10}  {clean(fn, 120)}  "
                         f"{clean(where, 120)}")
    lines.append(f"profile of every test (written when the session ends): {output}")
    return "\n".join(lines)


def _framework_dirs() -> tuple[str, ...]:
    import _pytest
    import pluggy

    dirs = [os.path.dirname(_pytest.__file__), os.path.dirname(pluggy.__file__),
            os.path.dirname(pytest.__file__)]
    out = set()
    for d in dirs:
        out.add(d + os.sep)
        out.add(os.path.realpath(d) + os.sep)
    return tuple(sorted(out))
