"""Where a profile's duration comes from: one order of precedence for every caller.

``check`` resolves the durations of both of its sides and the baseline store resolves those of
the profiles it stores; both go through :func:`resolve_duration`, so that a baseline created by
``update`` and one accepted from a check's report get the same duration for the same profile.
A module of its own because the store and the check both need it and neither may import the
other (``checkrun`` opens the store).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DurationSources", "resolve_duration"]


@dataclass(frozen=True)
class DurationSources:
    """Where durations may come from, in order of precedence (after any per-profile one)."""

    flag: float | None = None
    policy: float | None = None


def resolve_duration(
    own: float | None,
    *,
    first: float | None = None,
    first_source: str = "--duration",
    then: DurationSources | None = None,
    stored: float | None = None,
) -> tuple[float | None, str]:
    """The duration of one profile and where it came from (``"none"``: no source has one).

    The one place that orders the sources, for ``check``'s two sides and for the baseline
    store (``baseline update``): ``first`` (a flag, or the duration a report recorded), the
    duration recorded in the store, the profile's own ``duration_nanos`` (``own``), then
    ``then.flag`` and ``then.policy`` (the policy's ``components.<name>.duration``). A
    baseline created by ``update`` and one accepted from a check's report therefore get the
    same duration for the same profile, and their manifests the same units.
    """
    if first is not None:
        return first, first_source
    if stored:
        return stored, "store"
    if own:
        return own, "profile"
    if then is not None and then.flag is not None:
        return then.flag, "--duration"
    if then is not None and then.policy is not None:
        return then.policy, "policy"
    return None, "none"
