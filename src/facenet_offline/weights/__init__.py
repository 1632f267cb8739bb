"""Weights: the registry of known models, where their files are, and (``weights.loader``) importers for their formats.

The loader imports torch and onnx, so it is not imported here: looking a model up stays quick.
"""

from .registry import (
                       DEFAULT_MODEL,
                       MODELS,
                       MTCNN,
                       DetectorSpec,
                       ModelSpec,
                       OperatingPoint,
                       WeightFormat,
                       WeightSource,
                       get_spec,
)
from .sources import ResolvedWeights, resolve_detector_weights, resolve_weights

__all__ = ["DEFAULT_MODEL", "MODELS", "MTCNN", "DetectorSpec", "ModelSpec", "OperatingPoint", "ResolvedWeights",
           "WeightFormat", "WeightSource", "get_spec", "resolve_detector_weights", "resolve_weights"]
