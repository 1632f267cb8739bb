"""Build models once into the cache (``FACENET_OFFLINE_HOME``), keyed by weights sha256 and options.

A cached build is used only if its record exists and every file's sha256 matches the record; a
build writes its files and then the record, each atomically, under a lock shared by concurrent
builders, so a killed or racing build never leaves a model that looks complete.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime
import torch

from . import __version__
from .cache import HOME_ENV, atomic_write_json, file_lock, home, options_key, remove_stale_temporaries, sha256_file
from .data.tensors import standardise
from .export.onnx import DEFAULT_OPSET, ExportConfig, check_parity, export_onnx, max_abs_difference
from .models.mtcnn import PackedPNet
from .data.calibration import CalibrationSet, calibration_faces
from .errors import DiskFullError, ExportParityError
from .export.quantize import DEFAULT_CALIBRATION, CalibrationMethod, Int8Config, Precision, calibrator_options
from .export.quantize import to_fp16, to_int8
from .runtime.onnxruntime import OnnxRuntimeBackend
from .samples import load_sample_faces
from .weights import DEFAULT_MODEL, MTCNN, ModelSpec, get_spec, resolve_detector_weights, resolve_weights
from .weights.loader import load_facenet, load_mtcnn

log = logging.getLogger(__name__)

BUILD_FORMAT = 2  # bump when an export recipe changes, so old cache entries are not reused
RECORD = "build.json"


@dataclass(frozen=True)
class BuildOptions:
    """What a FaceNet build depends on besides its weights."""

    model: str = DEFAULT_MODEL
    opset: int = DEFAULT_OPSET
    simplify: bool = True
    weights_path: str | None = None
    precision: Precision = Precision.FP32
    calibration: CalibrationMethod = DEFAULT_CALIBRATION  # INT8 only
    calibration_images: int = 256  # INT8 only

    def __post_init__(self):
        object.__setattr__(self, "precision", Precision(self.precision))
        object.__setattr__(self, "calibration", CalibrationMethod(self.calibration))

    def key(self) -> dict:
        key = {"format": BUILD_FORMAT, "opset": self.opset, "simplify": self.simplify}
        if self.precision is not Precision.FP32:  # fp32 keys stay as they were
            key["precision"] = self.precision.value
        if self.precision is Precision.INT8:
            key.update(calibration=self.calibration.value, images=self.calibration_images,
                       reduce_range=Int8Config().reduce_range, calibrator=calibrator_options(self.calibration))
        return key


@dataclass(frozen=True)
class DetectorBuildOptions:
    """What an MTCNN build depends on besides its weights."""

    opset: int = DEFAULT_OPSET
    simplify: bool = True
    weights_dir: str | None = None


@dataclass(frozen=True)
class Built:
    """Verified ONNX files in the cache and the record of how they were made."""

    folder: Path
    files: dict[str, Path]
    record: dict

    @property
    def path(self) -> Path:
        """The single model of a FaceNet build."""
        return self.files["facenet"]

    @property
    def spec(self) -> ModelSpec:
        return get_spec(self.record["model"])


def _versions() -> dict:
    return {"facenet_offline": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__, "python": platform.python_version()}


def _read_valid(folder: Path) -> Built | None:
    record_path = folder / RECORD
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
    except json.JSONDecodeError:
        return None
    if not record.get("files"):
        return None
    files = {name: folder / f"{name}.onnx" for name in record["files"]}
    for name, path in files.items():
        if not path.is_file() or sha256_file(path) != record["files"][name]:
            log.warning("cached %s does not match its record; rebuilding", path)
            return None
    return Built(folder, files, record)


def _cached_build(folder: Path, force: bool, make: Callable[[Path], dict]) -> Built:
    """Return the valid build in ``folder`` or run ``make(folder)`` (which writes the ONNX files) under a lock."""
    with file_lock(folder.with_name(folder.name + ".lock")):
        if not force and (built := _read_valid(folder)):
            return built
        # From here the folder is incomplete until the new record lands: drop the old record first,
        # and the temporary files a killed build may have left.
        (folder / RECORD).unlink(missing_ok=True)
        remove_stale_temporaries(folder)
        started = time.perf_counter()
        try:
            record = make(folder)
            record["files"] = {name: sha256_file(folder / f"{name}.onnx") for name in record.pop("names")}
            record["versions"] = _versions()
            record["build_seconds"] = round(time.perf_counter() - started, 2)
            atomic_write_json(folder / RECORD, record)
        except DiskFullError as exc:
            raise DiskFullError(f"{exc} The model cache is {home()}; set {HOME_ENV}=DIR to keep it on another "
                                "disk.") from None
        log.info("built %s in %.1fs", folder, record["build_seconds"])
        return Built(folder, {n: folder / f"{n}.onnx" for n in record["files"]}, record)


def parity_batch(spec: ModelSpec) -> np.ndarray:
    """Real faces (the shipped samples), standardised as the model expects."""
    return standardise(load_sample_faces(spec.input_size), spec.mean, spec.std)


def facenet_cache_dir(spec: ModelSpec, weights_sha256: str, options: BuildOptions) -> Path:
    return home() / "models" / spec.name / f"{weights_sha256[:16]}-{options_key(options.key())}"


def build_facenet(options: BuildOptions = BuildOptions(), force: bool = False) -> Built:
    """The cached FaceNet ONNX model for ``options``, built and checked if needed."""
    spec = get_spec(options.model)
    weights = resolve_weights(spec, options.weights_path)
    folder = facenet_cache_dir(spec, weights.sha256, options)

    if options.precision is not Precision.FP32:
        return _build_reduced(spec, weights, options, folder, force)

    def make(folder: Path) -> dict:
        net = load_facenet(spec, weights.path)
        size = spec.input_size
        path = export_onnx(net, torch.zeros(2, 3, size, size), folder / "facenet.onnx", ExportConfig(
            input_names=("input",), output_names=("embeddings",),
            dynamic_axes={"input": {0: "batch"}, "embeddings": {0: "batch"}},
            opset=options.opset, simplify=options.simplify))
        faces = parity_batch(spec)
        return {
            "names": ["facenet"], "model": spec.name, "tag": spec.tag, "precision": "fp32",
            "options": {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(options).items()},
            "opset": options.opset,
            "weights": {"path": str(weights.path), "format": weights.format.value, "sha256": weights.sha256},
            "parity_max_abs_diff": check_parity(net, path, [faces, faces[:1]]),
            "input": {"name": "input", "layout": "NCHW", "size": size, "colour": spec.colour,
                      "mean": spec.mean, "std": spec.std},
        }

    return _cached_build(folder, force, make)


def _build_reduced(spec: ModelSpec, weights, options: BuildOptions, folder: Path, force: bool) -> Built:
    """FP16 or INT8 from the float32 build, checked against it on real faces."""
    from .evaluate.verification import row_cosine

    fp32 = build_facenet(BuildOptions(**{**asdict(options), "precision": Precision.FP32}))

    def make(folder: Path) -> dict:
        target = folder / "facenet.onnx"
        calibration = None
        if options.precision is Precision.FP16:
            to_fp16(fp32.path, target)
        else:
            set_ = CalibrationSet(options.calibration_images)
            faces = calibration_faces(spec, set_)
            config = Int8Config(method=options.calibration)
            to_int8(fp32.path, target, faces, config)
            calibration = {"set": set_.label, "method": options.calibration.value, "images": len(faces),
                           "reduce_range": config.reduce_range, "per_channel": config.per_channel,
                           "calibrator": calibrator_options(config.method)}
        faces = parity_batch(spec)
        (ref,) = OnnxRuntimeBackend(fp32.path).run(faces)
        (low,) = OnnxRuntimeBackend(target).run(faces)
        cosine = row_cosine(ref, low)
        return {"names": ["facenet"], "model": spec.name, "tag": spec.tag, "precision": options.precision.value,
                "options": {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(options).items()},
                "opset": options.opset, "calibration": calibration, "from_fp32": fp32.record["files"]["facenet"],
                "weights": fp32.record["weights"], "input": fp32.record["input"],
                "vs_fp32": {"max_abs_diff": max_abs_difference(ref, low), "min_cosine": float(cosine.min())}}

    return _cached_build(folder, force, make)


_MTCNN_EXPORTS = {
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
    return standardise(faces, MTCNN.mean, MTCNN.std)


def packed_parity_input() -> np.ndarray:
    """``PackedPNet`` input from real images: each sample face at 160 and at 79 pixels (an odd side) in one layout."""
    from .detect.packing import pack

    faces = load_sample_faces(160)
    small = np.stack([cv2.resize(f, (79, 79), interpolation=cv2.INTER_AREA) for f in faces])
    layout = pack([(160, 160), (79, 79)])
    x = np.zeros((len(faces), 4, *layout.shape), np.float32)
    x[:, 3] = layout.gaps()
    for (y, x0, h, w), level in zip(layout.places, (faces, small)):
        x[:, :3, y:y + h, x0:x0 + w] = standardise(level, MTCNN.mean, MTCNN.std)
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
                       "nets": [*_MTCNN_EXPORTS, "pnet_packed"]})
    folder = home() / "models" / "mtcnn" / f"{digest}-{key}"

    def make(folder: Path) -> dict:
        nets = load_mtcnn(options.weights_dir)
        record: dict = {"names": list(nets), "model": "mtcnn", "options": asdict(options), "opset": options.opset,
                        "weights": {}, "parity_torch": {}, "parity_shipped": {}}
        for name, net in nets.items():
            size = MTCNN_INPUT_SIZES[name] or 64
            config = ExportConfig(**{**asdict(_MTCNN_EXPORTS[name]), "opset": options.opset,
                                     "simplify": options.simplify})
            path = export_onnx(net, torch.zeros(2, 3, size, size), folder / f"{name}.onnx", config)
            record["parity_torch"][name] = check_parity(net, path, [mtcnn_parity_patches(name)])
            w = weights[name]
            record["weights"][name] = {"path": str(w.path), "format": w.format.value, "sha256": w.sha256}
            if w.format.value == "onnx_keras":
                record["parity_shipped"][name] = check_shipped_parity(name, w.path, path)
        packed = PackedPNet(nets["pnet"]).eval()  # what the detector runs (``detect.packing``)
        config = ExportConfig(**{**asdict(_MTCNN_EXPORTS["pnet"]), "opset": options.opset, "simplify": options.simplify})
        path = export_onnx(packed, torch.zeros(2, 4, 64, 64), folder / "pnet_packed.onnx", config)
        record["parity_torch"]["pnet_packed"] = check_parity(packed, path, [packed_parity_input()])
        record["names"].append("pnet_packed")
        return record

    return _cached_build(folder, force, make)
