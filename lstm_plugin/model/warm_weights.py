"""A core's weights as text in its ONNX file, so a retrain can start from them (``model.warm_start``).

The ONNX graph of a recurrent network holds its weights rearranged (gates reordered, biases joined), so
reading them back from it would be fragile; a model trained with ``warm_start`` keeps its core's
``state_dict`` as a model property instead: JSON of each tensor's shape and its little-endian float32
bytes in base64, keys sorted — the same weights give the same text, so the same ONNX bytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: the ONNX model property that holds them
WEIGHTS_PROPERTY = "core_weights"


def encode_weights(state: Mapping[str, Any]) -> str:
    """``state`` (tensors or arrays by name) as deterministic text."""
    payload = {}
    for name in sorted(state):
        value = state[name]
        array = np.ascontiguousarray(
            (value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)), dtype="<f4"
        )
        payload[name] = {"shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode()}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def decode_weights(text: str) -> dict[str, np.ndarray]:
    """The arrays of :func:`encode_weights`; ``ValueError`` when the text is not such weights."""
    try:
        payload = json.loads(text)
        return {
            name: np.frombuffer(base64.b64decode(item["data"]), dtype="<f4").reshape(item["shape"]).copy()
            for name, item in payload.items()
        }
    except (TypeError, KeyError, AttributeError, json.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"not a network's weights: {exc}") from None


def load_matching(core: Any, weights: Mapping[str, np.ndarray] | None) -> bool:
    """Load ``weights`` into ``core`` (a ``torch.nn.Module``) when they name the same tensors with the same
    shapes; ``False``, leaving ``core`` as it is, when they do not (another architecture: a cold start)."""
    import torch

    if not weights:
        return False
    state = core.state_dict()
    if set(state) != set(weights) or any(tuple(state[k].shape) != weights[k].shape for k in state):
        return False
    core.load_state_dict({k: torch.as_tensor(weights[k], dtype=state[k].dtype) for k in state})
    return True
