"""Weights: the registry of known models, where their files are, and importers for their formats."""

from .loader import load_facenet, load_mtcnn, load_state
from .registry import DEFAULT_MODEL, MODELS, MTCNN, DetectorSpec, ModelSpec, WeightFormat, WeightSource, get_spec
from .sources import ResolvedWeights, resolve_detector_weights, resolve_weights

__all__ = ["DEFAULT_MODEL", "MODELS", "MTCNN", "DetectorSpec", "ModelSpec", "ResolvedWeights", "WeightFormat",
           "WeightSource", "get_spec", "load_facenet", "load_mtcnn", "load_state", "resolve_detector_weights",
           "resolve_weights"]
