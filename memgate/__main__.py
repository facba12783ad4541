"""`python -m memgate` runs the command-line interface."""

from __future__ import annotations

from memgate.cli import main

if __name__ == "__main__":
    main()
