"""A net's input convention, in a module of its own so that the model registry can name it without numpy or cv2."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputNorm:
    """How a net wants its pixels: channel order, then fixed standardisation ``(x - mean) / std`` or
    davidsandberg/facenet's per-image prewhitening ``(x - mean(x)) / max(std(x), 1 / sqrt(x.size))``."""

    mean: float = 127.5
    std: float = 128.0
    prewhiten: bool = False
    bgr: bool = False

    def key(self) -> dict:
        """What a cached result made through this input depends on."""
        return {"colour": "BGR" if self.bgr else "RGB",
                "standardisation": "prewhiten" if self.prewhiten else f"(x - {self.mean:g}) / {self.std:g}"}

    def describe(self) -> str:
        how = ("prewhitened per image, (x - mean(x)) / max(std(x), 1 / sqrt(x.size))" if self.prewhiten
               else f"standardised (x - {self.mean:g}) / {self.std:g}")
        return f"{'BGR' if self.bgr else 'RGB'}, float32, NCHW, {how}"
