"""What became of one input: a kind (an enum) and, for errors, what is wrong and what to do.

One vocabulary for every command, file and result: ``ok``, ``no face``, ``too small`` (holds no
face of the smallest size the detector looks for) and ``error: <what is wrong>; <what to do>``.
Files store ``str(status)``; ``Status.parse`` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class StatusKind(str, Enum):
    OK = "ok"
    NO_FACE = "no face"
    TOO_SMALL = "too small"
    ERROR = "error"  # the input could not be read at all


@dataclass(frozen=True)
class Status:
    kind: StatusKind
    detail: str = ""  # errors only: the reason, without the input's name (results carry that beside it)
    code: str = field(default="", compare=False)  # errors only: a stable word for the fault (ImageError.code)

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.detail}" if self.detail else self.kind.value

    @property
    def ok(self) -> bool:
        return self.kind is StatusKind.OK

    @property
    def is_error(self) -> bool:
        return self.kind is StatusKind.ERROR

    @classmethod
    def error(cls, detail: str, code: str = "") -> Status:
        return cls(StatusKind.ERROR, detail, code)

    @classmethod
    def parse(cls, text: str | Status) -> Status:
        """A status from its stored text (``str(status)``); unknown text is a ValueError naming the valid kinds."""
        if isinstance(text, Status):
            return text
        kind, _, detail = str(text).partition(": ")
        try:
            return cls(StatusKind(kind), detail)
        except ValueError:
            raise ValueError(f"unknown status {text!r}; valid: {', '.join(k.value for k in StatusKind)}") from None


OK = Status(StatusKind.OK)
NO_FACE = Status(StatusKind.NO_FACE)
TOO_SMALL = Status(StatusKind.TOO_SMALL)
