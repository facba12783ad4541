"""The baseline store: reference profiles per component in ``baselines/``, changed only on purpose.

A gate is only as good as what it compares against, so baselines live in the user's repository
and change only through a commit that reviewers see, with the reason written down. The layout
is meant to be read in a pull-request diff::

    baselines/
      <component>/
        manifest.json          # reason, who approved, per-profile metadata, top-function summary
        <sha256[:16]>.pb.gz    # the profiles themselves, gzip pprof, named by content hash

Atomicity (docs/baselines.md explains it for users). A new version of ``<component>/`` is
written completely beside the old one as ``.<component>.new-<token>/`` (profiles, then the
manifest, each fsynced, then the directory), and switched in with two renames::

    <component>            -> .<component>.old-<token>      (1)
    .<component>.new-<token> -> <component>                 (2: the commit point)
    .<component>.old-<token> -> .<component>.trash-<token>  (3), then deleted

A ``.old-`` directory is only ever made by renaming a committed baseline and is renamed to
``.trash-`` before anything in it is deleted, so it is always complete. The one moment where
``<component>/`` does not exist is between (1) and (2); readers then use the single
``.<component>.old-*`` (the update did not commit, so the old baseline is in effect) and never
write anything. The next writer (``update``, ``remove``, ``recover``, all under the lock)
renames it back and deletes leftovers before it starts, so at most one ``.old-`` directory of
a component can exist while ``<component>/`` is missing.

Locking: writers of one component hold ``fcntl.flock`` on ``.<component>.lock``. The kernel
drops the lock when its process dies, so a killed update never leaves a stale lock behind; a
second writer fails at once instead of waiting, and the lock file is deleted on release.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from memgate import fs
from memgate.baseline.fsops import (
    DirReader,
    Lock,
    fsync_dir,
    git_commit,
    is_locked,
    now,
    rmtree,
    step,
    swap_in,
)
from memgate.baseline.inputs import (
    check_reason,
    check_replaces,
    original_name,
    prepare,
    read_inputs,
)
from memgate.baseline.inspect import Retry, check_version, read_manifest
from memgate.baseline.manifest import (
    build_manifest,
    profile_entry,
    render_manifest,
    summarize,
)
from memgate.baseline.model import Baseline, ProfileInput
from memgate.baseline.names import TEMP_RE, new_token, validate_component_name
from memgate.config import DEFAULT_CONFIG, Config
from memgate.errors import BaselineError
from memgate.profile.model import Profile
from memgate.profile.source import read_bytes
from memgate.report.reading import read_candidates

#: How often a reader starts over when concurrent updates keep replacing what it reads.
_READ_ATTEMPTS: Final = 50
_UPDATE_HINT: Final = ("create one with `memgate baseline update --component {c} PROFILE... "
                       "--reason TEXT`")


class Store:
    """A directory of baselines, one subdirectory per component.

    Read-only operations (:meth:`components`, :meth:`exists`, :meth:`load`, :meth:`verify`,
    :meth:`notes`) never write, not even a lock file: ``check`` runs them in CI on a checkout
    that must stay clean. Writers (:meth:`update`, :meth:`accept`, :meth:`remove`,
    :meth:`recover`) hold the component's lock.
    """

    def __init__(self, root: Path | str, config: Config = DEFAULT_CONFIG) -> None:
        self.root = Path(root)
        #: The run's input limits, fetch options and budget, for every profile read.
        self.config = config

    # -- reading --------------------------------------------------------------------------

    def _scan(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.root) as it:
                return sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise BaselineError("is not a directory", source=str(self.root)) from None
        except OSError as e:
            raise BaselineError(f"cannot read: {e.strerror or e}", source=str(self.root)) from None

    def _temps(self, component: str) -> list[tuple[str, Path]]:
        """``(kind, path)`` of the temporary entries of one component, sorted by name."""
        out: list[tuple[str, Path]] = []
        for e in self._scan():
            m = TEMP_RE.fullmatch(e.name)
            if m and m.group("name") == component:
                out.append((m.group("kind"), Path(e.path)))
        return out

    def components(self) -> list[str]:
        """Names of the components that have a baseline, sorted."""
        names: set[str] = set()
        for e in self._scan():
            m = TEMP_RE.fullmatch(e.name)
            if m is None and not e.name.startswith(".") and e.is_dir():
                name = e.name
            elif m is not None and m.group("kind") == "old":
                name = m.group("name")
            else:
                continue
            try:
                validate_component_name(name)
            except BaselineError:
                continue
            if self._resolve(name) is not None:
                names.add(name)
        return sorted(names)

    def exists(self, component: str) -> bool:
        return self._resolve(validate_component_name(component)) is not None

    def _resolve(self, component: str) -> Path | None:
        """The directory holding the component's baseline in effect, or None.

        ``<component>/`` if it exists; otherwise the single complete ``.old-`` directory an
        interrupted update left (see the module docstring); otherwise there is no baseline.
        """
        main = self.root / component
        for _ in range(_READ_ATTEMPTS):
            if os.path.lexists(main):
                return main
            olds = [p for kind, p in self._temps(component) if kind == "old"]
            if len(olds) == 1:
                return olds[0]
            if len(olds) > 1:
                raise self._resolve_error(component, olds)
            if not os.path.lexists(main):
                return None
            # An update committed between the two looks (its ``.old-`` was already renamed to
            # ``.trash-`` by the time of the scan): look again rather than report no baseline.
        raise BaselineError(f"baseline {component} kept changing while it was looked up; is an "
                            "update running?", source=str(self.root))

    def _missing(self, component: str) -> BaselineError:
        return BaselineError(
            f"no baseline for component {component} ({_UPDATE_HINT.format(c=component)})",
            source=str(self.root), slug="baseline-missing")

    def load(self, component: str) -> Baseline:
        """The component's baseline, with manifest and checksums checked.

        Raises :class:`BaselineError` when there is none (with the command that creates one),
        when its manifest is invalid or of an unknown format, or when a file is missing or
        does not match its checksum.
        """
        validate_component_name(component)
        for _ in range(_READ_ATTEMPTS):
            directory = self._resolve(component)
            if directory is None:
                raise self._missing(component)
            try:
                baseline, problems = self._inspect(component, directory, deep=False)
            except Retry:
                continue
            if problems or baseline is None:
                first = problems[0] if problems else "cannot be read"
                raise BaselineError(f"{first} (run `memgate baseline verify {component}`)",
                                    source=str(directory))
            return baseline
        raise BaselineError(f"baseline {component} kept changing while it was read; is an "
                            "update running?", source=str(self.root))

    def _inspect(self, component: str, directory: Path, *,
                 deep: bool) -> tuple[Baseline | None, list[str]]:
        """Check one version directory; return the baseline (if usable) and all problems.

        ``deep`` also decodes every profile and recomputes the summary (``verify``); without
        it only the manifest and checksums are checked (``load``, which the gate runs).
        Raises :class:`Retry` if the directory was replaced while it was being read.
        """
        # One stat, not is_dir() then lexists(): between two calls an update can rename the
        # old version away and the new one in, and the pair would report "not a directory".
        try:
            mode = os.stat(directory).st_mode
        except FileNotFoundError:
            if os.path.islink(directory):
                return None, [f"{directory.name} is a broken symbolic link"]
            raise Retry() from None  # renamed away by an update since it was resolved
        except OSError as e:
            return None, [f"cannot read {directory}: {e.strerror or e}"]
        if not stat.S_ISDIR(mode):
            return None, [f"{directory.name} is not a directory"]
        if os.path.islink(directory) and not fs.inside(directory, self.root):
            return None, [f"{directory.name} is a symbolic link to {os.readlink(directory)}, "
                          "outside the baseline store"]
        try:
            reader = DirReader(directory, self.root)
        except FileNotFoundError:
            raise Retry() from None
        except OSError as e:
            return None, [f"cannot read {directory}: {e.strerror or e}"]
        try:
            manifest, problems = read_manifest(reader, directory)
            result = (None, problems) if manifest is None else check_version(
                component, directory, manifest, reader, self.root, deep=deep,
                config=self.config)
            if not reader.still_current(directory):
                # An update swapped versions while we read: what we read is consistent, but
                # the paths we would hand out now name the other version.
                raise Retry()
            return result
        except FileNotFoundError as e:
            if reader.still_current(directory):
                return None, [f"cannot read {e.filename or directory}: no such file"]
            raise Retry() from None
        finally:
            reader.close()

    def verify(self, component: str | None = None) -> list[str]:
        """Every problem of one component (or of all), each as ``"<component>: <problem>"``.

        Checks the schema, the format version, checksums, that every profile parses and
        matches its manifest entry, and that the summary is the one the profiles give. An
        empty list means the baseline (or the whole store) is sound. Never writes.
        """
        if component is not None:
            names = [validate_component_name(component)]
        else:
            if not self.root.is_dir():
                return [(f"{self.root}: no baselines directory (create a baseline with "
                         "`memgate baseline update --component NAME PROFILE... --reason TEXT`)")]
            names = self.components()
        problems: list[str] = []
        if component is None:
            for e in self._scan():
                if e.name.startswith(".") or not e.is_dir():
                    continue
                try:
                    validate_component_name(e.name)
                except BaselineError as err:
                    problems.append(f"{e.name!r}: not a baseline: {err.message}")
        for name in names:
            # Components are decoded one after the other, never held together: --max-total
            # applies to one component at a time.
            self.config.restart_budget()
            for _ in range(_READ_ATTEMPTS):
                try:
                    directory = self._resolve(name)
                except BaselineError as e:
                    problems.append(f"{name}: {e.message}")
                    break
                if directory is None:
                    problems.append(f"{name}: {self._missing(name).message}")
                    break
                try:
                    _, found = self._inspect(name, directory, deep=True)
                except Retry:
                    continue
                problems.extend(f"{name}: {p}" for p in found)
                break
            else:
                problems.append(f"{name}: kept changing while it was verified; is an update "
                                "running?")
        return problems

    def _leftover_names(self) -> list[str]:
        """Components with temporary entries or a lock file (left by a killed writer)."""
        found: set[str] = set()
        for e in self._scan():
            m = TEMP_RE.fullmatch(e.name)
            if m:
                found.add(m.group("name"))
            elif e.name.startswith(".") and e.name.endswith(".lock"):
                found.add(e.name[1:-5])
        return sorted(found)

    def notes(self, component: str | None = None) -> list[str]:
        """Informational remarks that are not problems: leftovers of interrupted updates
        (and which version is in effect), or an update running right now."""
        names = ([validate_component_name(component)] if component is not None
                 else self._leftover_names())
        out: list[str] = []
        for name in names:
            if is_locked(self.root / f".{name}.lock"):
                out.append(f"{name}: an update is running right now")
                continue
            temps = self._temps(name)
            if not temps:
                continue
            main = self.root / name
            olds = [p for kind, p in temps if kind == "old"]
            if not os.path.lexists(main) and len(olds) == 1:
                out.append(f"{name}: an update was interrupted before it took effect; the "
                           f"previous baseline is in effect from {olds[0].name} "
                           f"(`memgate baseline recover {name}` moves it back to {name}/)")
            else:
                out.append(f"{name}: leftovers of an interrupted update are ignored: "
                           f"{', '.join(p.name for _, p in temps)} (the next update or "
                           f"`memgate baseline recover {name}` deletes them)")
        return out

    # -- writing --------------------------------------------------------------------------

    def _recover_locked(self, component: str) -> list[str]:
        """Under the lock: put an interrupted update's previous version back in place and
        delete every temporary entry of the component. Returns what was done."""
        done: list[str] = []
        main = self.root / component
        if not os.path.lexists(main):
            olds = [p for kind, p in self._temps(component) if kind == "old"]
            if len(olds) > 1:
                raise self._resolve_error(component, olds)
            if olds:
                os.rename(olds[0], main)
                fsync_dir(self.root)
                done.append(f"restored the previous baseline of {component} from "
                            f"{olds[0].name} (an update was interrupted)")
        for kind, path in self._temps(component):
            shown = path.name
            if kind == "old":
                # Keep the rule "an .old- directory is always complete": rename, then delete.
                trash = self.root / f".{component}.trash-{new_token()}"
                os.rename(path, trash)
                path = trash
            rmtree(path)
            done.append(f"deleted the leftover {shown}")
        return done

    def _resolve_error(self, component: str, olds: list[Path]) -> BaselineError:
        return BaselineError(
            f"baseline {component} is missing and several interrupted updates left previous "
            f"versions ({', '.join(p.name for p in olds)}); keep the right one by renaming it "
            f"to {component}/ and delete the others", source=str(self.root))

    def recover(self, component: str | None = None) -> list[str]:
        """Finish what interrupted updates left: restore or clean up. Returns what was done."""
        names = ([validate_component_name(component)] if component is not None
                 else self._leftover_names())
        done: list[str] = []
        for name in names:
            try:
                validate_component_name(name)
            except BaselineError:
                continue
            try:
                with self._writing(name):
                    done.extend(f"{name}: {d}" for d in self._recover_locked(name))
            except BaselineError as e:
                if component is not None or e.slug != "baseline-locked":
                    raise
                done.append(f"{name}: skipped: an update is running right now")
            except OSError as e:
                raise BaselineError(f"cannot recover: {e.strerror or e}",
                                    source=str(e.filename or self.root)) from None
        return done

    def _writing(self, component: str) -> Lock:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BaselineError(f"cannot create the baselines directory: {e.strerror or e}",
                                source=str(self.root)) from None
        if not self.root.is_dir():
            raise BaselineError("is not a directory", source=str(self.root))
        return Lock(self.root, component)

    def update(
        self,
        component: str,
        profiles: Sequence[str | Path],
        *,
        reason: str,
        approved_by: str | None = None,
        duration_seconds: float | None = None,
        force: bool = False,
        policy_duration_seconds: float | None = None,
        runs_may_shrink: bool = False,
    ) -> Baseline:
        """Replace (or create) the component's baseline with ``profiles``, atomically.

        Several profiles are repeated runs of one workload. Each profile's duration is
        resolved as ``check`` resolves a candidate's (:func:`memgate.durations.resolve_duration`):
        ``duration_seconds`` (``--duration``), else the profile's own, else
        ``policy_duration_seconds`` (the policy's ``components.<name>.duration``). Refused: an
        empty reason; profiles that are not all of one kind; profiles incompatible with the
        existing baseline (other sample types or sampling period) or fewer runs than it has,
        unless ``force`` (or, for the runs, ``runs_may_shrink``); a concurrent update of the
        same component.
        """
        validate_component_name(component)
        check_reason(reason)
        if not profiles:
            raise BaselineError("no profiles given", slug="usage")
        inputs = read_inputs(profiles, self.config, duration_seconds)
        return self.update_inputs(component, inputs, reason=reason, approved_by=approved_by,
                                  force=force, policy_duration_seconds=policy_duration_seconds,
                                  runs_may_shrink=runs_may_shrink)

    def accept(
        self,
        report: str | Path,
        *,
        reason: str,
        approved_by: str | None = None,
        component: str | None = None,
        force: bool = False,
        runs_may_shrink: bool = False,
    ) -> Baseline:
        """Make the candidate profiles of a ``check`` report the component's new baseline.

        The report's ``inputs.candidate`` entries name the files (relative to the current
        directory) and their sha256 at check time; a file that changed since is refused, so
        that what is accepted is exactly what was checked and approved.
        """
        check_reason(reason)
        found = read_candidates(Path(report), self.config.limits)
        report_component = found.component
        if component is not None:
            validate_component_name(component)
            if report_component is not None and report_component != component:
                raise BaselineError(f"the report is for component {report_component}, not "
                                    f"{component}", source=str(report))
        name = component or report_component
        if name is None:
            raise BaselineError("the report names no component; give one with --component",
                                source=str(report))
        inputs: list[ProfileInput] = []
        for path, sha, dur in found.profiles:
            if path == "<stdin>":
                raise BaselineError(
                    "the report's candidate profile was read from standard input and cannot "
                    "be read again; give the profile file to `memgate baseline update`",
                    source=str(report))
            data, source = read_bytes(path, self.config)
            actual = hashlib.sha256(data).hexdigest()
            if actual != sha:
                raise BaselineError(
                    f"changed since the check: the report has sha256 {sha[:12]}…, the file "
                    f"now {actual[:12]}…; re-run the check on it before accepting",
                    source=source, slug="baseline-changed")
            inputs.append(ProfileInput(data=data, source=source,
                                       original_name=original_name(path),
                                       duration_seconds=dur, duration_source="report"))
        return self.update_inputs(name, inputs, reason=reason, approved_by=approved_by,
                                  force=force, checked_against=found.checked_against,
                                  report=str(report), runs_may_shrink=runs_may_shrink)

    def update_inputs(
        self,
        component: str,
        inputs: Sequence[ProfileInput],
        *,
        reason: str,
        approved_by: str | None = None,
        force: bool = False,
        checked_against: frozenset[str] | None = None,
        report: str | None = None,
        policy_duration_seconds: float | None = None,
        runs_may_shrink: bool = False,
    ) -> Baseline:
        """:meth:`update` for profiles already in memory (``accept`` checks their hashes
        first, so the bytes checked are the bytes stored).

        ``checked_against``: the sha256 of the baseline profiles the ``report`` compared
        with; unless ``force``, the existing baseline must be exactly that (checked under
        the lock, see :meth:`_check_existing`)."""
        validate_component_name(component)
        reason = check_reason(reason)
        if approved_by is not None:
            approved_by = approved_by.strip() or None
        prepared = prepare(inputs, self.config, policy_duration_seconds)
        step("decoded")
        summary = summarize([p.profile for p in prepared], [p.duration for p in prepared],
                            in_use_levels=any(p.input.origin for p in prepared))
        entries = [profile_entry(p.sha256, p.profile, p.input.original_name, p.duration,
                                 p.input.origin) for p in prepared]
        files = [(str(e["file"]), p.stored) for e, p in zip(entries, prepared)]

        def manifest_for(created: str | None) -> dict[str, object]:
            stamp = now()
            return build_manifest(component, created=created or stamp, updated=stamp,
                                  git_commit=git_commit(self.root), reason=reason,
                                  approved_by=approved_by, entries=entries, summary=summary)

        return self._write_update(component, files, manifest_for, first=prepared[0].profile,
                                  source=prepared[0].input.source, force=force,
                                  checked_against=checked_against, report=report,
                                  runs=None if runs_may_shrink else len(prepared))

    def _write_update(self, component: str, files: list[tuple[str, bytes]],
                      manifest_for: Callable[[str | None], dict[str, object]], *,
                      first: Profile, source: str, force: bool,
                      checked_against: frozenset[str] | None,
                      report: str | None, runs: int | None = None) -> Baseline:
        """Under the lock: check against the existing baseline, write the new version and
        switch it in (the remote store replaces this with its conditional commit)."""
        try:
            with self._writing(component):
                step("locked")
                self._recover_locked(component)
                step("recovered")
                created = self._check_existing(component, first, source, force,
                                               checked_against, report, runs=runs)
                swap_in(self.root, component, files,
                        render_manifest(manifest_for(created)).encode("utf-8"))
                return self.load(component)
        except OSError as e:
            raise BaselineError(f"cannot write the baseline: {e.strerror or e}",
                                source=str(e.filename or self.root)) from None

    def _existing(self, component: str) -> tuple[Baseline | None, list[str], str] | None:
        """The baseline a writer is about to replace (None: there is none), with its problems
        and where it is (for messages)."""
        main = self.root / component
        if not os.path.lexists(main):
            return None
        try:
            old, problems = self._inspect(component, main, deep=False)
        except Retry:  # pragma: no cover - we hold the lock
            old, problems = None, ["changed while it was read"]
        return old, problems, str(main)

    def _check_existing(self, component: str, first: Profile, source: str, force: bool,
                        checked_against: frozenset[str] | None = None,
                        report: str | None = None, runs: int | None = None) -> str | None:
        """Refuse profiles that do not fit the existing baseline, or (``accept``) a baseline
        other than the one the report was checked against, or (``runs``: the number of new
        profiles) fewer repeated runs than it has; return its ``created``."""
        existing = self._existing(component)
        if existing is None:
            return None
        old, problems, main = existing
        if old is None:
            newer = any("newer memgate" in p for p in problems)
            if newer or not force:
                hint = "" if newer else (
                    f"; run `memgate baseline verify {component}`, or use --force to "
                    "replace it")
                raise BaselineError(f"the existing baseline of {component} is invalid: "
                                    f"{problems[0] if problems else 'unreadable'}{hint}",
                                    source=main)
            return None
        check_replaces(component, old, first, source, force=force,
                       checked_against=checked_against, report=report, runs=runs, main=main)
        created = old.manifest.get("created")
        return created if isinstance(created, str) else None

    def remove(self, component: str) -> None:
        """Delete the component's baseline; atomic like an update (a rename, then delete)."""
        validate_component_name(component)
        try:
            with self._writing(component):
                self._recover_locked(component)
                main = self.root / component
                if not os.path.lexists(main):
                    raise self._missing(component)
                trash = self.root / f".{component}.trash-{new_token()}"
                os.rename(main, trash)
                fsync_dir(self.root)
                step("remove-moved")
                rmtree(trash)
                step("remove-deleted")
        except OSError as e:
            raise BaselineError(f"cannot remove the baseline: {e.strerror or e}",
                                source=str(e.filename or self.root)) from None
