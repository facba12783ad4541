"""`python -m memgate` runs the command-line interface."""

from __future__ import annotations

from memgate.cli import entry

if __name__ == "__main__":
    entry()
