"""The model store: versioned ONNX files with JSON metadata, written atomically, verified on read.

Layout under the registry root::

    specific/<SYMBOL>/v000003.onnx     the model (scaling inside the graph)
    specific/<SYMBOL>/v000003.json     its metadata (sha256 of the ONNX file included)
    specific/<SYMBOL>/index.json       the committed versions, for tools; rebuilt from the files
    universal/<NAME>/...               pooled models, same layout

A version exists once its metadata file does: publishing writes the ONNX file, then its metadata
(the commit), then ``index.json`` — each to a temp file with an unpredictable name, fsynced, then
``os.replace``d — under an exclusive file lock. A process killed at any point leaves every complete
version intact; the next save removes only what is provably a partial write (temp files, and an
ONNX file without metadata that is newer than every complete version). An ``index.json`` that
disagrees with the files is rebuilt from them, with a warning; it never deletes anything.

Reads verify each version (:mod:`lstm_plugin.model.model_files`: metadata, sha256, graph signature,
provenance); a damaged version is skipped with a warning and older ones serve. Symbolic links
inside the registry are refused, never followed. Models are data: nothing here unpickles or
executes anything.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import filelock
import pandas as pd

from lstm_plugin.core.data import validate_symbol
from lstm_plugin.core.errors import LSTMPluginError, ModelError, RegistryError
from lstm_plugin.core.files import TEMP_PREFIX, identity, inventory, refuse_link, write_atomic
from lstm_plugin.core.statuses import MODEL_TYPES, ModelType
from lstm_plugin.model.model_files import (
    ModelRecord,
    metadata_problem,
    signature_problem,
)
from lstm_plugin.serving.verification import VersionReader
from lstm_plugin.serving.version_folder import (
    kept_versions,
    listing,
    next_version,
    read_index,
    served_and_newest,
    write_index,
)

logger = logging.getLogger(__name__)

__all__ = [
    "MODEL_TYPES",
    "UNIVERSAL_NAME",
    "Commit",
    "ModelRecord",
    "ModelRegistry",
    "disk_error",
    "served_and_newest",
]

UNIVERSAL_NAME = "DEFAULT"


class Commit(NamedTuple):
    """What :meth:`ModelRegistry.commit` did: the version, and whether this call wrote it."""

    record: ModelRecord
    written: bool


def disk_error(path: Path, action: str, exc: OSError) -> RegistryError:
    """The one-line error of a registry the disk refuses to write; permanent (no retry helps) when the
    folder is read-only, not ours, or full."""
    permanent = exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)
    detail = exc.strerror or str(exc)
    error = RegistryError(f"{path} › {action}: {detail}")
    error.permanent = permanent
    return error


class ModelRegistry:
    """Versioned models per symbol (``specific``) and pooled models (``universal``).

    Retention keeps the ``keep_versions`` newest versions (by ``trained_at``, then version) per
    model, and never deletes a version that serves at any ``as_of`` from the oldest kept one on:
    the model served now, and the production model each kept candidate stood behind.
    """

    def __init__(self, root: str | Path, keep_versions: int = 50) -> None:
        self.root = Path(root)
        self.keep_versions = keep_versions
        self._lock = threading.Lock()
        self._reader = VersionReader()
        self._listed: dict[Path, tuple[tuple[Any, ...], list[ModelRecord]]] = {}

    # ------------------------------------------------------------------ paths
    def folder(self, model_type: ModelType, name: str) -> Path:
        if model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES} (got: {model_type!r})")
        return self.root / model_type / validate_symbol(name)

    def check_folder(self, model_type: ModelType, name: str) -> Path:
        """The folder of ``model_type/name``; :class:`UnsafePathError` if it, or its type folder, is a
        link."""
        folder = self.folder(model_type, name)
        refuse_link(folder.parent)
        refuse_link(folder)
        return folder

    def check_writable(self, model_type: ModelType, name: str) -> Path:
        """The folder of ``model_type/name``, made if need be; a :class:`RegistryError` now when it cannot be
        written (read-only, full, not ours), before minutes of training are spent on a model it would lose."""
        folder = self.check_folder(model_type, name)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=TEMP_PREFIX):
                pass
        except OSError as exc:
            raise disk_error(folder, "cannot write models here", exc) from None
        return folder

    def symbols(self, model_type: ModelType = "specific") -> list[str]:
        """Names that have a folder of versions; stray entries (bad names, links) are skipped with a
        warning."""
        base = self.root / model_type
        if os.path.islink(base) or not base.is_dir():
            return []
        names = []
        for entry in sorted(os.scandir(base), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                if entry.is_symlink():
                    self._reader.warn_once(
                        ("link", entry.path), "skipping %s: a symbolic link inside the registry", entry.path
                    )
                continue
            try:
                canonical = validate_symbol(entry.name)
            except LSTMPluginError:
                canonical = None
            if canonical != entry.name:  # the registry writes canonical (upper-case) names only
                self._reader.warn_once(
                    ("name", entry.path), "skipping %s: not a valid symbol name", entry.path
                )
            elif inventory(Path(entry.path)).metadata | set(self._index(Path(entry.path)) or ()):
                names.append(entry.name)
        return names

    # ------------------------------------------------------------------ reading
    def _index(self, folder: Path) -> list[int] | None:
        return read_index(folder, self._reader.warn_once)

    def _scan(self, model_type: ModelType, name: str, folder: Path) -> list[ModelRecord]:
        """Every verified version in ``folder``, newest (by ``trained_at``, then version) first.

        The versions are those with a metadata file; those ``index.json`` lists without one are
        reported in one warning, so a wrong or stale index hides nothing and adds nothing.
        """
        committed = inventory(folder).metadata
        missing = set(self._index(folder) or ()) - committed
        if missing:
            self._reader.warn_once(
                ("missing", str(folder), identity(folder / "index.json")),
                "%s: index.json lists versions %s whose metadata files are missing; skipped",
                folder,
                listing(sorted(missing)),
            )
        found = [
            r
            for v in sorted(committed)
            if (r := self._reader.load_record(folder, model_type, name, v)) is not None
        ]
        return sorted(found, key=lambda r: (r.trained_at, r.version), reverse=True)

    def records(self, model_type: ModelType, name: str) -> list[ModelRecord]:
        """Every valid committed version, candidates included, newest (by ``trained_at``, then version) first.

        The list is kept while the folder and its ``index.json`` are unchanged; the records a
        lookup returns are re-checked on disk (:meth:`VersionReader.still_valid`), so a damaged
        file is still caught.
        """
        folder = self.folder(model_type, name)
        if os.path.islink(folder.parent) or os.path.islink(folder):
            self._reader.warn_once(
                ("link", str(folder)), "skipping %s: a symbolic link inside the registry", folder
            )
            return []
        key = (identity(folder), identity(folder / "index.json"))
        cached = self._listed.get(folder)
        if cached is not None and key[0] is not None and cached[0] == key:
            return cached[1]
        ordered = self._scan(model_type, name, folder)
        if key[0] is not None:
            self._listed[folder] = (key, ordered)
        return ordered

    def serving_records(self, model_type: ModelType, name: str) -> list[ModelRecord]:
        """:meth:`records` less the versions :meth:`set_aside` in this process."""
        return [r for r in self.records(model_type, name) if self._reader.usable(r)]

    def set_aside(self, record: ModelRecord, reason: str) -> None:
        """Never serve ``record``'s bytes again in this process (onnxruntime cannot load them, or they
        answer NaN): warned once, and the previous version serves (docs/models.md)."""
        self._reader.set_aside(record, reason)

    def resolve(
        self,
        model_type: ModelType,
        name: str,
        as_of: pd.Timestamp | str | None = None,
        *,
        candidates: bool = False,
    ) -> ModelRecord | None:
        """The newest valid version trained at or before ``as_of`` (any time when ``None``).

        Candidates (models kept but not promoted) are skipped unless ``candidates=True``.
        """
        served, newest = self.resolve_with_candidate(model_type, name, as_of)
        return newest if candidates else served

    def resolve_with_candidate(
        self, model_type: ModelType, name: str, as_of: pd.Timestamp | str | None = None
    ) -> tuple[ModelRecord | None, ModelRecord | None]:
        """From one read: the version served at ``as_of`` and the newest one trained by then
        (the same record unless a newer candidate was kept)."""
        limit = None if as_of is None else pd.Timestamp(as_of)
        served = newest = None
        for _ in range(2):
            served, newest = served_and_newest(self.serving_records(model_type, name), limit)
            if self._reader.still_valid(served) and (newest is served or self._reader.still_valid(newest)):
                break
            self._listed.pop(self.folder(model_type, name), None)  # a file changed: read the folder again
        return served, newest

    def training_keys(
        self, model_type: ModelType, name: str, trained_at: pd.Timestamp
    ) -> tuple[frozenset[str], bool]:
        """The training keys a training at ``trained_at`` may reuse (those registered by then), and whether
        a version was trained at that very time."""
        records = [r for r in self.serving_records(model_type, name) if r.trained_at <= trained_at]
        keys = frozenset(str(r.metadata.get("training_key")) for r in records)
        return keys, any(r.trained_at == trained_at for r in records)

    def find_training(
        self, model_type: ModelType, name: str, training_key: str, trained_at: pd.Timestamp | None = None
    ) -> ModelRecord | None:
        """A valid version trained on identical data with an identical config, if one exists."""
        for record in self.serving_records(model_type, name):
            if record.metadata.get("training_key") == training_key:
                return record
        return None

    def owns(self, record: ModelRecord) -> bool:
        """Whether ``record`` serves as it is (a run's view adopts other runs' versions: RunRegistry)."""
        return True

    def in_use(self, model_type: ModelType, name: str) -> set[int]:
        """Versions retention must keep besides its own rule (a run's adopted ones: RunRegistry)."""
        return set()

    def set_stage(
        self, model_type: ModelType, name: str, version: int, stage: str, reason: str
    ) -> ModelRecord:
        """Rewrite a version's stage (``lstm-plugin promote``): its metadata file is replaced atomically under
        the writer lock; the ONNX file is untouched."""
        folder = self.check_folder(model_type, name)
        record = next((r for r in self.records(model_type, name) if r.version == version), None)
        if record is None:
            raise RegistryError(f"{model_type}/{name} › no valid version {version}")
        metadata = dict(record.metadata, stage=stage, stage_reason=reason)
        problem = metadata_problem(metadata, model_type, name, version)
        if problem:
            raise ModelError(f"{record.label} › {problem}")
        try:
            with self._locked(folder):
                write_atomic(
                    folder / f"v{version:06d}.json", json.dumps(metadata, indent=2, sort_keys=True).encode()
                )
        except OSError as exc:
            raise disk_error(folder, "cannot write model", exc) from exc
        self._listed.pop(folder, None)
        updated = self._reader.load_record(folder, model_type, name, version)
        if updated is None:  # pragma: no cover - only if the disk lies
            raise RegistryError(f"{folder} › version {version} did not verify after writing")
        return updated

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        """The folder's writer lock: ``filelock`` between processes (on every platform), a mutex between
        threads."""
        lock_path = folder / ".lock"
        if os.path.islink(lock_path):
            refuse_link(lock_path)
        with self._lock, filelock.FileLock(lock_path):
            yield

    def publish(
        self, model_type: ModelType, name: str, onnx_bytes: bytes, metadata: Mapping[str, Any]
    ) -> ModelRecord:
        """Commit a new version: ONNX file, metadata (the commit), then the index; returns the verified
        record.

        The version is checked exactly as a read would check it before anything is written, so
        what is written always serves. Raises :class:`ModelError` for a version that would not,
        :class:`UnsafePathError` for a link in the way, :class:`RegistryError` when the disk refuses.
        """
        return self.commit(model_type, name, onnx_bytes, metadata).record

    def commit(
        self,
        model_type: ModelType,
        name: str,
        onnx_bytes: bytes,
        metadata: Mapping[str, Any],
        *,
        unless_registered: bool = False,
    ) -> Commit:
        """:meth:`publish`; with ``unless_registered``, a version of the same training (its
        ``training_key``, stamped at the same ``trained_at``) that another process committed while this
        one trained is returned instead, and nothing is written: the check runs under the writer lock,
        so two runs that train the same model at once register it once."""
        folder = self.check_folder(model_type, name)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.check_folder(model_type, name)  # a link planted while the folders were made
            with self._locked(folder):
                if unless_registered:
                    identical = self._registered(model_type, name, metadata)
                    if identical is not None:
                        return Commit(identical, written=False)
                version = next_version(folder, self._index(folder))
                full = self._checked_new(model_type, name, version, onnx_bytes, metadata)
                write_atomic(folder / full["onnx_file"], onnx_bytes)
                write_atomic(
                    folder / f"v{version:06d}.json", json.dumps(full, indent=2, sort_keys=True).encode()
                )
                write_index(folder, [*inventory(folder).metadata, version])
                self._apply_retention(model_type, name, folder)
        except OSError as exc:
            raise disk_error(folder, "cannot write model", exc) from exc
        record = self._reader.load_record(folder, model_type, name, version)
        if record is None:  # pragma: no cover - only if the disk lies
            raise RegistryError(f"{folder} › version {version} did not verify after writing")
        logger.info("registered %s (sha256 %s)", record.label, full["sha256"][:12])
        return Commit(record, written=True)

    def _registered(
        self, model_type: ModelType, name: str, metadata: Mapping[str, Any]
    ) -> ModelRecord | None:
        """A committed, usable version of the very training ``metadata`` describes (writer lock held)."""
        self._listed.pop(self.folder(model_type, name), None)  # read the folder as it is now
        key, when = metadata.get("training_key"), pd.Timestamp(metadata["trained_at"])
        for record in ModelRegistry.records(self, model_type, name):  # the folder's, in a run's view too
            if (
                self._reader.usable(record)
                and key is not None
                and record.metadata.get("training_key") == key
                and record.trained_at == when
            ):
                return record
        return None

    def _checked_new(
        self, model_type: ModelType, name: str, version: int, onnx_bytes: bytes, metadata: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The metadata version ``version`` is written with, checked as a read would check it."""
        full = dict(metadata)
        full.update(
            symbol=validate_symbol(name),
            model_type=model_type,
            version=version,
            onnx_file=f"v{version:06d}.onnx",
            sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        )
        problem = metadata_problem(full, model_type, name, version)
        if problem is None:
            signature = self._reader.known_signature(full["sha256"], onnx_bytes)
            problem = signature if isinstance(signature, str) else signature_problem(signature, full)
        if problem:
            raise ModelError(f"{model_type}/{name} › not registered: {problem}")
        return full

    def _apply_retention(self, model_type: ModelType, name: str, folder: Path) -> None:
        """Drop versions beyond ``keep_versions``, except those that still serve (class docstring).

        The index is rewritten first, then each dropped version's ONNX file, then its metadata, is
        removed: a kill in between leaves at worst a metadata file whose model is gone, skipped on
        read and dropped at the next save.
        """
        numbers = sorted(inventory(folder).metadata, reverse=True)
        if len(numbers) <= self.keep_versions:
            return
        valid = self._scan(model_type, name, folder)
        keep = kept_versions(valid, numbers, self.keep_versions) | self.in_use(model_type, name)
        write_index(folder, sorted(keep))
        for version in (v for v in numbers if v not in keep):
            for suffix in ("onnx", "json"):
                with contextlib.suppress(OSError):
                    (folder / f"v{version:06d}.{suffix}").unlink()
