"""MTCNN on a runtime: its nets' ONNX files opened on OpenVINO or ONNX Runtime, or its torch modules.

Only the chosen runtime is imported (each costs a fraction of a second and memory), so the
imports below sit inside the functions on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..runtime.base import usable_cpus
from .mtcnn import MTCNNConfig, MTCNNDetector

DETECTOR_BACKENDS = ("openvino", "onnxruntime", "torch")
# RNet and ONet run on OpenVINO in slices of at most this many rows, below the row count where its
# kernels switch (docs/detection.md), so detections do not depend on the batch (OpenVinoBackend).
OPENVINO_ROW_SLICE = 64


def check_backend(backend: str) -> str:
    if backend not in DETECTOR_BACKENDS:
        raise ValueError(f"Unknown detector backend {backend!r}. Valid: {', '.join(DETECTOR_BACKENDS)}.")
    return backend


def detector_on_files(files: Mapping[str, Path], backend: str = "openvino", threads: int | None = None,
                      config: MTCNNConfig = MTCNNConfig()) -> MTCNNDetector:
    """MTCNN from its nets' NCHW ONNX files (``pnet``, ``rnet``, ``onet``, ``pnet_packed``) on ``backend``.

    On OpenVINO a lone photo's pyramid runs packed through ``PackedPNet`` unless
    ``config.pnet_pack_pixels`` is 0: OpenVINO pays for every change of input shape, which packing
    saves. ONNX Runtime does not, and was slower packed (docs/engine-choices.md), so it never packs.
    """
    lanes = threads or usable_cpus()  # threads making pyramids and crops: as many as the nets get
    if check_backend(backend) == "openvino":
        from ..runtime.openvino import OpenVinoBackend, StaticShapes

        names = ["pnet", "rnet", "onet"] + ["pnet_packed"] * (config.pnet_pack_pixels > 0)
        nets = [OpenVinoBackend(files[n], threads=threads, static_shapes=StaticShapes(),
                                row_slice=OPENVINO_ROW_SLICE if n in ("rnet", "onet") else None) for n in names]
        return MTCNNDetector(*nets[:3], config=config, threads=lanes, packed_pnet=nets[3] if len(nets) > 3 else None)
    if backend == "torch":
        raise ValueError("the torch detector runs the torch modules: use detector_on_torch")
    from ..runtime.onnxruntime import OnnxRuntimeBackend

    # PNet sees a new input shape per pyramid level of every new photo size (RNet and ONet
    # runs are padded to a few sizes), so only PNet gives up ORT's per-shape memory plans.
    nets = [OnnxRuntimeBackend(files[n], threads=threads, varying_shapes=n == "pnet") for n in ("pnet", "rnet", "onet")]
    return MTCNNDetector(*nets, config=config, threads=lanes)


def detector_on_torch(weights_dir: str | None = None, threads: int | None = None,
                      config: MTCNNConfig = MTCNNConfig()) -> MTCNNDetector:
    """MTCNN on its torch modules (the float32 reference)."""
    from ..runtime.torch import TorchBackend
    from ..weights.loader import load_mtcnn

    nets = load_mtcnn(weights_dir)
    return MTCNNDetector(*(TorchBackend(nets[n], threads) for n in ("pnet", "rnet", "onet")), config=config,
                         threads=threads or usable_cpus())
