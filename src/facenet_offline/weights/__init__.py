"""Weights: the registry of known models, where their files are, and importers for their formats."""

from .loader import load_facenet, load_state
from .registry import DEFAULT_MODEL, MODELS, ModelSpec, WeightFormat, WeightSource, get_spec
from .sources import ResolvedWeights, resolve_weights

__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "ResolvedWeights", "WeightFormat", "WeightSource",
           "get_spec", "load_facenet", "load_state", "resolve_weights"]
