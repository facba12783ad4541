"""Pointer files: the part of a remote baseline that stays in the repository, for review.

``<pointers>/<component>.remote.json`` names the remote version the gate uses, the sha256 of
its manifest and a copy of that manifest (reason, sources, per-function summary), so that a
pull request that changes a baseline shows what changes (docs/baselines.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, cast

from memgate.baseline.manifest import render_manifest
from memgate.baseline.objects import line
from memgate.errors import BaselineError

POINTER_SUFFIX: Final = ".remote.json"
POINTER_FORMAT: Final = 1
SHA_RE: Final = re.compile(r"[0-9a-f]{64}")


def pointer_path(root: Path, component: str) -> Path:
    """Where the pointer file of ``component`` is, in the pointer directory ``root``."""
    return root / f"{component}{POINTER_SUFFIX}"


def read_pointer(path: Path, component: str) -> dict[str, Any] | None:
    """The pointer file of ``component``, checked; None if there is none."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BaselineError(f"cannot read the pointer file: {line(e)}", source=str(path),
                            slug="baseline-invalid") from None
    problem = None
    if not isinstance(data, dict):
        problem = "must hold a JSON object"
    elif data.get("format") != POINTER_FORMAT or isinstance(data.get("format"), bool):
        problem = f"has format {data.get('format')!r}; this memgate reads {POINTER_FORMAT}"
    elif data.get("component") != component:
        problem = f"is for component {data.get('component')!r}, not {component!r}"
    elif not isinstance(data.get("version"), int) or isinstance(data["version"], bool) \
            or data["version"] < 1:
        problem = "\"version\" must be a positive integer"
    elif not isinstance(data.get("manifest_sha256"), str) or \
            not SHA_RE.fullmatch(data["manifest_sha256"]):
        problem = "\"manifest_sha256\" must be 64 lowercase hex digits"
    elif not isinstance(data.get("manifest"), dict):
        problem = "\"manifest\" must be the manifest (an object)"
    if problem:
        raise BaselineError(f"invalid pointer file: it {problem}", source=str(path),
                            slug="baseline-invalid")
    return cast(dict[str, Any], data)


def write_pointer(root: Path, component: str, store: str, version: int, sha: str,
                  manifest: dict[str, object]) -> None:
    """Write the pointer atomically; of concurrent writers in one checkout the highest
    version stays (never an older one over a newer one)."""
    doc = {"format": POINTER_FORMAT, "component": component, "store": store,
           "version": version, "manifest_sha256": sha, "manifest": manifest}
    path = pointer_path(root, component)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _dir_lock(root):
            try:
                old = read_pointer(path, component)
            except BaselineError:
                old = None
            if old is not None and old.get("store") == store and int(old["version"]) > version:
                return
            tmp = root / f".{component}.remote-{secrets.token_hex(8)}"
            try:
                with open(tmp, "xb") as f:
                    f.write(render_manifest(doc).encode("utf-8"))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
    except OSError as e:
        raise BaselineError(f"cannot write the pointer file: {e.strerror or e}",
                            source=str(path)) from None


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    """A blocking ``flock`` on the pointer directory itself (no lock file left behind)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

