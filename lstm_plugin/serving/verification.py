"""Reading one stored model version and proving it sound, with caches so each file is checked once.

A version serves only when its metadata passes :func:`~lstm_plugin.model.model_files.metadata_problem`,
its ONNX file is a regular file whose sha256 matches, and the graph's signature matches the
metadata. The sha256 is cached by the file's :class:`~lstm_plugin.core.files.FileStamp` and the
signature by the sha256, so a version is hashed and parsed once, and again only when its file
changes. Each problem is warned about once per file state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat as stat_module
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from lstm_plugin.core.files import FileStamp, identity
from lstm_plugin.core.statuses import ModelType
from lstm_plugin.model.model_files import (
    MAX_ONNX_BYTES,
    ModelRecord,
    OnnxSignature,
    metadata_problem,
    onnx_signature,
    signature_problem,
)

logger = logging.getLogger(__name__)
_Value = TypeVar("_Value")

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

_CACHE_LIMIT = 10_000  # long runs: versions come and go; caches start over past this


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file read a MiB at a time: hashing a large file costs no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class VersionReader:
    """Verified :class:`ModelRecord` s from version files; safe to share within one registry."""

    def __init__(self) -> None:
        self._hashed: dict[FileStamp, str] = {}  # ONNX file -> sha256
        self._signatures: dict[str, OnnxSignature | str] = {}  # sha256 -> graph signature or why unreadable
        self._parsed: dict[FileStamp, Any] = {}  # metadata file -> parsed JSON
        self._warned: dict[tuple[Any, ...], bool] = {}
        self._set_aside: dict[str, str] = {}  # sha256 -> why onnxruntime cannot serve those bytes

    def set_aside(self, record: ModelRecord, reason: str) -> None:
        """Serve nothing with ``record``'s bytes again in this process: onnxruntime could not load them, or
        their output was not finite. Warned once; older versions serve instead."""
        self._set_aside[str(record.metadata["sha256"])] = reason
        self.skip(record.onnx_path, reason)

    def usable(self, record: ModelRecord) -> bool:
        """Whether ``record`` has not been :meth:`set_aside`."""
        return not self._set_aside or str(record.metadata["sha256"]) not in self._set_aside

    def known_signature(self, sha256: str, onnx_bytes: bytes) -> OnnxSignature | str:
        """The signature of bytes about to be written (cached: the read after the write parses nothing)."""
        return self.remember(self._signatures, sha256, onnx_signature(onnx_bytes))

    def warn_once(self, key: tuple[Any, ...], message: str, *args: Any) -> None:
        if key not in self._warned:
            self.remember(self._warned, key, True)
            logger.warning(message, *args)

    def _metadata(self, meta_path: Path) -> Any:
        """Parsed metadata, cached by the file's identity (a rewrite or replacement is re-read)."""
        key = FileStamp.of(meta_path, os.stat(meta_path))
        if key not in self._parsed:
            return self.remember(self._parsed, key, json.loads(meta_path.read_text(encoding="utf-8")))
        return self._parsed[key]

    def skip(self, path: Path, reason: str) -> None:
        self.warn_once(
            ("skip", str(path), identity(path), reason),
            "skipping %s: %s; an older version will serve",
            path,
            reason,
        )

    def load_record(self, folder: Path, model_type: ModelType, name: str, version: int) -> ModelRecord | None:
        """The verified record of one version, or ``None`` (with a warning) when any check fails."""
        meta_path = folder / f"v{version:06d}.json"
        try:
            if os.path.islink(meta_path):
                raise ValueError("a symbolic link inside the registry")
            metadata = self._metadata(meta_path)
        except FileNotFoundError:
            self.skip(meta_path, "the metadata file is missing (removed while the folder was read)")
            return None
        except (OSError, ValueError, RecursionError) as exc:
            self.skip(meta_path, f"unreadable metadata ({exc})")
            return None
        problem = metadata_problem(metadata, model_type, name, version)
        if problem:
            self.skip(meta_path, problem)
            return None
        onnx_path = folder / metadata["onnx_file"]
        try:
            info = os.lstat(onnx_path)
        except OSError:
            self.skip(onnx_path, "ONNX file is missing")
            return None
        if not stat_module.S_ISREG(info.st_mode):
            self.skip(
                onnx_path,
                "not a regular file" + (" (a symbolic link)" if stat_module.S_ISLNK(info.st_mode) else ""),
            )
            return None
        problem = self._verify(onnx_path, info, metadata)
        if problem:
            self.skip(onnx_path, problem)
            return None
        return ModelRecord(metadata=metadata, onnx_path=onnx_path)

    def _verify(self, onnx_path: Path, info: os.stat_result, metadata: Mapping[str, Any]) -> str | None:
        """What is wrong with the ONNX file against its metadata (sha256, then the graph), if anything.

        The digest is cached by the file's identity and the graph's signature by its digest, so a
        version is hashed and parsed once, and again only when its file changes.
        """
        if info.st_size > MAX_ONNX_BYTES:
            return (
                f"{info.st_size / 2**30:.1f} GiB, over the {MAX_ONNX_BYTES / 2**30:.0f} GiB a version may be"
            )
        cache_key = FileStamp.of(onnx_path, info)
        digest = self._hashed.get(cache_key)
        if digest is None:
            digest = self.remember(self._hashed, cache_key, file_sha256(onnx_path))
        if digest != metadata["sha256"]:
            return "sha256 mismatch (truncated or modified)"
        signature = self._signatures.get(digest)
        if signature is None:
            signature = self.remember(self._signatures, digest, onnx_signature(onnx_path.read_bytes()))
        return signature if isinstance(signature, str) else signature_problem(signature, metadata)

    @staticmethod
    def remember(cache: dict[Any, Any], key: Any, value: _Value) -> _Value:
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        cache[key] = value
        return value

    def still_valid(self, record: ModelRecord | None) -> bool:
        """Its metadata and ONNX files are the ones verified when the list was read."""
        if record is None:
            return True
        meta_path = record.onnx_path.with_suffix(".json")
        meta, onnx = identity(meta_path), identity(record.onnx_path)
        return (
            meta is not None
            and onnx is not None
            and meta in self._parsed
            and self._hashed.get(onnx) == record.metadata["sha256"]
        )
