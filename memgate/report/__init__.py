"""Reports: one report object per command, several renderers over it."""

from __future__ import annotations
