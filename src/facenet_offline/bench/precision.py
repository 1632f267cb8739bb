"""FP32, FP16 and INT8 side by side, in the reference's form: LFW accuracy, AUC, VAL and throughput."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from .harness import measure

log = logging.getLogger(__name__)

VARIANTS = (("fp32", "minmax"), ("fp16", "minmax"), ("int8", "minmax"), ("int8", "entropy"), ("int8", "percentile"))


def bench_precision(variants: Sequence[tuple[str, str]] = VARIANTS, batch_size: int = 64, repeats: int = 5,
                    backends: Sequence[str] = ("onnxruntime", "openvino")) -> list[dict]:
    """LFW (default options, cached detections) and batch throughput for every precision variant."""
    from ..build import BuildOptions, build_facenet
    from ..detect import open_detector
    from ..embedder import open_embedder
    from ..evaluate.lfw import run_lfw
    from ..runtime.onnxruntime import OnnxRuntimeBackend
    from ..runtime.openvino import OpenVinoBackend

    detector = open_detector()
    batch = np.random.default_rng(0).uniform(-1, 1, (batch_size, 3, 160, 160)).astype(np.float32)
    rows = []
    for precision, method in variants:
        embedder = open_embedder(precision=precision, calibration=method)
        run = run_lfw(embedder, detector, {"backend": "openvino", "config": "default"})
        path = build_facenet(BuildOptions(precision=precision, calibration=method)).path
        speed = {}
        for backend in backends:
            engine = OnnxRuntimeBackend(path, threads=2) if backend == "onnxruntime" else OpenVinoBackend(path, 2)
            speed[backend] = measure(lambda: engine.run(batch), batch_size, repeats=repeats).summary()
        r = run.result
        rows.append({"precision": precision, "calibration": method if precision == "int8" else None,
                     "batch_size": batch_size, "speed": speed, "accuracy_mean": r.accuracy_mean,
                     "accuracy_std": r.accuracy_std, "auc": r.auc, "val_mean": float(np.mean(r.val)),
                     "val_std": float(np.std(r.val)), "far_mean": float(np.mean(r.far))})
        log.info("precision %s/%s: acc %.5f", precision, method, r.accuracy_mean)
    return rows


def precision_markdown(rows: list[dict], date: str) -> str:
    from ..evaluate.lfw import LfwOptions

    job = LfwOptions()  # what bench_precision scores with
    base = next((r for r in rows if r["precision"] == "fp32"), None)
    if base is None:
        raise ValueError("the precision table needs the fp32 baseline; include fp32 in --precisions")
    lines = ["# Precision: what FP16 and INT8 cost and buy", "",
             f"Made by `facenet-offline bench --suites precision --out docs` on {date}, all rows in one run on this",
             "machine. LFW View 2 (6,000 pairs, 10 folds) with the job's default options "
             f"({job.align.method.value}-{job.align.margin:g} crops,",
             f"{job.protocol.distance.value} distance, flips {job.flip.value}, mean subtraction "
             f"{'on' if job.protocol.subtract_mean else 'off'}) on the same cached detections; throughput at batch 64,",
             "2 threads, median of 5 runs. INT8: ONNX Runtime static quantization, QDQ, per-channel weights,",
             "calibrated on 256 aligned LFW faces that pairs.txt does not use (`lfw-outside-pairs-256`).", "",
             "| precision | calibration | batch | img/s ORT | x fp32 | img/s OpenVINO | AUC | accuracy | vs fp32 | VAL @ FAR 1e-3 |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ort, ov = r["speed"].get("onnxruntime", {}), r["speed"].get("openvino", {})
        ratio = ort["rate_median"] / base["speed"]["onnxruntime"]["rate_median"]
        lines.append(f"| {r['precision']} | {r['calibration'] or '-'} | {r['batch_size']} | {ort['rate_median']:.1f} | "
                     f"{ratio:.2f}x | {ov.get('rate_median', float('nan')):.1f} | {r['auc']:.4f} | "
                     f"{r['accuracy_mean']:.5f} +- {r['accuracy_std']:.5f} | "
                     f"{(r['accuracy_mean'] - base['accuracy_mean']) * 100:+.3f} pt | "
                     f"{r['val_mean']:.5f} +- {r['val_std']:.5f} |")
    return "\n".join(lines) + "\n"
