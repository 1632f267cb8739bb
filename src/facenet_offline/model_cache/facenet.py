"""FaceNet built into the cache: the weights converted to a checked float32 ONNX model, and FP16 or INT8
models made from it and checked against it on real faces."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..cache import home, options_key
from ..choices import DEFAULT_CALIBRATION, CalibrationMethod, Precision
from ..convert.export_config import DEFAULT_OPSET, ExportConfig
from ..data.lfw_dataset import check_lfw_dir, images_identity
from ..data.tensors import standardise
from ..distance import max_abs_difference, row_cosine
from ..errors import FacenetOfflineError
from ..runtime.onnxruntime import OnnxRuntimeBackend
from ..samples import load_sample_faces
from ..weights import DEFAULT_MODEL, ModelSpec, get_spec, resolve_weights
from .calibration import CalibrationSet, calibration_faces
from .store import BUILD_FORMAT, RECORD, Built, cached_build


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
            from ..convert.quantize import Int8Config, calibrator_options  # ONNX Runtime's quantizer: INT8 only

            key.update(calibration=self.calibration.value, images=self.calibration_images,
                       reduce_range=Int8Config().reduce_range, calibrator=calibrator_options(self.calibration))
        return key


def parity_batch(spec: ModelSpec) -> np.ndarray:
    """Real faces (the shipped samples), standardised as the model expects."""
    return standardise(load_sample_faces(spec.input_size), spec.norm)


def facenet_cache_dir(spec: ModelSpec, weights_sha256: str, options: BuildOptions) -> Path:
    """The build's folder by its weights and options (an INT8 build's also names its calibration images:
    ``facenet_build_dir``)."""
    return home() / "models" / spec.name / f"{weights_sha256[:16]}-{options_key(options.key())}"


def facenet_build_dir(options: BuildOptions, weights_sha256: str | None = None) -> Path:
    """Where the build for ``options`` is cached. An INT8 model depends on the LFW images it is calibrated
    on, so its folder is keyed by their identity as well (two LFW copies share names, not files).

    Without LFW here, the newest complete INT8 build of these options is used: it was calibrated on the copy
    that was here then (its record names it), and there is no other copy to take it for.
    """
    spec = get_spec(options.model)
    if weights_sha256 is None:
        weights_sha256 = resolve_weights(spec, options.weights_path).sha256
    folder = facenet_cache_dir(spec, weights_sha256, options)
    if options.precision is not Precision.INT8:
        return folder
    try:
        identity = images_identity(CalibrationSet(options.calibration_images).paths())
    except FacenetOfflineError:
        built = [p for p in folder.parent.glob(folder.name + "-*") if (p / RECORD).is_file()]
        if not built:
            raise
        return max(built, key=lambda p: (p / RECORD).stat().st_mtime_ns)
    return folder.with_name(f"{folder.name}-{identity[:16]}")


def build_facenet(options: BuildOptions = BuildOptions(), force: bool = False) -> Built:
    """The cached FaceNet ONNX model for ``options``, built and checked if needed."""
    spec = get_spec(options.model)
    weights = resolve_weights(spec, options.weights_path)
    folder = facenet_build_dir(options, weights.sha256)

    if options.precision is not Precision.FP32:
        return _build_reduced(spec, weights, options, folder, force)

    def make(folder: Path) -> dict:
        import torch  # a build only: a cached model opens without torch

        from ..convert.onnx import check_parity, export_onnx
        from ..weights.loader import load_facenet

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
            "input": {"name": "input", "layout": "NCHW", "size": size, **spec.norm.key()},
        }

    return cached_build(folder, force, make)


def _build_reduced(spec: ModelSpec, weights, options: BuildOptions, folder: Path, force: bool) -> Built:
    """FP16 or INT8 from the float32 build, checked against it on real faces."""
    fp32 = build_facenet(BuildOptions(**{**asdict(options), "precision": Precision.FP32}))

    def make(folder: Path) -> dict:
        from ..convert.quantize import Int8Config, calibrator_options, to_fp16, to_int8

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
                           "lfw": str(check_lfw_dir()), "images_identity": images_identity(set_.paths()),
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

    return cached_build(folder, force, make)


