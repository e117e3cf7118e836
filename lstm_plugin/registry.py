"""The model store: versioned ONNX files with JSON metadata, written atomically, verified on read.

Layout under the registry root::

    specific/<SYMBOL>/v000003.onnx     the model (scaling inside the graph)
    specific/<SYMBOL>/v000003.json     its metadata (sha256 of the ONNX file included)
    specific/<SYMBOL>/index.json       the pointer: committed versions; written last
    universal/<NAME>/...               pooled models, same layout

A version exists once ``index.json`` lists it. Publishing writes the ONNX file, then its metadata,
then the pointer — each to a temp file, fsynced, then ``os.replace``d — under an exclusive file
lock, so a process killed at any point leaves the previous versions intact. Reads check the
sha256; a truncated or tampered version is skipped with a warning and older ones serve.
Models are data: nothing here unpickles or executes anything.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .data import validate_symbol
from .errors import RegistryError

try:  # POSIX only; elsewhere a process-local lock still serialises threads
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

__all__ = ["MODEL_TYPES", "UNIVERSAL_NAME", "ModelRecord", "ModelRegistry"]

MODEL_TYPES = ("specific", "universal")
UNIVERSAL_NAME = "DEFAULT"
_VERSION_FILE = re.compile(r"^v(\d{6})\.(onnx|json)$")
_REQUIRED = ("symbol", "model_type", "version", "trained_at", "sha256", "onnx_file", "features", "window", "horizon")


@dataclass(frozen=True)
class ModelRecord:
    """One verified, committed model version."""

    metadata: Mapping[str, Any]
    onnx_path: Path

    @property
    def version(self) -> int:
        return int(self.metadata["version"])

    @property
    def model_type(self) -> str:
        return str(self.metadata["model_type"])

    @property
    def symbol(self) -> str:
        return str(self.metadata["symbol"])

    @functools.cached_property
    def trained_at(self) -> pd.Timestamp:
        return pd.Timestamp(self.metadata["trained_at"])

    @property
    def key(self) -> tuple[str, str, int, str]:
        """Identity for caches: type, name, version and content hash."""
        return (self.model_type, self.symbol, self.version, str(self.metadata["sha256"]))

    @property
    def label(self) -> str:
        return f"{self.model_type}/{self.symbol}/v{self.version}"

    @property
    def stage(self) -> str:
        """``production`` (served) or ``candidate`` (kept, not served: it did not beat the current model)."""
        return str(self.metadata.get("stage", "production"))

    @property
    def reliability(self) -> float | None:
        value = self.metadata.get("metrics", {}).get("reliability")
        return None if value is None else float(value)

    def read_bytes(self) -> bytes:
        """The ONNX bytes, re-verified against the recorded sha256."""
        blob = self.onnx_path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != self.metadata["sha256"]:
            raise RegistryError(f"{self.onnx_path} › sha256 mismatch (file changed after it was verified)")
        return blob


def _identity(path: Path) -> tuple[int, int, int] | None:
    """``(inode, size, mtime_ns)`` of a file, or ``None`` when it is missing."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` so readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


class ModelRegistry:
    """Versioned models per symbol (``specific``) and pooled models (``universal``).

    ``keep_versions`` newest versions (by ``trained_at``, then version) are kept per model.
    """

    def __init__(self, root: str | Path, keep_versions: int = 50) -> None:
        self.root = Path(root)
        self.keep_versions = keep_versions
        self._lock = threading.Lock()
        self._verified: dict[tuple[str, int, int], str] = {}
        self._parsed: dict[tuple[str, int, int, int], dict[str, Any]] = {}
        self._warned: set[tuple[str, int, int]] = set()
        self._listed: dict[Path, tuple[tuple[int, int, int], list[ModelRecord]]] = {}

    # ------------------------------------------------------------------ paths
    def folder(self, model_type: str, name: str) -> Path:
        if model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES} (got: {model_type!r})")
        return self.root / model_type / validate_symbol(name)

    def symbols(self, model_type: str = "specific") -> list[str]:
        base = self.root / model_type
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "index.json").exists())

    # ------------------------------------------------------------------ reading
    def _index(self, folder: Path) -> list[int]:
        pointer = folder / "index.json"
        try:
            data = json.loads(pointer.read_text(encoding="utf-8"))
            return [int(v) for v in data["versions"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("%s is unreadable (%s); falling back to the metadata files", pointer, exc)
            return sorted({int(m.group(1)) for p in folder.glob("v*.json") if (m := _VERSION_FILE.match(p.name))})

    def _warn_once(self, key: tuple[str, int, int], message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)

    def _metadata(self, meta_path: Path) -> dict[str, Any]:
        """Parsed metadata, cached by the file's identity (a rewrite or replacement is re-read)."""
        stat = meta_path.stat()
        key = (str(meta_path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        metadata = self._parsed.get(key)
        if metadata is None:
            metadata = json.loads(meta_path.read_text(encoding="utf-8"))
            missing = [k for k in _REQUIRED if k not in metadata]
            if missing:
                raise ValueError(f"missing keys {missing}")
            if len(self._parsed) > 10_000:  # long runs: versions come and go; start over
                self._parsed.clear()
            self._parsed[key] = metadata
        return metadata

    def _load_record(self, folder: Path, version: int) -> ModelRecord | None:
        meta_path = folder / f"v{version:06d}.json"
        try:
            metadata = self._metadata(meta_path)
        except (OSError, ValueError) as exc:
            self._warn_once((str(meta_path), 0, 0), "skipping %s: unreadable metadata (%s)", meta_path, exc)
            return None
        onnx_path = folder / str(metadata["onnx_file"])
        if onnx_path.parent != folder:
            self._warn_once((str(meta_path), 1, 0), "skipping %s: onnx_file points outside its folder", meta_path)
            return None
        try:
            stat = onnx_path.stat()
        except OSError:
            self._warn_once((str(onnx_path), 0, 0), "skipping %s: ONNX file is missing", onnx_path)
            return None
        cache_key = (str(onnx_path), stat.st_size, stat.st_mtime_ns)
        digest = self._verified.get(cache_key)
        if digest is None:
            digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
            self._verified[cache_key] = digest
        if digest != metadata["sha256"]:
            self._warn_once(
                cache_key, "skipping %s: sha256 mismatch (truncated or modified); an older version will serve", onnx_path
            )
            return None
        return ModelRecord(metadata=metadata, onnx_path=onnx_path)

    def records(self, model_type: str, name: str) -> list[ModelRecord]:
        """Every valid committed version, candidates included, newest (by ``trained_at``, then version) first.

        The list is kept while the folder's pointer (``index.json``) is unchanged; the records a
        lookup returns are re-checked on disk (:meth:`_still_valid`), so a damaged file is still caught.
        """
        folder = self.folder(model_type, name)
        identity = _identity(folder / "index.json")
        cached = self._listed.get(folder)
        if cached is not None and identity is not None and cached[0] == identity:
            return cached[1]
        found = [r for v in self._index(folder) if (r := self._load_record(folder, v)) is not None]
        ordered = sorted(found, key=lambda r: (r.trained_at, r.version), reverse=True)
        if identity is not None:
            self._listed[folder] = (identity, ordered)
        return ordered

    def _still_valid(self, record: ModelRecord | None) -> bool:
        """Its metadata and ONNX files are the ones verified when the list was read."""
        if record is None:
            return True
        meta = _identity(record.onnx_path.with_suffix(".json"))
        onnx = _identity(record.onnx_path)
        return (
            meta is not None and onnx is not None
            and (str(record.onnx_path.with_suffix(".json")), meta[0], meta[1], meta[2]) in self._parsed
            and (str(record.onnx_path), onnx[1], onnx[2]) in self._verified
        )

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
        for attempt in range(2):
            served = newest = None
            for record in self.records(model_type, name):
                if limit is not None and record.trained_at > limit:
                    continue
                newest = newest or record
                if record.stage != "candidate":
                    served = record
                    break
            if self._still_valid(served) and self._still_valid(newest):
                break
            self._listed.pop(self.folder(model_type, name), None)  # a file changed: read the folder again
        return served, newest

    def find_training(self, model_type: str, name: str, training_key: str) -> ModelRecord | None:
        """A valid version trained on identical data with an identical config, if one exists."""
        for record in self.records(model_type, name):
            if record.metadata.get("training_key") == training_key:
                return record
        return None

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock, open(folder / ".lock", "a+b") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def publish(self, model_type: str, name: str, onnx_bytes: bytes, metadata: Mapping[str, Any]) -> ModelRecord:
        """Commit a new version: ONNX file, metadata, then the pointer; returns the verified record."""
        folder = self.folder(model_type, name)
        try:
            with self._locked(folder):
                committed = self._index(folder)
                on_disk = {int(m.group(1)) for p in folder.iterdir() if (m := _VERSION_FILE.match(p.name))}
                self._remove_orphans(folder, on_disk - set(committed))
                version = max([0, *committed, *on_disk]) + 1
                onnx_name = f"v{version:06d}.onnx"
                full = dict(metadata)
                full.update(
                    symbol=validate_symbol(name),
                    model_type=model_type,
                    version=version,
                    onnx_file=onnx_name,
                    sha256=hashlib.sha256(onnx_bytes).hexdigest(),
                )
                write_atomic(folder / onnx_name, onnx_bytes)
                write_atomic(folder / f"v{version:06d}.json", json.dumps(full, indent=2, sort_keys=True).encode())
                self._write_index(folder, [*committed, version])
                self._apply_retention(folder)
        except OSError as exc:
            raise RegistryError(f"{folder} › cannot write model: {exc}") from exc
        record = self._load_record(folder, version)
        if record is None:  # pragma: no cover - only if the disk lies
            raise RegistryError(f"{folder} › version {version} did not verify after writing")
        logger.info("registered %s (sha256 %s)", record.label, full["sha256"][:12])
        return record

    def _write_index(self, folder: Path, versions: list[int]) -> None:
        write_atomic(folder / "index.json", json.dumps({"versions": sorted(set(versions))}).encode())

    def _remove_orphans(self, folder: Path, versions: set[int]) -> None:
        """Files of versions never committed (a save that died), and stale temp files."""
        for path in folder.iterdir():
            match = _VERSION_FILE.match(path.name)
            if (match and int(match.group(1)) in versions) or path.name.startswith(".tmp-"):
                logger.info("removing leftover %s from an interrupted save", path)
                with contextlib.suppress(OSError):
                    path.unlink()

    def _apply_retention(self, folder: Path) -> None:
        committed = self._index(folder)
        if len(committed) <= self.keep_versions:
            return
        def order(version: int) -> tuple[str, int]:
            try:
                meta = json.loads((folder / f"v{version:06d}.json").read_text(encoding="utf-8"))
                return (str(pd.Timestamp(meta["trained_at"])), version)
            except (OSError, ValueError, KeyError):
                return ("", version)  # unreadable versions go first
        ranked = sorted(committed, key=order, reverse=True)
        keep, drop = ranked[: self.keep_versions], ranked[self.keep_versions :]
        self._write_index(folder, keep)  # pointer first, then files: never a dangling pointer
        for version in drop:
            for suffix in ("onnx", "json"):
                with contextlib.suppress(OSError):
                    (folder / f"v{version:06d}.{suffix}").unlink()
