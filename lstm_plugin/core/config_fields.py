"""The building blocks of the config's sections: bounded field types and the strict, frozen base model.

Bounds are ``Field(ge=, le=)`` so pydantic checks them and writes them into the JSON Schema
(``minimum``/``maximum``), where editors show them (docs/configuration.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lstm_plugin.core.data import SYMBOL_RULE, validate_symbol
from lstm_plugin.core.errors import SymbolError

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def bounded(low: float, high: float) -> Any:
    """Bounds pydantic checks and writes into the JSON Schema (``minimum``/``maximum``), so editors see
    them."""
    return Field(ge=low, le=high)


def _symbol(value: str) -> str:
    try:
        return validate_symbol(value)
    except SymbolError:
        raise ValueError(SYMBOL_RULE) from None


#: Upper bounds that only stop typing errors (``1e400``, a few zeros too many) from becoming
#: overflows deep inside a run; no sensible setting comes near them.
DAYS = 36_500
SECONDS = 366 * 86_400
COUNT = 100_000
PRIORITY = 100_000
#: Most of the samples validation and test may take together.
MAX_HELD_OUT = 0.8


def no_repeats(values: list[str]) -> list[str]:
    """A list of symbols names each once (``AAPL`` twice is a typing error, not a double weight)."""
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"lists {', '.join(repeated)} more than once")
    return values


Symbol = Annotated[str, AfterValidator(_symbol)]
Fraction = Annotated[float, bounded(0, 1)]
Days = Annotated[int, bounded(1, DAYS)]
Seconds = Annotated[int, bounded(0, SECONDS)]
Count = Annotated[int, bounded(1, COUNT)]
Threads = Annotated[int, bounded(0, 1024)]
Priority = Annotated[int, bounded(-PRIORITY, PRIORITY)]


class Section(BaseModel):
    """A config section: unknown keys refused, types strict, no NaN or infinity, frozen once built."""

    model_config = ConfigDict(
        extra="forbid", strict=True, validate_default=True, allow_inf_nan=False, frozen=True
    )
