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
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import filelock
import pandas as pd

from lstm_plugin.core.data import validate_symbol
from lstm_plugin.core.errors import LSTMPluginError, ModelError, RegistryError
from lstm_plugin.core.files import Inventory, identity, inventory, refuse_link, write_atomic
from lstm_plugin.model.model_files import (
    ModelRecord,
    metadata_problem,
    signature_problem,
)
from lstm_plugin.serving.verification import VersionReader

logger = logging.getLogger(__name__)

__all__ = ["MODEL_TYPES", "UNIVERSAL_NAME", "ModelRecord", "ModelRegistry", "served_and_newest"]

MODEL_TYPES = ("specific", "universal")
UNIVERSAL_NAME = "DEFAULT"


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
    def folder(self, model_type: str, name: str) -> Path:
        if model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES} (got: {model_type!r})")
        return self.root / model_type / validate_symbol(name)

    def check_folder(self, model_type: str, name: str) -> Path:
        """The folder of ``model_type/name``; :class:`UnsafePathError` if it, or its type folder, is a
        link."""
        folder = self.folder(model_type, name)
        refuse_link(folder.parent)
        refuse_link(folder)
        return folder

    def symbols(self, model_type: str = "specific") -> list[str]:
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
        """Versions ``index.json`` lists; ``None`` when it is missing or unreadable (warned once)."""
        pointer = folder / "index.json"
        try:
            data = json.loads(pointer.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            self._reader.warn_once(
                ("index", str(pointer), identity(pointer)),
                "%s is unreadable (%s); using the version files",
                pointer,
                exc,
            )
            return None
        versions = data.get("versions") if isinstance(data, dict) else None
        if not isinstance(versions, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1_000_000 for v in versions
        ):
            self._reader.warn_once(
                ("index", str(pointer), identity(pointer)),
                "%s does not list version numbers; using the version files",
                pointer,
            )
            return None
        return versions

    def _scan(self, model_type: str, name: str, folder: Path) -> list[ModelRecord]:
        """Every verified version in ``folder``, newest (by ``trained_at``, then version) first.

        The versions are those with a metadata file, and those ``index.json`` lists (a listed
        version whose files are gone is reported), so a wrong or stale index hides nothing.
        """
        listed = inventory(folder).metadata | set(self._index(folder) or ())
        found = [
            r
            for v in sorted(listed)
            if (r := self._reader.load_record(folder, model_type, name, v)) is not None
        ]
        return sorted(found, key=lambda r: (r.trained_at, r.version), reverse=True)

    def records(self, model_type: str, name: str) -> list[ModelRecord]:
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

    def resolve(
        self, model_type: str, name: str, as_of: pd.Timestamp | str | None = None, *, candidates: bool = False
    ) -> ModelRecord | None:
        """The newest valid version trained at or before ``as_of`` (any time when ``None``).

        Candidates (models kept but not promoted) are skipped unless ``candidates=True``.
        """
        served, newest = self.resolve_with_candidate(model_type, name, as_of)
        return newest if candidates else served

    def resolve_with_candidate(
        self, model_type: str, name: str, as_of: pd.Timestamp | str | None = None
    ) -> tuple[ModelRecord | None, ModelRecord | None]:
        """From one read: the version served at ``as_of`` and the newest one trained by then
        (the same record unless a newer candidate was kept)."""
        limit = None if as_of is None else pd.Timestamp(as_of)
        served = newest = None
        for _ in range(2):
            served, newest = served_and_newest(self.records(model_type, name), limit)
            if self._reader.still_valid(served) and (newest is served or self._reader.still_valid(newest)):
                break
            self._listed.pop(self.folder(model_type, name), None)  # a file changed: read the folder again
        return served, newest

    def training_keys(
        self, model_type: str, name: str, trained_at: pd.Timestamp
    ) -> tuple[frozenset[str], bool]:
        """The training keys a training at ``trained_at`` may reuse (those registered by then), and whether
        a version was trained at that very time."""
        records = [r for r in self.records(model_type, name) if r.trained_at <= trained_at]
        keys = frozenset(str(r.metadata.get("training_key")) for r in records)
        return keys, any(r.trained_at == trained_at for r in records)

    def find_training(
        self, model_type: str, name: str, training_key: str, trained_at: pd.Timestamp | None = None
    ) -> ModelRecord | None:
        """A valid version trained on identical data with an identical config, if one exists."""
        for record in self.records(model_type, name):
            if record.metadata.get("training_key") == training_key:
                return record
        return None

    def owns(self, record: ModelRecord) -> bool:
        """Whether ``record`` serves as it is (a run's view adopts other runs' versions: RunRegistry)."""
        return True

    def in_use(self, model_type: str, name: str) -> set[int]:
        """Versions retention must keep besides its own rule (a run's adopted ones: RunRegistry)."""
        return set()

    def set_stage(self, model_type: str, name: str, version: int, stage: str, reason: str) -> ModelRecord:
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
            raise RegistryError(f"{folder} › cannot write model: {exc}") from exc
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
        self, model_type: str, name: str, onnx_bytes: bytes, metadata: Mapping[str, Any]
    ) -> ModelRecord:
        """Commit a new version: ONNX file, metadata (the commit), then the index; returns the verified
        record.

        The version is checked exactly as a read would check it before anything is written, so
        what is written always serves. Raises :class:`ModelError` for a version that would not,
        :class:`UnsafePathError` for a link in the way, :class:`RegistryError` when the disk refuses.
        """
        folder = self.check_folder(model_type, name)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.check_folder(model_type, name)  # a link planted while the folders were made
            with self._locked(folder):
                found = inventory(folder)
                indexed = self._index(folder)
                self._remove_partial_writes(folder, found)
                complete = sorted(found.metadata)
                if indexed is not None and sorted(set(indexed)) != complete:
                    logger.warning(
                        "%s: index.json listed %s but the folder holds versions %s; rebuilt the index from "
                        "the files",
                        folder,
                        sorted(set(indexed)),
                        complete,
                    )
                elif indexed is None and complete:
                    logger.warning(
                        "%s: index.json is missing or unreadable; rebuilt it from the files (versions %s)",
                        folder,
                        complete,
                    )
                version = max([0, *found.numbers, *(indexed or ())]) + 1
                full = dict(metadata)
                full.update(
                    symbol=validate_symbol(name),
                    model_type=model_type,
                    version=version,
                    onnx_file=f"v{version:06d}.onnx",
                    sha256=hashlib.sha256(onnx_bytes).hexdigest(),
                )
                self._check_new(full, onnx_bytes, model_type, name, version)
                write_atomic(folder / full["onnx_file"], onnx_bytes)
                write_atomic(
                    folder / f"v{version:06d}.json", json.dumps(full, indent=2, sort_keys=True).encode()
                )
                self._write_index(folder, [*complete, version])
                self._apply_retention(model_type, name, folder)
        except OSError as exc:
            raise RegistryError(f"{folder} › cannot write model: {exc}") from exc
        record = self._reader.load_record(folder, model_type, name, version)
        if record is None:  # pragma: no cover - only if the disk lies
            raise RegistryError(f"{folder} › version {version} did not verify after writing")
        logger.info("registered %s (sha256 %s)", record.label, full["sha256"][:12])
        return record

    def _check_new(
        self, metadata: Mapping[str, Any], onnx_bytes: bytes, model_type: str, name: str, version: int
    ) -> None:
        problem = metadata_problem(dict(metadata), model_type, name, version)
        if problem is None:
            signature = self._reader.known_signature(metadata["sha256"], onnx_bytes)
            problem = signature if isinstance(signature, str) else signature_problem(signature, metadata)
        if problem:
            raise ModelError(f"{model_type}/{name} › not registered: {problem}")

    def _write_index(self, folder: Path, versions: list[int]) -> None:
        write_atomic(folder / "index.json", json.dumps({"versions": sorted(set(versions))}).encode())

    def _remove_partial_writes(self, folder: Path, found: Inventory) -> None:
        """Temp files of a save that died, and an ONNX file without metadata newer than every
        complete version (a save killed between its two files). Nothing else is ever removed here."""
        partial = {v for v in found.onnx - found.metadata if v > max(found.metadata, default=0)}
        for path in [*found.temp, *(folder / f"v{v:06d}.onnx" for v in sorted(partial))]:
            logger.info("removing leftover %s of an interrupted save", path)
            with contextlib.suppress(OSError):
                path.unlink()
        found.onnx -= partial

    def _apply_retention(self, model_type: str, name: str, folder: Path) -> None:
        """Drop versions beyond ``keep_versions``, except those that still serve (class docstring).

        Damaged versions rank after every valid one. The index is rewritten first, then each
        dropped version's ONNX file, then its metadata, is removed: a kill in between leaves at
        worst a metadata file whose model is gone, skipped on read and dropped at the next save.
        """
        numbers = sorted(inventory(folder).metadata, reverse=True)
        if len(numbers) <= self.keep_versions:
            return
        valid = self._scan(model_type, name, folder)
        ranked = [r.version for r in valid] + [v for v in numbers if v not in {r.version for r in valid}]
        keep = set(ranked[: self.keep_versions])
        for record in valid:
            if record.version in keep:
                served, _ = served_and_newest(valid, record.trained_at)
                if served is not None:
                    keep.add(served.version)
        served_now, _ = served_and_newest(valid, None)
        if served_now is not None:
            keep.add(served_now.version)
        keep |= self.in_use(model_type, name)
        self._write_index(folder, sorted(keep))
        for version in (v for v in numbers if v not in keep):
            for suffix in ("onnx", "json"):
                with contextlib.suppress(OSError):
                    (folder / f"v{version:06d}.{suffix}").unlink()


def served_and_newest(
    records: list[ModelRecord], limit: pd.Timestamp | None
) -> tuple[ModelRecord | None, ModelRecord | None]:
    """From records ordered newest first: the production version serving at ``limit`` and the
    newest version (of any stage) trained by then."""
    served = newest = None
    for record in records:
        if (limit is not None and record.trained_at > limit) or record.stage == "discarded":
            continue
        newest = newest or record
        if record.stage == "production":
            served = record
            break
    return served, newest
