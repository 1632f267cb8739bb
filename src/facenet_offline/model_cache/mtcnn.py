"""MTCNN's nets built into the cache: NCHW ONNX exports of PNet, RNet, ONet and the packed PNet, each checked
against its torch module and, for the shipped keras2onnx files, against the files themselves."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime

from ..cache import home, options_key
from ..convert.export_config import DEFAULT_OPSET, ExportConfig
from ..data.tensors import standardise
from ..detect.packing import pack
from ..distance import max_abs_difference
from ..errors import ExportParityError
from ..runtime.onnxruntime import OnnxRuntimeBackend
from ..samples import load_sample_faces
from ..weights import MTCNN, resolve_detector_weights
from .store import BUILD_FORMAT, Built, cached_build


@dataclass(frozen=True)
class DetectorBuildOptions:
    """What an MTCNN build depends on besides its weights."""

    opset: int = DEFAULT_OPSET
    simplify: bool = True
    weights_dir: str | None = None


MTCNN_EXPORTS = {
    "pnet": ExportConfig(output_names=("reg", "prob"), dynamic_axes={
        "input": {0: "batch", 2: "height", 3: "width"}, "reg": {0: "batch", 2: "rows", 3: "cols"},
        "prob": {0: "batch", 2: "rows", 3: "cols"}}),
    "rnet": ExportConfig(output_names=("reg", "prob"), dynamic_axes={
        "input": {0: "batch"}, "reg": {0: "batch"}, "prob": {0: "batch"}}),
    "onet": ExportConfig(output_names=("reg", "landmarks", "prob"), dynamic_axes={
        "input": {0: "batch"}, "reg": {0: "batch"}, "landmarks": {0: "batch"}, "prob": {0: "batch"}}),
}
MTCNN_INPUT_SIZES = {"pnet": None, "rnet": 24, "onet": 48}


def mtcnn_parity_patches(net: str) -> np.ndarray:
    """Real image patches for a net: the sample face images whole (PNet) or resized to 24 / 48."""
    faces = load_sample_faces(160)
    size = MTCNN_INPUT_SIZES[net]
    if size:
        faces = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in faces])
    return standardise(faces, MTCNN.norm)


def packed_parity_input() -> np.ndarray:
    """``PackedPNet`` input from real images: each sample face at 160 and at 79 pixels (an odd side) in one layout."""
    faces = load_sample_faces(160)
    small = np.stack([cv2.resize(f, (79, 79), interpolation=cv2.INTER_AREA) for f in faces])
    layout = pack([(160, 160), (79, 79)])
    x = np.zeros((len(faces), 4, *layout.shape), np.float32)
    x[:, 3] = layout.gaps()
    for (y, x0, h, w), level in zip(layout.places, (faces, small)):
        x[:, :3, y:y + h, x0:x0 + w] = standardise(level, MTCNN.norm)
    return x


def run_shipped_mtcnn(path: Path, net: str, nchw: np.ndarray) -> tuple[np.ndarray, ...]:
    """Run a shipped keras2onnx net on natural NCHW input, outputs in our order and layout."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = nchw.transpose(0, 3, 2, 1)  # NCHW -> N, W, H, C: the swapped NHWC the Caffe lineage expects
    outs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {session.get_inputs()[0].name: x})))
    by_width = {o.shape[-1]: o for o in outs.values()}
    ordered = [by_width[4], by_width[10], by_width[2]] if net == "onet" else [by_width[4], by_width[2]]
    if net == "pnet":
        ordered = [o.transpose(0, 3, 2, 1) for o in ordered]  # N, W', H', C -> N, C, H', W'
    return tuple(ordered)


def check_shipped_parity(net: str, shipped: Path, ours: Path, atol: float = 1e-4) -> float:
    """Max |shipped - ours| on real patches; raises ExportParityError above ``atol``."""
    x = mtcnn_parity_patches(net)
    worst = max(max_abs_difference(a, b) for a, b in zip(run_shipped_mtcnn(shipped, net, x), OnnxRuntimeBackend(ours).run(x)))
    if worst > atol:
        raise ExportParityError(f"{ours}: differs from the shipped {shipped.name} by {worst:.3g} (tolerance {atol:g}).")
    return worst


def build_mtcnn(options: DetectorBuildOptions = DetectorBuildOptions(), force: bool = False) -> Built:
    """The cached NCHW ONNX exports of PNet, RNet and ONet, checked against torch and the shipped files."""
    weights = resolve_detector_weights(MTCNN, options.weights_dir)
    digest = options_key({n: w.sha256 for n, w in weights.items()})
    key = options_key({"format": BUILD_FORMAT, "opset": options.opset, "simplify": options.simplify,
                       "nets": [*MTCNN_EXPORTS, "pnet_packed"]})
    folder = home() / "models" / "mtcnn" / f"{digest}-{key}"

    def make(folder: Path) -> dict:
        import torch  # a build only: cached nets open without torch

        from ..convert.onnx import check_parity, export_onnx
        from ..models.mtcnn import PackedPNet
        from ..weights.loader import load_mtcnn

        nets = load_mtcnn(options.weights_dir)
        record: dict = {"names": list(nets), "model": "mtcnn", "options": asdict(options), "opset": options.opset,
                        "weights": {}, "parity_torch": {}, "parity_shipped": {}}
        for name, net in nets.items():
            size = MTCNN_INPUT_SIZES[name] or 64
            config = ExportConfig(**{**asdict(MTCNN_EXPORTS[name]), "opset": options.opset,
                                     "simplify": options.simplify})
            path = export_onnx(net, torch.zeros(2, 3, size, size), folder / f"{name}.onnx", config)
            record["parity_torch"][name] = check_parity(net, path, [mtcnn_parity_patches(name)])
            w = weights[name]
            record["weights"][name] = {"path": str(w.path), "format": w.format.value, "sha256": w.sha256}
            if w.format.value == "onnx_keras":
                record["parity_shipped"][name] = check_shipped_parity(name, w.path, path)
        packed = PackedPNet(nets["pnet"]).eval()  # what the detector runs (``detect.packing``)
        config = ExportConfig(**{**asdict(MTCNN_EXPORTS["pnet"]), "opset": options.opset, "simplify": options.simplify})
        path = export_onnx(packed, torch.zeros(2, 4, 64, 64), folder / "pnet_packed.onnx", config)
        record["parity_torch"]["pnet_packed"] = check_parity(packed, path, [packed_parity_input()])
        record["names"].append("pnet_packed")
        return record

    return cached_build(folder, force, make)
