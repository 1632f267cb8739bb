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


class Choice(str, Enum):
    """A string enum for a user choice; ``parse`` names the choice and lists the valid values on error."""

    @classmethod
    def parse(cls, value: str | Choice) -> Choice:
        words = "".join(f" {c.lower()}" if c.isupper() else c for c in cls.__name__).strip()
        return parse_choice(cls, value, words)


class Precision(Choice):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class CalibrationMethod(Choice):
    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


# The calibration whose INT8 embeddings come closest to float32 on held-out faces (model_cache.calibration.HELD_OUT,
# measured by the precision benchmark, docs/precision.md). Chosen on fidelity, never on LFW accuracy.
DEFAULT_CALIBRATION = CalibrationMethod.PERCENTILE
