"""What a registered model version must be before it is served: the on-disk contract of a version.

A version is ``vNNNNNN.json`` (metadata) beside ``vNNNNNN.onnx`` (the graph). The registry serves
it only when every check here passes; otherwise it skips that version with a warning and an older
one serves, per symbol — a broken file never stops the other symbols of a command.

- **Metadata**: a JSON object with the documented keys and types; its ``version``, ``symbol`` and
  ``model_type`` match its file name and folder; ``onnx_file`` is the version's own file.
- **The as-of rule**: ``data_end`` and ``train_end`` (the training window's end) are not after
  ``trained_at``, the time from which the version may serve.
- **The graph**: input ``features`` of shape ``(batch, window, n_features)`` matching the
  metadata, outputs ``probabilities`` and ``expected_return``.
- **Provenance**: the export embeds the symbol, model type, ``trained_at`` and ``data_end`` in the
  ONNX file itself. Another symbol's file, or a ``trained_at`` moved earlier than the one the model
  was exported with, is refused even when the metadata's sha256 was updated to match. (Stamping a
  model *later* is harmless: it only serves less.) A writer who rewrites the graph, its embedded
  values and the metadata consistently is not detectable here; protect the registry folder with
  file permissions.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from lstm_plugin.core.errors import RegistryError
from lstm_plugin.core.statuses import ModelType, as_model_type
from lstm_plugin.model.onnx_wire import read_signature

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: The largest ONNX file a version may be: well above the largest single network the config describes (8
#: layers of 1,024 units, about 270 MB); a bigger file is refused before it is read, never loaded.
MAX_ONNX_BYTES = 1 << 30
INPUT_NAME = "features"
OUTPUT_NAMES = ("probabilities", "expected_return")
STAGES = ("production", "candidate", "discarded")
REQUIRED_KEYS = (
    "symbol",
    "model_type",
    "version",
    "trained_at",
    "sha256",
    "onnx_file",
    "features",
    "window",
    "horizon",
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class _OptionalMetadata(TypedDict, total=False):
    """Keys a version's metadata may lack: written by newer versions of the trainer, or by the registry."""

    created_at: str
    train_start: str | None
    train_end: str | None
    data_end: str
    direction_threshold: float
    classes: list[str]
    config_hash: str
    training_key: str
    model_config: dict[str, Any]
    metrics: dict[str, Any]
    ensemble: list[dict[str, Any]]  # an ensemble's members with their weights ([] for one network)
    training_device: str
    torch_threads: int
    scaler: dict[str, Any]
    versions: dict[str, Any]
    symbols: list[str]
    worker: str
    stage: str  # production | candidate | discarded
    stage_reason: str
    stage_rule: str  # the rule that decided it (lstm_plugin.training.policy.PROMOTION_RULES)
    stage_basis: dict[str, Any]  # what the decision compared: the served model's sha256, the paired gap
    registry_version: int  # a run's view: the folder's own version number (lstm_plugin.serving.run_registry)


class ModelMetadata(_OptionalMetadata):
    """A version's ``vNNNNNN.json``: the keys every served version has (:data:`REQUIRED_KEYS`), and more."""

    symbol: str
    model_type: ModelType
    version: int
    trained_at: str
    sha256: str
    onnx_file: str
    features: list[str]
    window: int
    horizon: int


#: ONNX element types by number (``onnx.TensorProto.DataType``), for messages
_ELEMENT_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
    16: "bfloat16",
}
FLOAT32 = 1


@dataclass(frozen=True)
class OnnxSignature:
    """What serving needs to know of a graph: input shape and type, output names, embedded provenance,
    and the tensors that would be read from other files."""

    inputs: Mapping[str, tuple[int | None, ...]]
    outputs: tuple[str, ...]
    properties: Mapping[str, str]
    input_types: Mapping[str, int] = field(default_factory=dict)
    external: tuple[str, ...] = ()


def onnx_signature(blob: bytes) -> OnnxSignature | str:
    """The graph's signature, or why the bytes are not a readable ONNX model (read from the wire format:
    :mod:`lstm_plugin.model.onnx_wire`)."""
    try:
        wire = read_signature(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"not a readable ONNX model ({exc})"
    return OnnxSignature(wire.inputs, wire.outputs, wire.properties, wire.input_types, wire.external)


def _timestamp(value: Any) -> pd.Timestamp | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if stamp is pd.NaT:
        return None
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_metric(value: Any) -> bool:
    """A number (NaN included: a metric that had nothing to measure) or ``None``."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def metadata_problem(metadata: Any, model_type: ModelType, name: str, version: int) -> str | None:
    """Why ``metadata`` (parsed ``vNNNNNN.json``) cannot describe version ``version`` of
    ``model_type/name``, or ``None`` when it can."""
    if not isinstance(metadata, dict):
        return f"metadata is not a JSON object (got: {type(metadata).__name__})"
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        return f"metadata lacks {', '.join(missing)}"
    if metadata["version"] != version or not _is_int(metadata["version"], 1, 999_999):
        return f"metadata says version {metadata['version']!r} but its file is v{version:06d}"
    if metadata["symbol"] != name:
        return f"metadata is for symbol {metadata['symbol']!r}, not {name}"
    if metadata["model_type"] != model_type:
        return f"metadata is for a {metadata['model_type']!r} model, not {model_type}"
    if metadata["onnx_file"] != f"v{version:06d}.onnx":
        return f"onnx_file must be v{version:06d}.onnx (got: {metadata['onnx_file']!r})"
    if not (isinstance(metadata["sha256"], str) and _SHA256.match(metadata["sha256"])):
        return "sha256 is not a hex digest"
    trained_at = _timestamp(metadata["trained_at"])
    if trained_at is None:
        return f"trained_at is not a date (got: {metadata['trained_at']!r})"
    if not _is_int(metadata["window"], 2, 512) or not _is_int(metadata["horizon"], 1, 252):
        return f"window and horizon must be integers (got: {metadata['window']!r}, {metadata['horizon']!r})"
    features = metadata["features"]
    if not (isinstance(features, list) and features and all(isinstance(f, str) for f in features)):
        return "features must be a non-empty list of names"
    metrics = metadata.get("metrics", {})
    if not isinstance(metrics, dict) or not all(
        _is_metric(metrics.get(k)) for k in ("reliability", "quality", "ic")
    ):
        return "metrics must be an object whose reliability, quality and ic are numbers"
    if metadata.get("stage", "production") not in STAGES:
        return f"stage must be one of {', '.join(STAGES)} (got: {metadata.get('stage')!r})"
    for key in ("data_end", "train_end"):
        if key in metadata:
            end = _timestamp(metadata[key])
            if end is None:
                return f"{key} is not a date (got: {metadata[key]!r})"
            if end > trained_at:
                return (
                    f"{key} {end:%Y-%m-%d} is after trained_at {trained_at:%Y-%m-%d}: "
                    "the model would serve before its data existed"
                )
    return None


def signature_problem(signature: OnnxSignature, metadata: Mapping[str, Any]) -> str | None:
    """Why the graph does not match its (already checked) metadata, or ``None``."""
    if signature.external:
        return (
            f"the graph reads {', '.join(signature.external[:3])} from a file outside the model; the "
            "registry writes self-contained models only, so a version that names another file is refused"
        )
    shape = signature.inputs.get(INPUT_NAME)
    expected = (int(metadata["window"]), len(metadata["features"]))
    if shape is None:
        return f"the graph has no input named {INPUT_NAME!r} (has: {', '.join(signature.inputs) or 'none'})"
    elem_type = signature.input_types.get(INPUT_NAME, FLOAT32)
    if elem_type != FLOAT32:
        name = _ELEMENT_TYPES.get(elem_type, f"element type {elem_type}")
        return f"the graph's input {INPUT_NAME!r} is {name}, not the float32 features serving feeds it"
    if len(shape) != 3 or tuple(shape[1:]) != expected:
        wanted = f"(batch, {expected[0]}, {expected[1]})"
        return f"the graph's input has shape {shape}, not {wanted} as the metadata says"
    if not set(OUTPUT_NAMES) <= set(signature.outputs):
        return f"the graph's outputs are {', '.join(signature.outputs)}, not {', '.join(OUTPUT_NAMES)}"
    embedded = signature.properties
    for key in ("symbol", "model_type"):
        if key in embedded and embedded[key] != metadata[key]:
            return f"the ONNX file was exported for {key} {embedded[key]!r}, not {metadata[key]!r}"
    trained_at = _timestamp(metadata["trained_at"])
    exported_at = _timestamp(embedded.get("trained_at"))
    if "trained_at" in embedded and (
        exported_at is None or (trained_at is not None and trained_at < exported_at)
    ):
        return (
            f"trained_at {metadata['trained_at']} is earlier than the {embedded['trained_at']} the model was "
            "exported with (it would serve before it was trained)"
        )
    data_end = _timestamp(embedded.get("data_end"))
    if "data_end" in embedded and (data_end is None or (trained_at is not None and data_end > trained_at)):
        end, trained = embedded["data_end"], metadata["trained_at"]
        return f"the model was trained on data up to {end}, after its trained_at {trained}"
    return None


@dataclass(frozen=True)
class ModelRecord:
    """One verified, committed model version."""

    metadata: ModelMetadata
    onnx_path: Path

    @property
    def version(self) -> int:
        return int(self.metadata["version"])

    @property
    def model_type(self) -> ModelType:
        return as_model_type(self.metadata["model_type"])

    @property
    def symbol(self) -> str:
        return str(self.metadata["symbol"])

    @functools.cached_property
    def trained_at(self) -> pd.Timestamp:
        return pd.Timestamp(self.metadata["trained_at"])

    @functools.cached_property
    def key(self) -> tuple[str, str, int, str]:
        """Identity for caches: type, name, version and content hash."""
        return (self.model_type, self.symbol, self.version, str(self.metadata["sha256"]))

    @property
    def label(self) -> str:
        return f"{self.model_type}/{self.symbol}/v{self.version}"

    @property
    def stage(self) -> str:
        """``production`` (served), ``candidate`` (shelved: it did not beat the served model) or ``discarded``
        (set aside by hand: ``lstm-plugin promote --discard``; never served nor offered)."""
        return str(self.metadata.get("stage", "production"))

    @property
    def reliability(self) -> float | None:
        value = self.metadata.get("metrics", {}).get("reliability")
        return None if value is None else float(value)

    def read_bytes(self) -> bytes:
        """The ONNX bytes, re-verified against the recorded sha256 (and size, before they are read)."""
        if self.onnx_path.stat().st_size > MAX_ONNX_BYTES:
            raise RegistryError(
                f"{self.onnx_path} › over {MAX_ONNX_BYTES} bytes (file changed after it was verified)"
            )
        blob = self.onnx_path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != self.metadata["sha256"]:
            raise RegistryError(f"{self.onnx_path} › sha256 mismatch (file changed after it was verified)")
        return blob
