"""Per-model throughput at the reference deployments' shapes, for every backend, each in its own process.

Each (model, backend) runs in a fresh child process so that its memory is its own. The child
builds (or takes from the cache) the model, then for each batch size starts its peak memory afresh,
warms up and times repeated batches: a row's peak is what that batch size needed, model included.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..model_cache import BuildOptions, build_facenet, build_mtcnn
from ..runtime.onnxruntime import OnnxRuntimeBackend
from ..runtime.openvino import OpenVinoBackend
from ..runtime.torch import TorchBackend
from ..weights import DEFAULT_MODEL, MTCNN, resolve_detector_weights
from ..weights.loader import load_facenet, load_mtcnn
from .ceiling import gemm_gflops
from .harness import peak_rss_mb, reset_peak_rss
from .peers import PEER_MODEL, opencv_facenet_embed, opencv_facenet_net

log = logging.getLogger(__name__)

# The reference deployments' table shapes: batch sizes per model, and one item's C x H x W.
SHAPES: dict[str, tuple[tuple[int, ...], tuple[int, int, int]]] = {
    "pnet": ((1, 4, 8), (3, 1500, 1500)),
    "rnet": ((100, 800, 1600), (3, 24, 24)),
    "onet": ((50, 400, 800), (3, 48, 48)),
    "facenet": ((1, 4, 8, 16, 32, 64), (3, 160, 160)),
}
BACKENDS = ("onnxruntime", "openvino", "torch", "opencv-peer")
# FaceNet also runs at lower precision (MTCNN stays float32: docs/mtcnn-int8.md).
FACENET_EXTRA = ("onnxruntime-fp16", "onnxruntime-int8", "openvino-int8")


@dataclass
class ModelRow:
    model: str
    backend: str
    batch_size: int
    items_per_s: float
    mean_ms: float
    p50_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    runs: int
    noisy: bool
    peak_rss_mb: float  # while this row ran (the model included), or the process's so far if not ``peak_is_own``
    threads: int
    peak_is_own: bool = True


def engine_runner(model: str, backend: str, threads: int, pinning: bool | None = None,
                  facenet_model: str = DEFAULT_MODEL):
    """A callable running one NCHW float32 batch through ``model`` on ``backend`` ("name" or "name-precision").

    ``pinning`` (OpenVINO only) overrides the backend's choice of tying its threads to cores;
    ``facenet_model`` is the registry model that ``model="facenet"`` stands for.
    """
    backend, _, precision = backend.partition("-") if backend != "opencv-peer" else (backend, "", "")
    precision = precision or "fp32"
    if pinning is not None and backend != "openvino":
        raise ValueError(f"thread pinning is an OpenVINO setting, not one of {backend}")
    if backend == "opencv-peer":
        if model == "facenet" and facenet_model != PEER_MODEL:
            raise ValueError(f"the OpenCV peer runs the shipped {PEER_MODEL} graph, not {facenet_model}")
        return _opencv_peer(model)
    if backend == "torch":

        net = load_facenet(facenet_model) if model == "facenet" else load_mtcnn()[model]
        return TorchBackend(net, threads).run

    if model != "facenet" and precision != "fp32":
        raise ValueError(f"{model} is benchmarked in float32 only")
    path = (build_facenet(BuildOptions(model=facenet_model, precision=precision)).path if model == "facenet"
            else build_mtcnn().files[model])
    if backend == "openvino":

        return OpenVinoBackend(path, threads, pinning=pinning).run

    return OnnxRuntimeBackend(path, threads=threads).run


def _opencv_peer(model: str):
    """The shipped files on OpenCV DNN, fed as the peer packages feed them."""
    if model == "facenet":
        net = opencv_facenet_net()
        return lambda batch: opencv_facenet_embed(net, batch)  # the graph is fixed to batch 1

    net = cv2.dnn.readNetFromONNX(str(resolve_detector_weights(MTCNN)[model].path))

    def run(batch: np.ndarray):
        net.setInput(np.ascontiguousarray(batch.transpose(0, 3, 2, 1)))  # NCHW -> swapped NHWC
        return net.forward()

    return run


def _child(model: str, backend: str, batch_sizes: Sequence[int], repeats: int, threads: int, seconds: float,
           facenet_model: str = DEFAULT_MODEL) -> list[dict]:
    """Runs in a fresh process: time every batch size, report latencies and this process's peak RSS."""
    run = engine_runner(model, backend, threads, facenet_model=facenet_model)
    _, item_shape = SHAPES[model]
    rng = np.random.default_rng(0)
    rows = []
    for bs in batch_sizes:
        own = reset_peak_rss()  # else a row would show the peak of the larger batch before it, or of the build
        batch = rng.uniform(-1, 1, (bs, *item_shape)).astype(np.float32)
        run(batch)  # warm-up
        times: list[float] = []
        started = time.perf_counter()
        while len(times) < repeats or (time.perf_counter() - started < seconds and len(times) < 200):
            t0 = time.perf_counter()
            run(batch)
            times.append(time.perf_counter() - t0)
        ms = np.array(times) * 1e3
        spread = (ms.max() - ms.min()) / np.median(ms)
        rows.append(asdict(ModelRow(model, backend, bs, bs / np.median(ms) * 1e3, float(ms.mean()),
                                    float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.min()),
                                    float(ms.max()), len(ms), bool(spread > 0.15), peak_rss_mb(), threads, own)))
    if model == "facenet":  # the ceiling, measured in the same process right after, under the same load

        ceiling = gemm_gflops(threads=threads)[0]
        for row in rows:
            row["ceiling_gflops"] = ceiling
    return rows


def bench_models(models: Sequence[str] = tuple(SHAPES), backends: Sequence[str] = BACKENDS,
                 batch_sizes: dict[str, Sequence[int]] | None = None, repeats: int = 5, threads: int = 2,
                 seconds: float = 3.0, facenet_model: str = DEFAULT_MODEL) -> list[dict]:
    """Rows for every (model, backend, batch size); each (model, backend) in a fresh process.

    ``facenet_model``: the registry model the FaceNet rows run (the OpenCV peer runs only the default's graph).
    """
    unknown = [m for m in models if m not in SHAPES] + [b for b in backends if b not in BACKENDS + FACENET_EXTRA]
    if unknown:
        raise ValueError(f"Unknown model or backend {', '.join(unknown)}. Models: {', '.join(SHAPES)}; "
                         f"backends: {', '.join(BACKENDS + FACENET_EXTRA)}.")
    rows: list[dict] = []
    context = multiprocessing.get_context("spawn")
    for model in models:
        sizes = (batch_sizes or {}).get(model, SHAPES[model][0])
        for backend in [b for b in backends if model == "facenet" or b in BACKENDS]:
            if model == "facenet" and backend == "opencv-peer" and facenet_model != PEER_MODEL:
                continue
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                found = pool.submit(_child, model, backend, list(sizes), repeats, threads, seconds, facenet_model)
                rows += [dict(r, facenet_model=facenet_model) if model == "facenet" else r for r in found.result()]
            log.info("bench %s on %s done", model, backend)
    return rows
