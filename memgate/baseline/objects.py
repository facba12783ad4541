"""The objects of a remote baseline store, through fsspec: read, write, list, lock.

What the remote store needs of a bucket, in one place: whole objects read (and cached: every
key but the lock names immutable content) and written, a *conditional write* that creates an
object only if it does not exist (S3's ``If-None-Match: *``; ``link(2)`` on a local file
system; a process-wide lock for ``memory://``, which only one process sees), and for backends
whose conditional writes memgate does not use (``gs://``, ``az://`` and every other fsspec
protocol, or any store with ``MEMGATE_STORE_LOCKING=lock-object``) a lock object instead
(:class:`ObjectLock`: write, wait, read back; stale after a TTL), which is only as safe as the
store's read-after-write consistency.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from memgate.errors import BaselineError

#: Protocols whose exclusive create memgate uses for the commit (see the module docstring).
CONDITIONAL = frozenset({"s3", "s3a", "file", "local", "memory"})
LOCKING_ENV = "MEMGATE_STORE_LOCKING"
_VERSION_RE = re.compile(r"(\d{10})\.json")
#: memory:// lives in this process only: a process-wide lock makes its create exclusive.
_MEMORY_LOCK = threading.Lock()


def redact(url: str) -> str:
    """The store URL without credentials (``s3://KEY:SECRET@bucket`` is possible in fsspec)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # a malformed URL (an unclosed "[" host): keep only what follows "@"
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[-1]}" if "@" in rest else url
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@")[-1]))


def env_float(name: str, default: float) -> float:
    """A non-negative number from the environment (a tuning knob), else ``default``."""
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value >= 0 else default


class ObjectStore:
    """The objects under one store URL (credentials never shown: :attr:`shown`)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.shown = redact(self.url)
        self.protocol = self.url.split("://", 1)[0].lower()
        forced = os.environ.get(LOCKING_ENV, "").strip().lower()
        self.locking = ("lock-object" if forced == "lock-object" or self.protocol not in
                        CONDITIONAL else "conditional")
        self._fs: Any = None
        self._base = ""
        #: Objects read or written by this store object. Every key under profiles/,
        #: manifests/ and versions/ names immutable content, so a cached copy never goes
        #: stale; an update that retries after a conflict re-reads only what is new.
        self._cache: dict[str, bytes] = {}

    def filesystem(self) -> Any:
        if self._fs is not None:
            return self._fs
        try:
            import fsspec  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            raise BaselineError("a remote baseline store needs fsspec: pip install "
                                "'memgate[remote]'", source=self.shown,
                                slug="remote-unavailable") from None
        kwargs: dict[str, Any] = {}
        if self.protocol not in ("file", "local", "memory"):
            # Every listing must be fresh: a cached one would hide a concurrent commit.
            kwargs = {"use_listings_cache": False}
        if self.protocol in ("s3", "s3a"):
            # Small objects only: one GET each, not a HEAD for the size first.
            kwargs["max_concurrency"] = 1
        try:
            fs, path = fsspec.core.url_to_fs(self.url, **kwargs)
        except ImportError as e:
            raise BaselineError(f"the {self.protocol}:// backend of fsspec is not installed "
                                f"({line(e)}); pip install 'memgate[remote]' installs s3fs, "
                                "gcsfs or adlfs are separate", source=self.shown,
                                slug="remote-unavailable") from None
        except Exception as e:  # noqa: BLE001 - any backend's way of saying "bad URL"
            raise BaselineError(f"cannot open the store: {line(e)}", source=self.shown,
                                slug="remote-unavailable") from None
        self._fs, self._base = fs, str(path).rstrip("/")
        return fs

    def key(self, component: str, *parts: str) -> str:
        self.filesystem()
        return "/".join([self._base, component, *parts])

    def where(self, key: str) -> str:
        """A key as the user can find it: the store URL and the path below it."""
        rel = key[len(self._base):].lstrip("/") if key.startswith(self._base) else key
        return f"{self.shown}/{rel}"

    def _io(self, key: str, action: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except FileNotFoundError:
            raise
        except FileExistsError:
            raise
        except BaselineError:
            raise
        except Exception as e:  # noqa: BLE001 - botocore, aiohttp, OSError ...: one line
            if _precondition_failed(e):
                raise FileExistsError(key) from None
            raise BaselineError(f"cannot {action}: {line(e)}", source=self.where(key),
                                slug="remote-io") from None

    def cat(self, key: str) -> bytes:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        fs = self.filesystem()
        data = bytes(self._io(key, "read", lambda: fs.cat_file(key)))
        if not key.endswith("/lock.json"):
            self._cache[key] = data
        return data

    def cached(self, key: str) -> bool:
        """Whether this object was read or written already (immutable: no need to again)."""
        return key in self._cache

    def exists(self, key: str) -> bool:
        fs = self.filesystem()
        return bool(self._io(key, "look up", lambda: fs.exists(key)))

    def put(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        """Write one object whole; ``exclusive``: only if it does not exist (FileExistsError
        otherwise), atomically where ``self.locking`` is ``conditional``."""
        fs = self.filesystem()
        if self.protocol in ("file", "local"):
            self._io(key, "write", lambda: _put_local(key, data, exclusive))
        elif self.protocol == "memory":
            with _MEMORY_LOCK:
                if exclusive and fs.exists(key):
                    raise FileExistsError(key)
                self._io(key, "write", lambda: fs.pipe_file(key, data))
        elif exclusive and self.locking == "conditional":
            self._io(key, "write", lambda: fs.pipe_file(key, data, mode="create"))
        else:
            # Under the lock object: nobody else writes this component's versions now.
            if exclusive and self.exists(key):
                raise FileExistsError(key)
            self._io(key, "write", lambda: fs.pipe_file(key, data))
        if not key.endswith("/lock.json"):
            self._cache[key] = data

    def delete(self, key: str) -> None:
        self._cache.pop(key, None)
        fs = self.filesystem()
        with contextlib.suppress(FileNotFoundError):
            self._io(key, "delete", lambda: fs.rm(key))

    def versions(self, component: str) -> list[int]:
        fs = self.filesystem()
        key = self.key(component, "versions")
        with contextlib.suppress(Exception):
            fs.invalidate_cache(key)
        try:
            names = self._io(key, "list", lambda: fs.ls(key, detail=False))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            m = _VERSION_RE.fullmatch(str(name).rstrip("/").rsplit("/", 1)[-1])
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    # -- pointer files --------------------------------------------------------------------


class ObjectLock:
    """The writer lock of backends without conditional writes: a lock object with a random
    token, written, left to settle and read back; older than its TTL it is stale."""

    def __init__(self, store: ObjectStore, component: str) -> None:
        self.store, self.component = store, component
        self.key = store.key(component, "lock.json")
        self.token = secrets.token_hex(16)
        self.ttl = env_float("MEMGATE_STORE_LOCK_TTL", 600.0)
        self.settle = env_float("MEMGATE_STORE_LOCK_SETTLE", 0.2)
        self.wait = env_float("MEMGATE_STORE_LOCK_WAIT", 300.0)

    def _read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.store.cat(self.key))
        except FileNotFoundError:
            return None
        except (ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}

    def _stale(self, info: dict[str, Any]) -> bool:
        since = info.get("since")
        return not isinstance(since, (int, float)) or time.time() - since > self.ttl

    def break_stale(self) -> bool:
        info = self._read()
        if info is not None and self._stale(info):
            self.store.delete(self.key)
            return True
        return False

    def __enter__(self) -> None:
        deadline = time.monotonic() + self.wait
        while True:
            info = self._read()
            if info is not None and self._stale(info):
                self.store.delete(self.key)
                info = None
            if info is None:
                self.store.put(self.key, json.dumps({
                    "token": self.token, "since": time.time(), "pid": os.getpid(),
                    "host": socket.gethostname()}).encode())
                time.sleep(self.settle)
                mine = self._read()
                if mine is not None and mine.get("token") == self.token:
                    return
            if time.monotonic() > deadline:
                holder = info or {}
                raise BaselineError(
                    f"baseline {self.component} is being updated by another process (lock "
                    f"object {self.store.where(self.key)}, held by pid {holder.get('pid')} on "
                    f"host {holder.get('host')}); try again when it has finished",
                    slug="baseline-locked")
            time.sleep(random.uniform(0.01, 0.1))

    def __exit__(self, *exc: object) -> None:
        info = self._read()
        if info is not None and info.get("token") == self.token:
            self.store.delete(self.key)



def _put_local(path: str, data: bytes, exclusive: bool) -> None:
    """A whole file or none: written beside the target, then renamed (or, ``exclusive``,
    hard-linked, which fails if the target exists: the conditional write of a file system)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{secrets.token_hex(8)}")
    with open(tmp, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _precondition_failed(e: BaseException) -> bool:
    """S3's answer to a lost ``If-None-Match: *`` race (412 PreconditionFailed, or 409
    ConditionalRequestConflict), however the backend wraps it."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        text = f"{type(cur).__name__} {cur}"
        if "PreconditionFailed" in text or "ConditionalRequestConflict" in text or \
                "412" in text.split("(")[0]:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def line(e: BaseException) -> str:
    """An exception of any backend as one short line."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]
