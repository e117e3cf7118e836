"""Validation errors of the config as one-line breadcrumbs: ``dotted.path › rule (got: value)``.

pydantic's messages are rewritten in the words of the config's documentation (docs/configuration.md):
an unknown key suggests the closest known one, a bound names both ends, as the schema does.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

_FRIENDLY = {
    "missing": "is required",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "finite_number": "must be a finite number",
}
_BOUND_ERRORS = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")


def describe(error: ErrorDetails, model: type[BaseModel]) -> tuple[str, str]:
    """The dotted path of one validation error and its rule in plain words."""
    path = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        section = _model_at(model, error["loc"][:-1])
        known = [] if section is None else [f.alias or name for name, f in section.model_fields.items()]
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        return path, "unknown key" + (
            f" (did you mean '{close[0]}'?)" if close else f"; allowed: {', '.join(known)}"
        )
    if kind == "literal_error":
        return path, "must be one of " + error["ctx"]["expected"]
    if kind == "value_error":
        return path, str(error["ctx"]["error"])
    if kind in _BOUND_ERRORS:
        return path, _bounds_rule(model, error)
    return path, _FRIENDLY.get(kind, error["msg"].lower())


def format_value(value: Any) -> str:
    """The value as the user wrote it (JSON), cut to 60 characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bounds_rule(model: type[BaseModel], error: ErrorDetails) -> str:
    """``must be between 0 and 1`` from the field's own constraints (the ones in the schema)."""
    section = _model_at(model, error["loc"][:-1])
    field = None if section is None else section.model_fields.get(str(error["loc"][-1]))
    metadata = getattr(field, "metadata", [])
    low = next((m.ge for m in metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in metadata if hasattr(m, "le")), None)
    if low is None or high is None:  # every bounded field has both (a test checks the schema)
        return error["msg"].lower()
    return f"must be between {_number(low)} and {_number(high)}"


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The nested section a location leads to (``None`` through a list, a union or a plain value)."""
    for part in loc:
        annotation = getattr(model.model_fields.get(str(part)), "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
