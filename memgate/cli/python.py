"""``memgate capture`` and ``memgate convert``: pprof profiles from Python programs.

Kept apart from the gate's own commands, which do not import them. Docs: docs/python.md.
"""

from __future__ import annotations

import sys

import click

from memgate.cli.common import (
    CONTEXT_SETTINGS,
    _duration,
    command_config,
    duration_option,
    handle_errors,
    max_decompressed_option,
)
from memgate.errors import EXIT_ERROR


@click.command(
    "capture",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                      **CONTEXT_SETTINGS},
)
@click.option("--output", "-o", "output", required=True, metavar="FILE",
              help="Where to write the profile (gzip pprof), when the command has finished.")
@click.option("--backend", type=click.Choice(["tracemalloc", "memray"]), default="tracemalloc",
              show_default=True,
              help="tracemalloc (standard library): in-use memory of Python allocations only. "
                   "memray (pip install 'memgate[memray]'): also every allocation made and "
                   "freed (alloc_*) and the high-water mark (peak_*).")
@click.option("--frames", type=click.IntRange(1, 1000), default=128, show_default=True,
              metavar="N", help="Frames kept per stack, counted from the allocating frame "
                                "(tracemalloc).")
@click.option("--snapshot-at", type=click.Choice(["exit", "mark"]), default="exit",
              show_default=True,
              help="exit: in-use memory when the command's main code returns. mark: at the "
                   "last memgate.capture.snapshot() call or SIGUSR1 (tracemalloc only).")
@duration_option("--duration",
                 help="Record D (30s, 1m) as the profile's duration instead of the measured wall "
                      "time: for a fixed workload, so that timing jitter does not move the "
                      "per-second rates `memgate check` compares.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED,
                metavar="-- COMMAND [ARGS]...")
@handle_errors
def capture(output: str, backend: str, frames: int, snapshot_at: str, duration: str | None,
            command: tuple[str, ...]) -> None:
    """Run a Python COMMAND with allocation tracing and write its pprof profile.

    \b
      memgate capture -o app.pb.gz -- python app.py --flag
      memgate capture -o tests.pb.gz --duration 1m -- pytest -q tests/
      memgate capture -o job.pb.gz --backend memray -- python -m mypkg.job

    COMMAND runs under the Python that runs memgate: `python SCRIPT`, `python -m MODULE`,
    `python -c CODE`, a .py file, or a console script whose #! line names a Python. Anything
    else is a usage error (exit 2). memgate exits with the command's exit status; the profile
    is written when the command ends, also when it fails, and not at all when it is killed.
    Child processes the command starts are not traced. See docs/python.md.
    """
    from memgate.outputs import Output, check_outputs, write_outputs
    from memgate.python import capture as cap
    from memgate.python.convert import check
    from memgate.python.memray_io import memray_available

    if backend == "memray" and snapshot_at == "mark":
        raise click.UsageError("--snapshot-at mark needs --backend tracemalloc")
    if backend == "memray" and not memray_available():
        raise click.UsageError("--backend memray needs memray: pip install 'memgate[memray]'")
    seconds = _duration(duration, "--duration")
    try:
        target = cap.resolve(command)
    except cap.NotPython as e:
        raise click.UsageError(str(e)) from None
    check_outputs([output], [target.target] if target.kind == "script" else [])
    if target.other_interpreter:
        click.echo(f"memgate: note: {cap.command_line(command[:1])} names "
                   f"{target.other_interpreter} in its #! line; it runs under "
                   f"{sys.executable}, the Python memgate runs under", err=True)
    result = cap.run_capture(target, command, backend=backend, frames=frames,
                             snapshot_at=snapshot_at,
                             duration_nanos=int(seconds * 1e9) if seconds else None)
    if result.profile is None:
        click.echo(f"memgate: {cap.command_line(command)[:200]}: {result.problem}", err=True)
        sys.exit(result.exit_code or EXIT_ERROR)
    check(result.profile, output, command_config())
    write_outputs([Output(output, result.profile)])
    sys.exit(result.exit_code)


@click.command("convert", context_settings=CONTEXT_SETTINGS)
@click.argument("input_path", metavar="INPUT")
@click.option("--output", "-o", "output", required=True, metavar="FILE",
              help="Where to write the pprof profile (gzip).")
@max_decompressed_option
@handle_errors
def convert(input_path: str, output: str) -> None:
    """Convert a Python tracer's file to a pprof profile.

    \b
    INPUT is recognised by its content:
      a memray capture (memray run -o app.bin ...; needs memray:
        pip install 'memgate[memray]'): alloc_* (every allocation), inuse_*
        (not freed when tracking ended) and peak_* (at the high-water mark);
      a pickled tracemalloc.Snapshot (snapshot.dump(FILE)): inuse_*.
    Functions are named module.QualifiedName (docs/python.md).
    """
    from memgate.outputs import Output, check_outputs, write_outputs
    from memgate.python.convert import convert as run

    check_outputs([output], [input_path])
    data = run(input_path, command_config())
    write_outputs([Output(output, data)])
    click.echo(f"memgate: wrote {output}", err=True)

