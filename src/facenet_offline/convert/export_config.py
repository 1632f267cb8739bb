"""How a torch module becomes an ONNX file: the settings a build's cache key holds (no torch here, so a
cache lookup stays light)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ExportConfig:
    """How a module becomes an ONNX file."""
    input_names: tuple[str, ...] = ("input",)
    output_names: tuple[str, ...] = ("embeddings",)
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None
    opset: int = DEFAULT_OPSET
    simplify: bool = True
