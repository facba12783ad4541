"""The values a baseline store hands out and takes in: plain frozen dataclasses."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from memgate.baseline.fsops import read_store_file
from memgate.config import DEFAULT_CONFIG
from memgate.errors import BaselineError
from memgate.profile.limits import InputLimits


@dataclass(frozen=True)
class StoredProfile:
    """One profile of a baseline, as the manifest describes it."""

    path: Path
    sha256: str
    original_name: str
    #: Seconds the profile covers (``--duration`` or the profile's own); None: not known.
    duration_seconds: float | None
    #: ``((type, unit), ...)`` in the profile's column order.
    sample_types: tuple[tuple[str, str], ...]
    period: int
    period_type: tuple[str, str] = ("", "")
    #: Where the profile is in a remote store (``s3://...``); None in a local one.
    url: str | None = None
    #: The store the file belongs to: a symbolic link may not lead out of it.
    root: Path | None = field(default=None, compare=False, repr=False)

    def read_bytes(self, limits: InputLimits = DEFAULT_CONFIG.limits) -> bytes:
        """The stored bytes, checked against the manifest's sha256.

        The gate should read baseline profiles through this, so that a file changed after
        ``load`` (by hand, or by a concurrent update) is an error and not a silent comparison
        against something nobody reviewed.
        """
        try:
            data = read_store_file(self.path.parent, self.path.name,
                                    self.root or self.path.parent.parent,
                                    limits.max_decompressed_bytes)
        except OSError as e:
            raise BaselineError(f"cannot read: {e.strerror or e}", source=str(self.path)) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.sha256:
            raise BaselineError(f"checksum mismatch: manifest says sha256 {self.sha256}, the "
                                f"file has {actual}", source=str(self.path),
                                slug="baseline-checksum")
        return data


@dataclass(frozen=True)
class Baseline:
    """A loaded, checked baseline of one component."""

    component: str
    #: The directory the profiles are in: ``<root>/<component>`` (or, while an interrupted
    #: update awaits recovery, the complete previous version it left beside it).
    directory: Path
    #: The manifest as read (validated against the schema).
    manifest: dict[str, object]
    profiles: tuple[StoredProfile, ...]
    reason: str
    approved_by: str | None = None
    updated: str = ""
    #: The profiles' bytes as read (and checksummed) by :meth:`Store.load`, in the order of
    #: ``profiles``: one consistent version even if an update replaces it right afterwards.
    data: tuple[bytes, ...] = field(default=(), repr=False, compare=False)
    #: A remote store's baseline (memgate.baseline.remote): where its version is, and which version
    #: the pointer file in the repository names.
    url: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class ProfileInput:
    """A profile to store: its bytes and what the caller knows about them."""

    data: bytes
    #: Path or URL it came from (for messages).
    source: str
    #: Name recorded in the manifest (the file's base name, never a local absolute path).
    original_name: str
    #: Overrides the profile's own duration when set.
    duration_seconds: float | None = None
    #: Where ``duration_seconds`` comes from, for messages (``--duration``, ``report``).
    duration_source: str = "--duration"
    #: Where a profile from a continuous profiler came from (server, query, absolute range),
    #: recorded in the manifest so that the update can be reviewed and repeated.
    origin: dict[str, object] | None = None
