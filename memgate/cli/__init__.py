"""The ``memgate`` command line: the top-level group and the console script.

Each command group lives in its own module (:mod:`memgate.cli.inspect`: ``top``, ``fetch``;
:mod:`memgate.cli.check`: ``check``, ``diff``; :mod:`memgate.cli.policy`,
:mod:`memgate.cli.baseline`, :mod:`memgate.cli.report`, :mod:`memgate.cli.python`), on what
they share in :mod:`memgate.cli.common`; this module only assembles them. The modules keep
their heavy imports inside the commands, so that ``memgate --help`` and small commands start
fast.
"""

from __future__ import annotations

import click

from memgate import __version__
from memgate.cli import baseline, check, inspect, policy, python, report
from memgate.cli.common import CONTEXT_SETTINGS


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="memgate")
def main() -> None:
    """memgate: a CI regression gate for memory profiles (pprof).

    \b
    Exit codes: 0 ok/pass, 1 the gate failed, 2 usage error, 3 bad input or
    tool error, 130 interrupted.
    """


for _command in (inspect.top, inspect.fetch_cmd, check.check, check.diff, policy.policy,
                 baseline.baseline, report.report, python.capture, python.convert):
    main.add_command(_command)


def entry() -> None:
    """The ``memgate`` console script and ``python -m memgate``: the command-line process.

    Only here, not in :func:`main` (which tests and embedders call in their own process), is
    the allocator tuned for memgate (memgate/allocator.py).
    """
    from memgate.allocator import keep_freed_memory

    keep_freed_memory()
    main()


