"""Face detection (MTCNN), box math and alignment."""

from __future__ import annotations

from .align import AlignConfig, AlignMethod, align_face
from .mtcnn import Detection, MTCNNConfig, MTCNNDetector, Selection

DETECTOR_BACKENDS = ("openvino", "onnxruntime", "torch")
# RNet and ONet run on OpenVINO in slices of at most this many rows, below the row count where
# its kernels switch (81 on an AVX2 EPYC), so detections do not depend on the batch (OpenVinoBackend).
OPENVINO_ROW_SLICE = 64


def open_detector(backend: str = "openvino", threads: int | None = None, config: MTCNNConfig = MTCNNConfig(),
                  weights_dir: str | None = None) -> MTCNNDetector:
    """MTCNN on the chosen backend, from the cached NCHW ONNX builds (or the torch modules).

    On OpenVINO a lone photo's pyramid runs packed through ``PackedPNet`` unless
    ``config.pnet_pack_pixels`` is 0 (see ``MTCNNConfig``). OpenVINO pays for every change of input
    shape, which packing saves; ONNX Runtime does not, and was slower packed (LFW at batch 1: 30.2
    against 33.5 img/s; photos of mixed sizes 15.8 against 19.7), so it and torch never pack.
    """
    if backend not in DETECTOR_BACKENDS:
        raise ValueError(f"Unknown detector backend {backend!r}. Valid: {', '.join(DETECTOR_BACKENDS)}.")
    from ..runtime.base import usable_cpus

    lanes = threads or usable_cpus()  # threads making pyramids and crops: as many as the nets get
    if backend == "torch":
        from ..runtime.torch import TorchBackend
        from ..weights.loader import load_mtcnn

        nets = load_mtcnn(weights_dir)
        return MTCNNDetector(*(TorchBackend(nets[n], threads) for n in ("pnet", "rnet", "onet")), config=config,
                             threads=lanes)
    from ..build import DetectorBuildOptions, build_mtcnn

    built = build_mtcnn(DetectorBuildOptions(weights_dir=weights_dir))
    if backend == "openvino":
        from ..runtime.openvino import OpenVinoBackend, StaticShapes

        names = ["pnet", "rnet", "onet"] + ["pnet_packed"] * (config.pnet_pack_pixels > 0)
        nets = [OpenVinoBackend(built.files[n], threads=threads, static_shapes=StaticShapes(),
                                row_slice=OPENVINO_ROW_SLICE if n in ("rnet", "onet") else None) for n in names]
        return MTCNNDetector(*nets[:3], config=config, threads=lanes, packed_pnet=nets[3] if len(nets) > 3 else None)
    from ..runtime.onnxruntime import OnnxRuntimeBackend

    # PNet sees a new input shape per pyramid level of every new photo size (RNet and ONet
    # runs are padded to a few sizes), so only PNet gives up ORT's per-shape memory plans.
    nets = [OnnxRuntimeBackend(built.files[n], threads=threads, varying_shapes=n == "pnet")
            for n in ("pnet", "rnet", "onet")]
    return MTCNNDetector(*nets, config=config, threads=lanes)


__all__ = ["AlignConfig", "AlignMethod", "DETECTOR_BACKENDS", "Detection", "MTCNNConfig", "MTCNNDetector",
           "Selection", "align_face", "open_detector"]
