"""ONNX variants for accelerator toolchains, each checked against the generic export under ONNX Runtime.

- ``generic``: the models as this project runs them (opset 17, dynamic batch; PNet also dynamic
  height and width).
- ``npu``: what NPU graph compilers accept, as the NPU reference deployment prepared them: opset
  11, PReLU rewritten as Relu/Sub/Mul/Add (no slope-shape rules to meet), every Clip with constant
  min and max, FaceNet at static batch sizes; beside them the compiler commands (``atc.sh``), for
  the reference's chip (Ascend 310) by default with shape profiles it accepts, or with the
  reference's shape ranges for newer chips.
- ``tensorrt``: dynamic batch with explicit tensor names an engine builder can look up
  (``embeddings``, ``last_bn``, ``avgpool``), optimisation profiles, and engines built (FP16, and
  INT8 with our calibration set) only where the ``tensorrt`` package and a GPU exist.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from ..cache import atomic_path, atomic_write_bytes, atomic_write_json
from ..choices import Choice
from ..convert.export_config import ExportConfig
from ..convert.onnx import export_onnx
from ..data.tensors import write_bin
from ..detect import boxes as bx
from ..detect.mtcnn import MTCNNConfig
from ..distance import max_abs_difference
from ..errors import ExportParityError, FacenetOfflineError
from ..model_cache import (
    MTCNN_INPUT_SIZES,
    BuildOptions,
    build_facenet,
    build_mtcnn,
    mtcnn_parity_patches,
    parity_batch,
)
from ..model_cache.calibration import CalibrationSet, calibration_faces
from ..model_cache.mtcnn import MTCNN_EXPORTS
from ..runtime.onnxruntime import OnnxRuntimeBackend
from ..weights import DEFAULT_MODEL, MTCNN
from ..weights.loader import load_facenet, load_mtcnn

log = logging.getLogger(__name__)

NPU_OPSET = 11
FLOAT_MAX = float(np.finfo(np.float32).max)
# The NPU reference's dynamic shape ranges (batch, height, width) and its static FaceNet batches.
NPU_RANGES = {"pnet": "input:[1~32,3,1~1500,1~1500]", "rnet": "input:[1~2000,3,24,24]",
              "onet": "input:[1~1000,3,48,48]"}
NPU_FACENET_BATCHES = (1, 16)
NPU_SOC = "Ascend310"  # the NPU reference's chip


class NpuShapes(Choice):
    """How ``atc.sh`` gives MTCNN's varying input shapes to the compiler."""
    # --dynamic_batch_size / --dynamic_image_size: a list of shapes compiled in; Ascend 310 takes these.
    PROFILES = "profiles"
    # --input_shape_range: any shape in a range; documented for newer toolkits and chips (e.g. Ascend 310P),
    # not for Atlas 200/300/500 (Ascend 310) products.
    RANGES = "ranges"
# TensorRT optimisation profiles: (min, opt, max) batch; PNet also (min, opt, max) side.
TRT_PROFILES = {"facenet": (1, 64, 128), "rnet": (1, 512, 2000), "onet": (1, 256, 1000), "pnet": (1, 1, 32)}
TRT_NAMES = {"GlobalAveragePool": "avgpool", "BatchNormalization": "last_bn"}


class Target(Choice):
    GENERIC = "generic"
    NPU = "npu"
    TENSORRT = "tensorrt"


@dataclass
class ExportedSet:
    """What ``export_target`` wrote: model files, their parity against the generic export, and notes."""
    target: Target
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    parity: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- graph rewrites (pure functions on ModelProto) -------------------------------------------------

def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in model.graph.initializer}


def prelu_to_relu(model: onnx.ModelProto) -> int:
    """Replace every PRelu(x, slope) by Relu(x) + slope * (x - Relu(x)); returns how many.

    The two forms are equal in float arithmetic too: x - Relu(x) is exactly min(x, 0).
    """
    nodes, count = [], 0
    for node in model.graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope = node.input
        (y,) = node.output
        base = node.name or f"prelu_{count}"
        relu, neg, scaled = f"{base}/relu", f"{base}/negative_part", f"{base}/scaled"
        nodes += [helper.make_node("Relu", [x], [relu], name=f"{base}/Relu"),
                  helper.make_node("Sub", [x, relu], [neg], name=f"{base}/Sub"),
                  helper.make_node("Mul", [neg, slope], [scaled], name=f"{base}/Mul"),
                  helper.make_node("Add", [relu, scaled], [y], name=f"{base}/Add")]
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return count


def constant_clips(model: onnx.ModelProto) -> int:
    """Give every Clip constant min and max initializers (opset 11 form); returns how many were changed.

    A bound computed at run time cannot be made constant: that raises, naming the node.
    """
    inits = _initializers(model)
    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Clip":
            continue
        bounds = list(node.input[1:]) + [""] * (3 - len(node.input))
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}  # opset < 11 form
        new = []
        for k, (name, default) in enumerate(zip(bounds[:2], (-FLOAT_MAX, FLOAT_MAX))):
            if name and name in inits:
                new.append(name)
                continue
            if name and name in constants:
                value = numpy_helper.to_array(constants[name].attribute[0].t)
            elif name:
                raise FacenetOfflineError(f"Clip node {node.name!r}: its {'max' if k else 'min'} bound {name!r} is "
                                          "computed at run time; it cannot be made constant for an NPU compiler.")
            else:
                value = np.float32(attrs.get("max" if k else "min", default))
            const = f"{node.name or 'clip'}/{'max' if k else 'min'}"
            model.graph.initializer.append(numpy_helper.from_array(np.asarray(value, np.float32).reshape(()), const))
            new.append(const)
        if list(node.input[1:3]) != new:
            changed += 1
        del node.input[1:]
        node.input.extend(new)
        del node.attribute[:]
    return changed


def rename_tensor(model: onnx.ModelProto, old: str, new: str) -> None:
    """Rename a tensor everywhere it is produced, consumed or declared."""
    for node in model.graph.node:
        for seq in (node.input, node.output):
            for i, name in enumerate(seq):
                if name == old:
                    seq[i] = new
    for value in list(model.graph.output) + list(model.graph.value_info):
        if value.name == old:
            value.name = new


def name_intermediates(model: onnx.ModelProto) -> dict[str, str]:
    """Give the last global average pool and the last batch norm the names engine builders look up."""
    renamed = {}
    for op, new in TRT_NAMES.items():
        last = [n for n in model.graph.node if n.op_type == op]
        if last:
            old = last[-1].output[0]
            rename_tensor(model, old, new)
            renamed[old] = new
    return renamed


def graph_problems(model: onnx.ModelProto) -> list[str]:
    """What an NPU compiler would reject here: PRelu nodes, and Clip bounds that are not constant initializers."""
    inits = _initializers(model)
    problems = [f"PRelu node {n.name!r}" for n in model.graph.node if n.op_type == "PRelu"]
    for n in model.graph.node:
        if n.op_type == "Clip":
            bounds = list(n.input[1:3])
            if len(bounds) < 2 or not all(b in inits for b in bounds):
                problems.append(f"Clip node {n.name!r} without constant min and max")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset != NPU_OPSET:
        problems.append(f"opset {opset}, not {NPU_OPSET}")
    return problems


# --- writing a target ---------------------------------------------------------------------------

def _rewrite(path: Path, change) -> onnx.ModelProto:
    """Load ``path``, apply ``change(model)``, check it and save it back atomically."""
    model = onnx.load(str(path))
    change(model)
    onnx.checker.check_model(model, full_check=True)
    with atomic_path(path, ".onnx") as tmp:
        onnx.save(model, str(tmp))
    return model


def _npu_fix(model: onnx.ModelProto) -> None:
    prelu_to_relu(model)
    constant_clips(model)
    problems = graph_problems(model)
    if problems:
        raise FacenetOfflineError(f"NPU export still has: {', '.join(problems)}")


def _parity_inputs(name: str, spec, batch: int | None = None) -> np.ndarray:
    x = parity_batch(spec) if name == "facenet" else mtcnn_parity_patches(name)
    if batch is not None:
        x = np.resize(x, (batch, *x.shape[1:]))  # repeat the real samples up to a static batch
    return x


def check_against_generic(variant: Path, generic: Path, x: np.ndarray, atol: float = 1e-4) -> float:
    """Largest |variant - generic| over every output under ONNX Runtime; raises above ``atol``."""
    worst = max(max_abs_difference(a, b) for a, b in zip(OnnxRuntimeBackend(variant).run(x),
                                                         OnnxRuntimeBackend(generic).run(x)))
    if worst > atol:
        raise ExportParityError(f"{variant}: differs from the generic export by {worst:.3g} (tolerance {atol:g}).")
    return worst


def export_target(target: Target | str, out: str | Path, model: str | None = None, weights: str | None = None,
                  facenet_batches: Sequence[int] = NPU_FACENET_BATCHES, npu_shapes: NpuShapes | str = NpuShapes.PROFILES,
                  image_size: tuple[int, int] = (250, 250)) -> ExportedSet:
    """Write ``target``'s FaceNet and MTCNN models (and its tool files) into ``out``, each checked.

    npu only: ``npu_shapes`` picks how atc.sh declares MTCNN's shapes; with profiles, PNet is compiled
    for the pyramid levels of photos of ``image_size`` (width, height) at each of ``facenet_batches``.
    """


    target = Target.parse(target)
    npu_shapes = NpuShapes.parse(npu_shapes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    built = build_facenet(BuildOptions(model=model or DEFAULT_MODEL, weights_path=weights))
    spec = built.spec
    mtcnn = build_mtcnn().files
    generic = {"facenet": built.path, **{n: mtcnn[n] for n in MTCNN_EXPORTS}}  # the plain nets, not pnet_packed
    result = ExportedSet(target, out)
    if target is Target.NPU:
        net = load_facenet(spec, weights)
        for b in facenet_batches:
            path = export_onnx(net, torch.zeros(b, 3, spec.input_size, spec.input_size), out / f"facenet_bs{b}.onnx",
                               ExportConfig(opset=NPU_OPSET))
            _rewrite(path, _npu_fix)
            result.files[f"facenet_bs{b}"] = path
            result.parity[f"facenet_bs{b}"] = check_against_generic(path, generic["facenet"],
                                                                    _parity_inputs("facenet", spec, b))
        for name, net in load_mtcnn().items():
            size = MTCNN_INPUT_SIZES[name] or 64
            config = ExportConfig(**{**MTCNN_EXPORTS[name].__dict__, "opset": NPU_OPSET})
            path = export_onnx(net, torch.zeros(2, 3, size, size), out / f"{name}.onnx", config)
            _rewrite(path, _npu_fix)
            result.files[name] = path
        _write_atc(out, facenet_batches, spec.input_size, npu_shapes, image_size)
        result.notes += _atc_notes(npu_shapes, facenet_batches, image_size)
    else:
        for name, src in generic.items():
            path = out / f"{name}.onnx"
            with atomic_path(path, ".onnx") as tmp:
                shutil.copyfile(src, tmp)
            if target is Target.TENSORRT and name == "facenet":
                renamed = {}
                _rewrite(path, lambda m: renamed.update(name_intermediates(m)))
                result.notes.append("renamed " + ", ".join(f"{a} -> {b}" for a, b in renamed.items()))
            result.files[name] = path
        if target is Target.TENSORRT:
            result.notes += _tensorrt_files(out, spec)
    for name, path in result.files.items():
        if name not in result.parity:
            base = "facenet" if name.startswith("facenet") else name
            result.parity[name] = check_against_generic(path, generic[base], _parity_inputs(base, spec))
    _write_readme(result, spec)
    return result


def mtcnn_row_profiles(config=None) -> list[int]:
    """Every row count the detector runs RNet and ONet at: even counts below ``batch_bucket``, then its
    multiples up to the run size (``MTCNNDetector`` pads each run to one of these)."""

    c = config or MTCNNConfig()
    small = list(range(c.small_bucket, c.batch_bucket, c.small_bucket))
    return small + list(range(c.batch_bucket, max(c.rnet_batch, c.onet_batch) + 1, c.batch_bucket))


def pnet_level_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """(height, width) of PNet's input at each pyramid level of a ``width`` x ``height`` photo."""
    c = MTCNNConfig()
    return [bx.scaled_size(height, width, s) for s in bx.pyramid_scales(height, width, c.min_face, c.factor)]


def _write_atc(out: Path, facenet_batches: Sequence[int], size: int, shapes: NpuShapes,
               image_size: tuple[int, int]) -> None:
    lines = ["#!/bin/sh", "# Compile the NPU variants with the vendor's ATC compiler.",
             f"# SOC_VERSION defaults to {NPU_SOC}, the NPU reference's chip; set it to yours (see `npu-smi info`).",
             "set -e", f'SOC="${{SOC_VERSION:-{NPU_SOC}}}"']
    if shapes is NpuShapes.RANGES:
        lines.append("# Shape ranges (--input_shape_range): newer toolkits and chips only, not Ascend 310.")
        for name, shape in NPU_RANGES.items():
            lines.append(f'atc --framework=5 --model={name}.onnx --output={name} --input_format=NCHW '
                         f'--input_shape_range="{shape}" --soc_version="$SOC"')
    else:
        levels = ";".join(f"{h},{w}" for h, w in pnet_level_sizes(*image_size))
        rows = ",".join(str(r) for r in mtcnn_row_profiles())
        lines.append(f"# Shape profiles, which Ascend 310 accepts: PNet at the pyramid levels of {image_size[0]}x"
                     f"{image_size[1]} photos (one model per batch size), RNet and ONet at every row count the "
                     "detector pads to.")
        for b in facenet_batches:
            lines.append(f'atc --framework=5 --model=pnet.onnx --output=pnet_bs{b} --input_format=NCHW '
                         f'--input_shape="input:{b},3,-1,-1" --dynamic_image_size="{levels}" --soc_version="$SOC"')
        for name, side in (("rnet", 24), ("onet", 48)):
            lines.append(f'atc --framework=5 --model={name}.onnx --output={name} --input_format=NCHW '
                         f'--input_shape="input:-1,3,{side},{side}" --dynamic_batch_size="{rows}" --soc_version="$SOC"')
    for b in facenet_batches:
        lines.append(f'atc --framework=5 --model=facenet_bs{b}.onnx --output=facenet_bs{b} --input_format=NCHW '
                     f'--input_shape="input:{b},3,{size},{size}" --soc_version="$SOC"')
    atomic_write_bytes(out / "atc.sh", ("\n".join(lines) + "\n").encode())
    (out / "atc.sh").chmod(0o755)


def _atc_notes(shapes: NpuShapes, facenet_batches: Sequence[int], image_size: tuple[int, int]) -> list[str]:
    if shapes is NpuShapes.RANGES:
        return ["atc.sh compiles MTCNN with the NPU reference's shape ranges (--input_shape_range: "
                + "; ".join(f"{k} {v}" for k, v in NPU_RANGES.items()) + "). Ascend's documentation for newer "
                "toolkits says Atlas 200/300/500 (Ascend 310) products do not support it: for those, export with "
                "--npu-shapes profiles."]
    return [f"atc.sh compiles MTCNN with shape profiles, which Ascend 310 accepts: PNet at batch "
            f"{', '.join(map(str, facenet_batches))} with --dynamic_image_size listing the "
            f"{len(pnet_level_sizes(*image_size))} pyramid levels of {image_size[0]}x{image_size[1]} photos "
            "(--image-size for other photo sizes; photos of another size need their own levels), RNet and ONet "
            f"with --dynamic_batch_size listing the {len(mtcnn_row_profiles())} row counts the detector pads every "
            "run to. On chips that take shape ranges (e.g. Ascend 310P), --npu-shapes ranges writes the NPU "
            "reference's --input_shape_range lines instead."]


def _input_contract(spec) -> list[str]:
    """What every exported model takes and gives: what a runner outside this project needs to know."""
    norm, detector = spec.norm.describe(), MTCNN.norm.describe()
    return ["## Inputs and outputs", "",
            "| model | input `input` | outputs |", "| --- | --- | --- |",
            f"| facenet | N x 3 x {spec.input_size} x {spec.input_size}, a face crop (margin-28 crop of the MTCNN box), "
            f"{norm} | `embeddings`: N x {spec.embedding_dim}, L2-normalised; compare with squared L2 distance |",
            f"| pnet | N x 3 x H x W, one pyramid level of the photo (H and W as in the photo: the original nets' W/H "
            f"swap is folded into these weights), {detector} | `reg`: N x 4 x rows x cols box offsets; `prob`: N x 2 x "
            "rows x cols, softmax (non-face, face) per 12 px cell at stride 2 |",
            f"| rnet | N x 3 x 24 x 24 candidate crops, {detector} | `reg`: N x 4 box offsets; `prob`: N x 2 softmax |",
            f"| onet | N x 3 x 48 x 48 candidate crops, {detector} | `reg`: N x 4 box offsets; `landmarks`: N x 10 "
            "(x1..x5, then y1..y5, as fractions of the box); `prob`: N x 2 softmax |",
            "",
            "## Running FaceNet offline", "",
            f"`facenet-offline preprocess PHOTOS --model {spec.name} --out prep` detects, aligns and writes this "
            "model's input (prepared as the table above says) as raw "
            "`.bin` batches (`prep/input/batch-NNNNNN.bin`, default batch 16: one of the static batches above; "
            "`--batch-size 1` for the other) and `prep/info.json`; your runner turns each `x.bin` into `x_0.bin` "
            "(the `embeddings` output); `facenet-offline postprocess --outputs OUT --info prep/info.json --out "
            "e.npz` maps the rows back to the photos. `facenet-offline infer` is such a runner on ONNX Runtime. "
            "The byte layout: docs/using/bin-format.md in the facenet-offline repository.", ""]


def _trt_shapes(name: str, size: int) -> dict[str, str]:
    lo, opt, hi = TRT_PROFILES[name]
    if name == "pnet":
        return {"min": f"input:{lo}x3x12x12", "opt": f"input:{opt}x3x500x500", "max": f"input:{hi}x3x1500x1500"}
    side = {"facenet": size, "rnet": 24, "onet": 48}[name]
    return {k: f"input:{b}x3x{side}x{side}" for k, b in zip(("min", "opt", "max"), (lo, opt, hi))}


def _tensorrt_files(out: Path, spec) -> list[str]:
    """Profiles, trtexec commands, the INT8 calibration batch; engines only where TensorRT and a GPU exist."""
    profiles = {name: _trt_shapes(name, spec.input_size) for name in TRT_PROFILES}
    atomic_write_json(out / "profiles.json", profiles)
    lines = ["#!/bin/sh", "# Build TensorRT engines with trtexec (FP16). For INT8 use build_engines in", "# facenet_offline.export.targets, which calibrates on calibration.bin.", "set -e"]
    for name, p in profiles.items():
        lines.append(f"trtexec --onnx={name}.onnx --minShapes={p['min']} --optShapes={p['opt']} --maxShapes={p['max']} "
                     f"--fp16 --saveEngine={name}_fp16.plan")
    atomic_write_bytes(out / "trtexec.sh", ("\n".join(lines) + "\n").encode())
    (out / "trtexec.sh").chmod(0o755)
    set_ = CalibrationSet()
    faces = calibration_faces(spec, set_)
    write_bin(out / "calibration.bin", faces)
    atomic_write_json(out / "calibration.json", {"set": set_.label, "shape": list(faces.shape), "dtype": "float32",
                                                 "layout": "NCHW", "input": spec.norm.key()})
    return [build_engines(out / "facenet.onnx", out, faces)]


def build_engines(onnx_path: Path, out: Path, calibration: np.ndarray) -> str:
    """FP16 and INT8 TensorRT engines of ``onnx_path``, or the reason they cannot be built here."""
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT engines not built: the tensorrt package is not installed (run trtexec.sh on the target)."

    if not torch.cuda.is_available():
        return "TensorRT engines not built: no CUDA GPU is visible (run trtexec.sh on the target)."
    from .tensorrt import build_engine  # pragma: no cover - needs TensorRT and a GPU

    made = [build_engine(onnx_path, out / f"facenet_{p}.plan", p, calibration) for p in ("fp16", "int8")]
    return "TensorRT engines built: " + ", ".join(str(m) for m in made)


def _what_changed(result: ExportedSet) -> list[str]:
    if result.target is Target.GENERIC:
        return ["The models as facenet-offline runs them: opset 17, dynamic batch (PNet also dynamic height and width)."]
    if result.target is Target.NPU:
        batches = [n.split("_bs")[1] for n in result.files if n.startswith("facenet_bs")]
        return [f"Opset {NPU_OPSET}, as NPU graph compilers accept it.",
                "PReLU rewritten as Relu(x) + slope * (x - Relu(x)) (Relu, Sub, Mul, Add): equal to PReLU, and free "
                "of the slope-shape rules compilers put on PRelu.",
                "Every Clip given constant min and max initializers (FaceNet's L2 normalisation clamps its norm).",
                f"FaceNet at static batch sizes {', '.join(batches)}."]
    return ["Dynamic batch, opset 17; output `embeddings`, and the tensors engine builders look up named `avgpool` "
            "(global average pool) and `last_bn` (the bottleneck's batch norm).",
            "profiles.json: min/opt/max shapes per model; trtexec.sh builds FP16 engines with them.",
            "calibration.bin: the INT8 calibration faces (see calibration.json), float32 NCHW."]


def _write_readme(result: ExportedSet, spec) -> None:
    what = _what_changed(result)
    lines = [f"# facenet-offline export: {result.target.value}", "", f"Model: {spec.name} ({spec.tag}) and MTCNN.", ""]
    lines += [f"- {w}" for w in what + result.notes]
    lines += [""] + _input_contract(spec)
    lines += ["Each file was run under ONNX Runtime on real inputs and compared with the generic export:", "",
              "| file | max abs difference |", "| --- | ---: |"]
    lines += [f"| {p.name} | {result.parity[n]:.2e} |" for n, p in result.files.items()]
    atomic_write_bytes(result.folder / "README.md", ("\n".join(lines) + "\n").encode())
