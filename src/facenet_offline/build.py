"""Build models once into the cache (``FACENET_OFFLINE_HOME``), keyed by weights sha256 and options.

A cached model is used only if its record exists and the file's sha256 matches the record; a
build writes the model and then the record, each atomically, under a lock shared by concurrent
builders, so a killed or racing build never leaves a model that looks complete.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch

from . import __version__
from .cache import atomic_write_json, file_lock, home, options_key, sha256_file
from .data.tensors import standardise
from .export.onnx import DEFAULT_OPSET, ExportConfig, check_parity, export_onnx
from .samples import load_sample_faces
from .weights import DEFAULT_MODEL, ModelSpec, get_spec, load_facenet, resolve_weights

log = logging.getLogger(__name__)

BUILD_FORMAT = 1  # bump when the export recipe changes, so old cache entries are not reused
RECORD = "build.json"


@dataclass(frozen=True)
class BuildOptions:
    """What a FaceNet build depends on besides its weights."""

    model: str = DEFAULT_MODEL
    opset: int = DEFAULT_OPSET
    simplify: bool = True
    weights_path: str | None = None


@dataclass(frozen=True)
class BuiltModel:
    """A verified ONNX model in the cache and the record of how it was made."""

    spec: ModelSpec
    path: Path
    record: dict


def _cache_dir(spec: ModelSpec, weights_sha256: str, options: BuildOptions) -> Path:
    key = options_key({"format": BUILD_FORMAT, "opset": options.opset, "simplify": options.simplify})
    return home() / "models" / spec.name / f"{weights_sha256[:16]}-{key}"


def _read_valid(folder: Path) -> BuiltModel | None:
    import json

    record_path, model_path = folder / RECORD, folder / "facenet.onnx"
    if not (record_path.is_file() and model_path.is_file()):
        return None
    record = json.loads(record_path.read_text())
    if sha256_file(model_path) != record.get("onnx_sha256"):
        log.warning("cached model %s does not match its record; rebuilding", model_path)
        return None
    return BuiltModel(get_spec(record["model"]), model_path, record)


def parity_batch(spec: ModelSpec) -> np.ndarray:
    """Real faces (the shipped samples), standardised as the model expects."""
    return standardise(load_sample_faces(spec.input_size), spec.mean, spec.std)


def build_facenet(options: BuildOptions = BuildOptions(), force: bool = False) -> BuiltModel:
    """Return the cached FaceNet ONNX model for ``options``, building and checking it if needed."""
    spec = get_spec(options.model)
    weights = resolve_weights(spec, options.weights_path)
    folder = _cache_dir(spec, weights.sha256, options)
    with file_lock(folder.with_name(folder.name + ".lock")):
        if not force and (built := _read_valid(folder)):
            return built
        started = time.perf_counter()
        net = load_facenet(spec, weights.path)
        model_path = folder / "facenet.onnx"
        size = spec.input_size
        export_onnx(net, torch.zeros(2, 3, size, size), model_path, ExportConfig(
            input_names=("input",), output_names=("embeddings",),
            dynamic_axes={"input": {0: "batch"}, "embeddings": {0: "batch"}},
            opset=options.opset, simplify=options.simplify))
        faces = parity_batch(spec)
        worst = check_parity(net, model_path, [faces, faces[:1]])
        record = {
            "model": spec.name, "tag": spec.tag, "precision": "fp32", "options": asdict(options),
            "weights": {"path": str(weights.path), "format": weights.format.value, "sha256": weights.sha256},
            "onnx_sha256": sha256_file(model_path), "parity_max_abs_diff": worst,
            "input": {"name": "input", "layout": "NCHW", "size": size, "colour": spec.colour,
                      "mean": spec.mean, "std": spec.std},
            "opset": onnx.load(str(model_path), load_external_data=False).opset_import[0].version,
            "versions": {"facenet_offline": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                         "onnxruntime": onnxruntime.__version__, "python": platform.python_version()},
            "build_seconds": round(time.perf_counter() - started, 2),
        }
        atomic_write_json(folder / RECORD, record)
        log.info("built %s in %.1fs", model_path, record["build_seconds"])
        return BuiltModel(spec, model_path, record)
