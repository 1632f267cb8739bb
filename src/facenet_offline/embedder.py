"""An embedder: a model spec plus a backend, turning uint8 RGB face crops into unit-length embeddings.

``engines.open_embedder`` builds the model into the cache and opens it here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .choices import Choice
from .data.tensors import face_batch, row_pieces
from .runtime.base import Backend
from .weights import DEFAULT_MODEL, ModelSpec


class BackendName(Choice):
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    OPENVINO_BF16 = "openvino-bf16"  # the float32 model in OpenVINO's bfloat16 arithmetic (AMX CPUs)
    TORCH = "torch"


@dataclass
class Embedder:
    """Embeds batches of face crops of any size (resized to the model's input size)."""

    spec: ModelSpec
    backend: Backend
    description: dict
    batch_bucket: int = 8  # runs are a multiple of this many rows, or 4, 2 or 1 (bounds the shapes the runtime sees)
    # The longest run: the runtime's memory grows with it and keeps what it grew (docs/engine-choices.md),
    # so a batch of many faces (a service's batch of group photos) runs in pieces rather than raising it.
    max_rows: int = 32
    # One run at a time: an OpenVINO infer request (and torch's thread settings) are not safe to share.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self):
        # The input convention is part of what an embedding depends on (caches key on the description).
        self.description = {**self.description, "input": self.spec.norm.key()}

    def embed(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """N faces (H x W x 3 uint8 RGB) -> N x D float32 embeddings."""
        if len(faces) == 0:
            return np.zeros((0, self.spec.embedding_dim), np.float32)
        return self.run(face_batch(faces, self.spec.input_size, self.spec.norm))

    def warm(self) -> None:
        """One run of ``max_rows`` blank faces: the runtime takes the memory of its longest run now rather than
        at the first batch of that many faces (a service's memory then starts where it stays)."""
        size = self.spec.input_size
        self.run(np.zeros((self.max_rows, 3, size, size), np.float32))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """A ready N x 3 x H x W float32 input (see ``face_batch``) -> N x D embeddings.

        Run in pieces of ``row_pieces`` rows, at most ``max_rows`` each: the number of faces per batch
        varies, and each new count would be a new shape for the runtime, whose memory would creep up over a
        long run. Pieces rather than padding: padded rows cost as much as real ones.
        """
        outs, start = [], 0
        with self._lock:
            for rows in row_pieces(len(batch), self.batch_bucket, self.max_rows):
                outs.append(self.backend.run(batch[start:start + rows])[0])
                start += rows
        return np.concatenate(outs).astype(np.float32, copy=False)


def described(spec: ModelSpec, build: dict, backend: str) -> dict:
    """An embedder's description: its build's, its backend and its input convention (what caches key on)."""
    return {**build, "backend": backend, "input": spec.norm.key()}


def embedder_on_file(path: str | Path, spec: ModelSpec, description: dict, backend: str = "onnxruntime",
                     threads: int | None = None, providers: Sequence[str] | None = None) -> Embedder:
    """FaceNet's ONNX file opened on ``backend`` (onnxruntime, openvino or openvino-bf16).

    Only the chosen runtime is imported, so the imports sit inside on purpose.
    """
    kind = BackendName.parse(backend)
    if kind is BackendName.TORCH:
        raise ValueError("the torch backend runs the torch module: use embedder_on_torch")
    if kind in (BackendName.OPENVINO, BackendName.OPENVINO_BF16):
        from .runtime.openvino import OpenVinoBackend

        engine = OpenVinoBackend(path, threads, arithmetic="bf16" if kind is BackendName.OPENVINO_BF16 else "f32")
    else:
        from .runtime.onnxruntime import OnnxRuntimeBackend

        engine = OnnxRuntimeBackend(path, providers, threads)
    return Embedder(spec, engine, described(spec, description, kind.value))


def embedder_on_torch(model: str = DEFAULT_MODEL, weights_path: str | None = None,
                      threads: int | None = None) -> Embedder:
    """FaceNet's torch module (the float32 reference) as an embedder."""
    from .runtime.torch import TorchBackend
    from .weights.loader import load_facenet

    net = load_facenet(model, weights_path)
    return Embedder(net.spec, TorchBackend(net, threads), {
        "model": net.spec.name, "backend": "torch", "precision": "fp32", "weights_sha256": net.weights.sha256})
