"""JSON out of the package: finite numbers only, so every file and ``--json`` output is strict JSON.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON and which most readers
(browsers, ``jq``, other languages) reject. A number that is not finite is written as ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf) replaced by ``None`` and numpy scalars made plain."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` that never writes ``NaN``/``Infinity``; other objects (timestamps) become strings."""
    return json.dumps(finite(value), allow_nan=False, default=str, **options)
