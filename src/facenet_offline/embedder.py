"""An embedder: a model spec plus a backend, turning uint8 RGB face crops into unit-length embeddings."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .choices import Choice
from .data.tensors import face_batch, pad_rows
from .runtime.base import Backend
from .weights import ModelSpec


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
    batch_bucket: int = 8  # runs are padded to a multiple of this many rows (bounds the shapes the runtime sees)
    # One run at a time: an OpenVINO infer request (and torch's thread settings) are not safe to share.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def embed(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """N faces (H x W x 3 uint8 RGB) -> N x D float32 embeddings."""
        if len(faces) == 0:
            return np.zeros((0, self.spec.embedding_dim), np.float32)
        return self.run(face_batch(faces, self.spec.input_size, self.spec.mean, self.spec.std))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """A ready N x 3 x H x W float32 input (see ``face_batch``) -> N x D embeddings.

        Padded to a multiple of ``batch_bucket`` rows: the number of faces per batch varies, and each
        new count would be a new shape for the runtime, whose memory would creep up over a long run.
        """
        padded = pad_rows(batch, self.batch_bucket)
        with self._lock:
            out = self.backend.run(padded)[0]
        return out[:len(batch)].astype(np.float32, copy=False)


def open_embedder(model: str = "casia-webface", backend: str = "onnxruntime", threads: int | None = None,
                  providers: Sequence[str] | None = None, weights_path: str | None = None,
                  precision: str = "fp32", calibration: str | None = None) -> Embedder:
    """Build (or take from the cache) the model and open it on the chosen backend.

    ``calibration`` (INT8 only) defaults to the build's default method.
    """
    kind = BackendName.parse(backend)
    if kind is BackendName.TORCH and precision != "fp32":
        raise ValueError(f"the torch backend runs fp32 only; use backend='onnxruntime' for {precision}")
    if kind is BackendName.TORCH:
        from .runtime.torch import TorchBackend
        from .weights.loader import load_facenet

        net = load_facenet(model, weights_path)
        return Embedder(net.spec, TorchBackend(net, threads), {
            "model": net.spec.name, "backend": "torch", "precision": "fp32", "weights_sha256": net.weights.sha256})
    from .build import BuildOptions, build_facenet

    built = build_facenet(BuildOptions(model=model, weights_path=weights_path, precision=precision,
                                       **({"calibration": calibration} if calibration else {})))
    if kind in (BackendName.OPENVINO, BackendName.OPENVINO_BF16):
        from .runtime.openvino import OpenVinoBackend

        engine = OpenVinoBackend(built.path, threads, arithmetic="bf16" if kind is BackendName.OPENVINO_BF16 else "f32")
    else:
        from .runtime.onnxruntime import OnnxRuntimeBackend

        engine = OnnxRuntimeBackend(built.path, providers, threads)
    return Embedder(built.spec, engine, {
        "model": built.spec.name, "backend": kind.value, "precision": built.record["precision"],
        "weights_sha256": built.record["weights"]["sha256"], "onnx_sha256": built.record["files"]["facenet"],
        **({"calibration": built.record["calibration"]} if built.record.get("calibration") else {})})
