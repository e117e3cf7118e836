"""Someone else's text in our one-line messages: escaped and cut short, so a CSV cell of 100 NUL bytes or an
exception that quotes a whole file still makes one readable line."""

from __future__ import annotations

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` (NUL bytes and control characters escaped), at most ``limit`` characters; a long
    string is cut between characters, never inside an escape (``'\\x00\\x00...'``)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if not isinstance(value, str):
        return text[: limit - 3] + "..."
    keep = len(value)
    while keep and len(repr(value[:keep])) > limit - 3:
        keep = max(0, min(keep - 1, keep * (limit - 3) // len(repr(value[:keep]))))
    head = repr(value[:keep])
    return head[:-1] + "..." + head[-1]


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type when it has none), cut to ``limit``."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def one_line(text: str, limit: int = 300) -> str:
    """``text`` with its line breaks and runs of spaces folded into single spaces, cut to ``limit``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
