"""The file-based accelerator workflow, as the NPU reference ran it.

``preprocess`` detects and aligns faces and writes the model's input as raw ``.bin`` batches
(layout in ``data.tensors``) with ``info.json`` saying which image is in which row; an offline
runner (the vendor's, or ``infer`` here on ONNX Runtime) turns each input ``.bin`` into an output
``<name>_0.bin``; ``postprocess`` turns the outputs back into embeddings and, for LFW, into the
same report as the ``lfw`` command. Each step writes atomically and can resume.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from .cache import atomic_write_json
from .chunk_store import ChunkStore, ResumeError, manifest_differences, run_manifest
from .data.images import ImageSource
from .data.tensors import face_batch, read_bin, write_bin
from .detect.align import AlignConfig, align_face
from .detect.mtcnn import MTCNNDetector, Selection
from .embedding_set import EmbeddingSet
from .errors import FacenetOfflineError
from .evaluate.lfw_job import Detections, LfwOptions, Timings, finish_run, lfw_inputs
from .evaluate.report import report_dict, write_report
from .face_loop import detect_batches, face_or_centre, progress_bar
from .runtime.onnxruntime import OnnxRuntimeBackend
from .status import OK

log = logging.getLogger(__name__)

INFO = "info.json"
INPUT_DIR = "input"
INFER_RECORD = "infer.json"
ProgressFactory = Callable[[int, str], object] | None


@dataclass(frozen=True)
class PreprocessConfig:
    """How images become input batches."""
    batch_size: int = 32  # rows per .bin file
    flip: bool = False  # each batch holds its faces, then their mirror images (batch_size must be even)
    select: Selection = Selection.LARGEST
    align: AlignConfig = AlignConfig()
    fallback: bool = False  # no face found: a centre crop (the LFW protocol) instead of a zero row
    pad_last: bool = True  # pad the last batch with zero rows to batch_size (static-batch runners need it)

    def __post_init__(self):
        object.__setattr__(self, "select", Selection(self.select))
        if self.batch_size < 1 or (self.flip and self.batch_size % 2):
            raise ValueError(f"batch size {self.batch_size}: must be at least 1, and even with mirror images")

    @property
    def images_per_batch(self) -> int:
        return self.batch_size // 2 if self.flip else self.batch_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["select"], d["align"] = self.select.value, {**asdict(self.align), "method": self.align.method.value}
        return d


@dataclass
class _Batch:
    rows: np.ndarray
    images: list[dict] = field(default_factory=list)


def _prepare_batch(sources: Sequence[ImageSource], detector: MTCNNDetector, spec, config: PreprocessConfig,
                   progress) -> _Batch:
    """Detect, choose, align and standardise one batch of images into its rows (and their mirror rows)."""
    n = len(sources)
    size = spec.input_size
    rows = n * (2 if config.flip else 1)
    total = config.batch_size if config.pad_last else rows
    batch = _Batch(np.zeros((total, 3, size, size), np.float32))
    crops, where = [], []
    items = chain.from_iterable(detect_batches(sources, detector, batch_size=max(1, n), progress=progress))
    for k, item in enumerate(items):  # big photos come in more than one batch
        record = {"path": item.source.label, "status": str(item.status), "row": None, "flip_row": None,
                  "found": False, "box": None, "landmarks": None}
        if item.status.ok or (config.fallback and item.image is not None):
            box, marks, found = face_or_centre(item.detection, config.select, item.image)  # as the LFW job does
            crops.append(align_face(item.image, box, marks if found else None, config.align))
            where.append(k)
            record.update(row=k, flip_row=n + k if config.flip else None, found=found,
                          box=[float(v) for v in box], status=str(OK),
                          landmarks=None if marks is None else np.asarray(marks, float).tolist())
        batch.images.append(record)
    if crops:
        faces = crops + ([c[:, ::-1] for c in crops] if config.flip else [])
        rows_of = where + ([n + k for k in where] if config.flip else [])
        batch.rows[rows_of] = face_batch(faces, size, spec.norm)
    return batch


def preprocess(paths: Sequence[Path], out: str | Path, detector: MTCNNDetector, spec, config: PreprocessConfig,
               labels: Sequence[str] | None = None, lfw: dict | None = None, resume: bool = False,
               progress_factory: ProgressFactory = None) -> dict:
    """Write ``out/input/batch-NNNNNN.bin`` files and ``out/info.json``; returns the info."""
    out = Path(out)
    labels = [str(p) for p in paths] if labels is None else list(labels)
    settings = {"preprocess": config.to_dict(), "model_input": _model_input(spec), "lfw": lfw}
    manifest = json.loads(json.dumps(run_manifest("preprocess", settings, labels, config.images_per_batch)))
    info_path = out / INFO
    if info_path.is_file():
        before = json.loads(info_path.read_text()).get("run")
        if before == manifest and resume:
            log.info("%s is already complete with these settings", info_path)
            return json.loads(info_path.read_text())
        if not resume:
            log.info("overwriting %s", info_path)
        else:
            raise ResumeError(f"cannot resume into {out}: it was made with other settings or inputs:\n  "
                              + "\n  ".join(manifest_differences(before or {}, manifest)))
        info_path.unlink()
    (out / INPUT_DIR).mkdir(parents=True, exist_ok=True)
    with ChunkStore.open(out / (INFO + ".parts"), manifest, ".json", resume) as store, \
            progress_bar(progress_factory, len(paths), "preprocess", store.done_items()) as bar:
        if not store.finished():  # a fresh run: batch files of an earlier run must not linger
            for stale in (out / INPUT_DIR).glob("batch-*.bin"):
                stale.unlink()
        per = config.images_per_batch
        for index, chunk in store.pending(list(range(len(paths)))):
            batch = _prepare_batch([ImageSource(labels[i], path=Path(paths[i])) for i in chunk], detector, spec,
                                   config, bar.update)
            name = f"batch-{index:06d}.bin"
            write_bin(out / INPUT_DIR / name, batch.rows)  # the batch first, then the record that names it
            valid = len(chunk) * (2 if config.flip else 1)
            record = {"file": f"{INPUT_DIR}/{name}", "rows": len(batch.rows), "valid_rows": valid,
                      "first_image": index * per, "images": batch.images}
            store.write(index, lambda tmp: Path(tmp).write_text(json.dumps(record)))
        batches = [json.loads(p.read_text()) for p in store.files()]
        info = {"format": "raw float32 little-endian, C order (see docs/using/bin-format.md)", **settings,
                "row_shape": [3, spec.input_size, spec.input_size],
                "padding": ("the last batch is padded with zero rows up to batch_size; valid_rows says how many "
                            "are real" if config.pad_last else "no padding: the last batch has valid_rows rows"),
                "batches": [{k: v for k, v in b.items() if k != "images"} for b in batches],
                "images": [dict(img, batch=b["file"]) for b in batches for img in b["images"]],
                "run": manifest}
        atomic_write_json(info_path, info)
        store.remove()
    return info


def _model_input(spec) -> dict:
    return {"model": spec.name, "size": spec.input_size, **spec.norm.key()}


def output_name(input_file: str | Path, index: int = 0) -> str:
    """The offline runner's contract: output ``index`` of ``x.bin`` is ``x_<index>.bin``."""
    return f"{Path(input_file).stem}_{index}.bin"


def infer(input_dir: str | Path, output_dir: str | Path, model_path: str | Path, description: dict,
          threads: int | None = None, resume: bool = False, progress_factory: ProgressFactory = None) -> int:
    """Run every ``*.bin`` in ``input_dir`` through the ONNX model; one ``<name>_<k>.bin`` per output k."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    files = sorted(input_dir.glob("*.bin"))
    if not files:
        raise FacenetOfflineError(f"{input_dir}: no .bin files; point input_dir= at preprocess's input folder.")
    backend = OnnxRuntimeBackend(model_path, threads=threads)
    dims = backend.session.get_inputs()[0].shape[1:]
    if not all(isinstance(d, int) for d in dims):
        raise FacenetOfflineError(f"{model_path}: input shape {dims} is not fixed apart from the batch.")
    record = {"model": description, "input_row_shape": dims, "outputs": backend.output_names}
    record_path = output_dir / INFER_RECORD
    if resume and record_path.is_file() and json.loads(record_path.read_text()) != json.loads(json.dumps(record)):
        raise ResumeError(f"cannot resume into {output_dir}: its outputs were made by another model "
                          f"({record_path}); use another output_dir=, or drop resume=True.")
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record_path, record)
    done = 0
    with progress_bar(progress_factory, len(files), "infer", 0) as bar:
        for path in files:
            targets = [output_dir / output_name(path, k) for k in range(len(backend.output_names))]
            if not (resume and all(t.is_file() for t in targets)):
                batch = read_bin(path, tuple(dims))
                try:
                    outputs = backend.run(batch)
                except Exception as exc:  # the runtime's message names the shape it wanted
                    raise FacenetOfflineError(f"{path}: the model could not run it ({exc}).") from None
                for target, output in zip(targets, outputs):
                    write_bin(target, output)
                done += 1
            bar.update(1)
    return done


def postprocess(outputs_dir: str | Path, info_file: str | Path, out: str | Path | None = None,
                report_dir: str | Path | None = None) -> tuple[EmbeddingSet, dict | None]:
    """Embeddings from the runner's outputs (NaN rows where an image had no face); for LFW, the report too."""
    outputs_dir, info_file = Path(outputs_dir), Path(info_file)
    info = json.loads(info_file.read_text())
    record_path = outputs_dir / INFER_RECORD
    model = json.loads(record_path.read_text())["model"] if record_path.is_file() else {"model": "unknown"}
    outputs = {}
    for b in info["batches"]:
        path = outputs_dir / output_name(b["file"])
        if not path.is_file():
            raise FacenetOfflineError(f"{path}: missing; run the runner (infer) over every input batch first.")
        data = np.fromfile(path, dtype="<f4")
        if data.size % b["rows"]:
            raise FacenetOfflineError(f"{path}: {data.size} floats do not split into {b['rows']} rows.")
        outputs[b["file"]] = data.reshape(b["rows"], -1)
    dim = next(iter(outputs.values())).shape[1]
    images = info["images"]
    emb = np.full((len(images), dim), np.nan, np.float32)
    emb_flip = np.full((len(images), dim), np.nan, np.float32) if info["preprocess"]["flip"] else None
    for i, img in enumerate(images):
        if img["row"] is not None:
            emb[i] = outputs[img["batch"]][img["row"]]
            if emb_flip is not None:
                emb_flip[i] = outputs[img["batch"]][img["flip_row"]]
    result = EmbeddingSet([img["path"] for img in images], emb, [img["status"] for img in images],
                          dict(model, preprocess=info["preprocess"]))
    if out:
        result.save(out)
    report = None
    if info.get("lfw"):
        report = _lfw_report(info, emb, emb_flip, model, report_dir)
    return result, report


def _lfw_report(info: dict, emb: np.ndarray, emb_flip: np.ndarray | None, model: dict,
                report_dir: str | Path | None) -> dict:
    started = time.perf_counter()
    lfw = info["lfw"]
    root, pairs, rel = lfw_inputs(lfw["lfw_dir"], lfw["pairs"], lfw["folds"])
    images = info["images"]
    if [img["path"] for img in images] != rel:
        raise FacenetOfflineError("info.json lists other images than the LFW pairs it names; preprocess again.")
    det = Detections(rel, np.array([img["box"] for img in images], np.float32),
                     np.array([img["landmarks"] or np.full((5, 2), np.nan) for img in images], np.float32),
                     np.array([img["found"] for img in images]))
    run = finish_run(root, pairs, rel, det, emb, emb_flip, LfwOptions.from_dict(lfw["options"]), model, Timings(),
                     started)
    return write_report(run, report_dir) if report_dir else report_dict(run)
