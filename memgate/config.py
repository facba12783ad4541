"""The configuration of one run: input limits, fetch options and the run budget.

The command line and the GitHub Action build one :class:`Config` at the start of a command,
from the environment and then the command's flags, and pass it down to whatever reads or
fetches profiles (the baseline store included). Nothing below them reads these settings from
the environment or from module-level state, so that two runs in one process (tests, embedders)
cannot see each other's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from memgate.profile.fetch_options import FetchOptions
from memgate.profile.limits import InputLimits, RunBudget


@dataclass(frozen=True)
class Config:
    """One run's settings. ``Config()`` is the defaults, ignoring the environment, and
    counts no run budget."""

    limits: InputLimits = InputLimits()
    fetch: FetchOptions = FetchOptions()
    #: What the run has decoded so far (``--max-total``); None: not counted. Mutable, the one
    #: part of a run's configuration that is state: shared by the copies ``with_*`` make.
    budget: RunBudget | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """The defaults, then ``environ``'s variables (``MEMGATE_MAX_*``,
        ``$MEMGATE_HTTP_HEADERS``), with a new run budget."""
        return cls(InputLimits.from_env(environ), FetchOptions.from_env(environ), RunBudget())

    def with_limits(self, **values: int) -> Config:
        """These input limits changed (``max_samples=10``: the flags of a command)."""
        return replace(self, limits=replace(self.limits, **values))

    def with_fetch(self, **values: Any) -> Config:
        """These fetch options changed (``timeout=5.0``, ``headers=(...)``)."""
        return replace(self, fetch=replace(self.fetch, **values))

    def restart_budget(self) -> None:
        """Forget what the run decoded so far, if it counts (see :meth:`RunBudget.restart`)."""
        if self.budget is not None:
            self.budget.restart()


#: The defaults: for library callers that give no configuration.
DEFAULT_CONFIG = Config()
