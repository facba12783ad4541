"""``memgate report ...``: tools over JSON reports written by ``memgate check``."""

from __future__ import annotations

import click


@click.group("report")
def report() -> None:
    """Work with JSON reports of `memgate check` (e.g. merge a CI matrix's reports)."""
