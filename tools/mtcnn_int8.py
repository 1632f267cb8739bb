"""Measure whether INT8 MTCNN nets pay off: speed of detection on LFW and agreement with float32.

Calibration inputs are the real inputs each net sees while detecting faces in LFW images that
pairs.txt does not use (recorded from the float32 pipeline). The nets are quantized with ONNX
Runtime (QDQ, per-channel) and run on OpenVINO; detections on 300 pairs.txt images are compared
with float32 ones. Writes docs/mtcnn-int8.md.

Run: .venv/bin/python tools/mtcnn_int8.py
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import numpy as np

from facenet_offline.bench.harness import cpu_model
from facenet_offline.cache import atomic_write_bytes
from facenet_offline.choices import CalibrationMethod
from facenet_offline.convert.quantize import Int8Config, to_int8
from facenet_offline.data.images import load_rgb
from facenet_offline.data.lfw_dataset import check_lfw_dir, images_in_pairs, images_outside_pairs, read_pairs
from facenet_offline.detect import MTCNNDetector
from facenet_offline.detect.boxes import iou_matrix
from facenet_offline.model_cache import build_mtcnn
from facenet_offline.runtime.openvino import OpenVinoBackend


class Recorder:
    """A backend wrapper that keeps (a sample of) the inputs it sees."""

    def __init__(self, backend, keep: int):
        self.backend, self.keep, self.inputs, self.name = backend, keep, [], backend.name

    def run(self, batch):
        if sum(len(b) for b in self.inputs) < self.keep:
            self.inputs.append(batch[: max(1, self.keep // 8)].copy())
        return self.backend.run(batch)


def detect_all(detector, images, batch=16):
    out = []
    for i in range(0, len(images), batch):
        out += detector.detect(images[i:i + batch])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/mtcnn-int8.md")
    parser.add_argument("--method", default="percentile", choices=[m.value for m in CalibrationMethod])
    args = parser.parse_args()
    root = check_lfw_dir()
    built = build_mtcnn()
    calib_images = [load_rgb(p) for p in images_outside_pairs(root)[::60][:64]]
    recorders = {n: Recorder(OpenVinoBackend(built.files[n], 2), keep=512) for n in ("pnet", "rnet", "onet")}
    detect_all(MTCNNDetector(recorders["pnet"], recorders["rnet"], recorders["onet"]), calib_images)
    tmp = Path(tempfile.mkdtemp())
    int8 = {}
    for name, rec in recorders.items():
        data = rec.inputs if name == "pnet" else [np.concatenate(rec.inputs)]
        path = tmp / f"{name}.onnx"
        # PNet's batches are pyramid levels of different sizes, which only minmax pools
        method = "minmax" if name == "pnet" else args.method
        to_int8(built.files[name], path, data if name == "pnet" else data[0], Int8Config(method=method))
        int8[name] = path
    test_images = [load_rgb(p) for p in images_in_pairs(root, read_pairs(root / "pairs.txt"))[::20][:300]]
    rows = {}
    for label, files in (("float32", built.files), ("int8", int8)):
        detector = MTCNNDetector(*(OpenVinoBackend(files[n], 2) for n in ("pnet", "rnet", "onet")))
        detect_all(detector, test_images[:32])
        start = time.perf_counter()
        found = detect_all(detector, test_images)
        rows[label] = (found, len(test_images) / (time.perf_counter() - start))
    ref, low = rows["float32"][0], rows["int8"][0]
    same = np.mean([len(a) == len(b) for a, b in zip(ref, low)])
    ious = np.concatenate([iou_matrix(a.boxes, b.boxes).max(axis=1) for a, b in zip(ref, low) if len(a) and len(b)])
    lost = sum(max(0, len(a) - len(b)) for a, b in zip(ref, low))
    lines = ["# INT8 MTCNN: measured, then decided", "",
             f"Made by `tools/mtcnn_int8.py` on {datetime.date.today().isoformat()}, {cpu_model()} "
             "(OpenVINO, 2 threads, batch 16,",
             f"{len(test_images)} pairs.txt images; calibration on 64 LFW images outside pairs.txt: RNet and ONet {args.method}, PNet minmax",
             "(its inputs vary in size, which the histogram calibrators cannot pool).", "",
             "| nets | images/s | same face count as float32 | boxes with IoU >= 0.9 | median IoU | faces lost |",
             "| --- | ---: | ---: | ---: | ---: | ---: |",
             f"| float32 | {rows['float32'][1]:.1f} | - | - | - | - |",
             f"| int8 | {rows['int8'][1]:.1f} | {same:.2%} | {np.mean(ious >= 0.9):.2%} | {np.median(ious):.3f} | {lost} |", ""]
    faster = rows["int8"][1] > rows["float32"][1]
    verdict = "INT8 MTCNN is used" if faster and lost == 0 else "MTCNN stays float32"
    lines += [f"Decision: {verdict}: INT8 is {'faster' if faster else 'slower'} "
              f"({rows['int8'][1] / rows['float32'][1]:.2f}x) and loses {lost} face(s).", ""]
    atomic_write_bytes(args.out, "\n".join(lines).encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
