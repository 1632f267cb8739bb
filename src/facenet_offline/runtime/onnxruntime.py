"""ONNX Runtime backend: CPU by default; any installed execution provider can be asked for."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


def make_session(model_path: str | os.PathLike, providers: Sequence[str] | None = None,
                 threads: int | None = None, varying_shapes: bool = False) -> ort.InferenceSession:
    """An inference session; an unavailable provider raises ValueError listing the available ones."""
    providers = list(providers or DEFAULT_PROVIDERS)
    available = ort.get_available_providers()
    unknown = [p for p in providers if p not in available]
    if unknown:
        raise ValueError(f"ONNX Runtime providers not available here: {', '.join(unknown)}. "
                         f"Available: {', '.join(available)}.")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Memory patterns are planned and kept per input shape: right for fixed shapes, but a model fed
    # ever-new shapes (PNet over photos of mixed sizes) grows by them without bound.
    options.enable_mem_pattern = not varying_shapes
    # Not set: "session.set_denormal_as_zero" was about 13% faster for FaceNet here, but it flips the
    # calling thread's floating-point flags for the whole process (numpy and hypothesis then see
    # denormals flushed), which a library must not do to its users.
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # Idle intra-op threads sleep rather than spin: every caller here runs the model beside threads of its
    # own (decoding, a service's requests), which spinning threads starve (docs/engine-choices.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path), options, providers=providers)


class OnnxRuntimeBackend:
    """Runs an ONNX model with one input; input and output names are read from the session."""

    def __init__(self, model_path: str | os.PathLike | None = None, providers: Sequence[str] | None = None,
                 threads: int | None = None, session: ort.InferenceSession | None = None,
                 varying_shapes: bool = False):
        if session is None:
            if model_path is None:
                raise ValueError("OnnxRuntimeBackend needs a model_path or a session")
            session = make_session(model_path, providers, threads, varying_shapes)
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]
        self.name = f"onnxruntime[{','.join(p.replace('ExecutionProvider', '') for p in session.get_providers())}]"

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(batch, np.float32)}))
