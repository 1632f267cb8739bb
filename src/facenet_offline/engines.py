"""The engines: the models built into the cache (``build``) and opened on a runtime, ready to detect and embed."""

from __future__ import annotations

from collections.abc import Sequence

from .detect import MTCNNConfig, MTCNNDetector, detector_on_files, detector_on_torch
from .detect.runtimes import check_backend
from .embedder import BackendName, Embedder, described, embedder_on_file, embedder_on_torch
from .model_cache import BuildOptions, DetectorBuildOptions, build_facenet, build_mtcnn
from .weights import DEFAULT_MODEL


def open_embedder(model: str = DEFAULT_MODEL, backend: str = "onnxruntime", threads: int | None = None,
                  providers: Sequence[str] | None = None, weights_path: str | None = None,
                  precision: str = "fp32", calibration: str | None = None) -> Embedder:
    """FaceNet built (or taken from the cache) at ``precision`` and opened on ``backend``.

    ``calibration`` (INT8 only) defaults to the build's default method.
    """
    kind = BackendName.parse(backend)
    if kind is BackendName.TORCH:
        if precision != "fp32":
            raise ValueError(f"the torch backend runs fp32 only; use backend='onnxruntime' for {precision}")
        return embedder_on_torch(model, weights_path, threads)
    built, description = build_embedder(model, weights_path, precision, calibration)
    return embedder_on_file(built.path, built.spec, description, kind.value, threads, providers)


def build_embedder(model: str = DEFAULT_MODEL, weights_path: str | None = None, precision: str = "fp32",
                   calibration: str | None = None):
    """FaceNet built into the cache (or found there), and its build's description (``embedder_on_file`` opens them)."""
    built = build_facenet(BuildOptions(model=model, weights_path=weights_path, precision=precision,
                                       **({"calibration": calibration} if calibration else {})))
    description = {"model": built.spec.name, "precision": built.record["precision"],
                   "weights_sha256": built.record["weights"]["sha256"], "onnx_sha256": built.record["files"]["facenet"],
                   **({"calibration": built.record["calibration"]} if built.record.get("calibration") else {})}
    return built, description


def embedder_description(model: str = DEFAULT_MODEL, backend: str = "onnxruntime", weights_path: str | None = None,
                         precision: str = "fp32", calibration: str | None = None) -> tuple[dict, int]:
    """(description, embedding size) of the embedder ``open_embedder`` would open, without opening it: a
    coordinating process learns what its workers' embeddings will be comparable with, building the model
    into the cache if needed, but loads no runtime (the torch backend excepted: its weights are read)."""
    kind = BackendName.parse(backend)
    if kind is BackendName.TORCH:
        embedder = open_embedder(model, backend, 1, None, weights_path, precision, calibration)
        return embedder.description, embedder.spec.embedding_dim
    built, description = build_embedder(model, weights_path, precision, calibration)
    return described(built.spec, description, kind.value), built.spec.embedding_dim


def open_detector(backend: str = "openvino", threads: int | None = None, config: MTCNNConfig = MTCNNConfig(),
                  weights_dir: str | None = None) -> MTCNNDetector:
    """MTCNN built (or taken from the cache) and opened on ``backend`` (openvino, onnxruntime or torch)."""
    if check_backend(backend) == "torch":
        return detector_on_torch(weights_dir, threads, config)
    return detector_on_files(build_mtcnn(DetectorBuildOptions(weights_dir=weights_dir)).files, backend, threads, config)
