"""Parsing of user choices into enums: an unknown value raises ValueError listing the valid ones."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

E = TypeVar("E", bound=Enum)


def parse_choice(kind: type[E], value: str | E, what: str) -> E:
    """``kind(value)``, or a ValueError that names ``what`` and lists every valid value."""
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"Unknown {what} {value!r}. Valid: {', '.join(str(m.value) for m in kind)}.") from None
