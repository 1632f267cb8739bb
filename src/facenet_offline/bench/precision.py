"""FP32, FP16 and INT8 side by side, in the reference's form: LFW accuracy, AUC, VAL and throughput.

Beside them, fidelity: how close each variant's embeddings stay to float32's on held-out faces
(``model_cache.calibration.HELD_OUT``). The INT8 calibration default is chosen on fidelity, because
choosing it on LFW accuracy would choose on the benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..choices import DEFAULT_CALIBRATION
from ..distance import row_cosine
from ..engines import open_detector, open_embedder
from ..evaluate.lfw_job import LfwOptions, run_lfw
from ..model_cache.calibration import HELD_OUT, calibration_faces
from ..weights import DEFAULT_MODEL
from .harness import measure_interleaved, noisy_flag, paired_ratios

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Variant:
    """One row: a model file (precision, calibration) and the backend that scores it.

    ``openvino-bf16`` scores the fp32 file in OpenVINO's bfloat16 arithmetic: a precision chosen at
    run time, not a file. Its speed is OpenVINO's, so it is timed only there.
    """

    precision: str
    calibration: str = "minmax"  # int8 only
    backend: str = "onnxruntime"

    @property
    def label(self) -> str:
        return "bf16" if self.backend == "openvino-bf16" else self.precision

    def timed_on(self, backends: Sequence[str]) -> dict[str, str]:
        """Column (onnxruntime or openvino) -> the backend timed for it."""
        if self.backend == "openvino-bf16":
            return {"openvino": "openvino-bf16"} if "openvino" in backends else {}
        return {b: b for b in backends}


VARIANTS = (Variant("fp32"), Variant("fp16"), Variant("int8", "minmax"), Variant("int8", "entropy"),
            Variant("int8", "percentile"), Variant("fp32", backend="openvino-bf16"))


def bench_precision(variants: Sequence[Variant] = VARIANTS, batch_size: int = 64, repeats: int = 7,
                    backends: Sequence[str] = ("onnxruntime", "openvino"), model: str = DEFAULT_MODEL) -> list[dict]:
    """LFW (default options, cached detections), fidelity to fp32 and batch throughput for every variant.

    Throughput is timed after all the scoring, every variant once per round on each backend: "x fp32"
    is the median of the round-by-round ratios against fp32 on that backend, so a host that drifts
    during the run moves every row alike.
    """

    if variants[0] != Variant("fp32"):
        raise ValueError("the precision suite needs fp32 on onnxruntime first: every variant is compared with it")
    detector = open_detector()
    rows, reference, held_out = [], None, None
    for v in variants:
        embedder = open_embedder(model, backend=v.backend, precision=v.precision, calibration=v.calibration)
        if held_out is None:
            held_out = calibration_faces(embedder.spec, HELD_OUT)
        emb = np.concatenate([embedder.run(held_out[i:i + batch_size]) for i in range(0, len(held_out), batch_size)])
        reference = emb if reference is None else reference
        cosine = row_cosine(reference, emb)
        r = run_lfw(None, embedder, detector, {"backend": "openvino", "config": "default"}).result
        rows.append({"model": model, "precision": v.label, "calibration": v.calibration if v.precision == "int8" else None,
                     "scored_on": v.backend, "batch_size": batch_size, "accuracy_mean": r.accuracy_mean,
                     "accuracy_std": r.accuracy_std, "auc": r.auc, "val_mean": float(np.mean(r.val)),
                     "val_std": float(np.std(r.val)), "far_mean": float(np.mean(r.far)), "speed": {}, "vs_fp32": {},
                     "fidelity": {"set": HELD_OUT.label, "faces": len(held_out), "cosine_mean": float(cosine.mean()),
                                  "cosine_min": float(cosine.min())}})
        log.info("precision %s/%s on %s: acc %.5f, mean cosine to fp32 %.6f", v.label, v.calibration, v.backend,
                 r.accuracy_mean, cosine.mean())
    batch = np.random.default_rng(0).uniform(-1, 1, (batch_size, 3, 160, 160)).astype(np.float32)
    for column in backends:
        timed = [(row, open_embedder(model, backend=v.timed_on(backends)[column], threads=2, precision=v.precision,
                                     calibration=v.calibration))
                 for v, row in zip(variants, rows) if column in v.timed_on(backends)]
        timings = measure_interleaved([lambda e=e: e.run(batch) for _, e in timed], batch_size, repeats=repeats)
        for (row, _), timing in zip(timed, timings):
            row["speed"][column] = timing.summary()
            row["vs_fp32"][column] = float(np.median(paired_ratios(timing, timings[0])))
        del timed
    return rows


def closest_calibration(rows: list[dict]) -> dict:
    """The INT8 row whose embeddings stay closest to float32 on held-out faces: highest mean cosine,
    then highest worst-face cosine. LFW figures are never read."""
    int8 = [r for r in rows if r["precision"] == "int8"]
    if not int8:
        raise ValueError("no INT8 rows to choose a calibration among")
    return max(int8, key=lambda r: (r["fidelity"]["cosine_mean"], r["fidelity"]["cosine_min"]))


def precision_markdown(rows: list[dict], date: str, cpu: str | None = None) -> str:
    job = LfwOptions()  # what bench_precision scores with
    base = next((r for r in rows if r["precision"] == "fp32"), None)
    if base is None:
        raise ValueError("the precision table needs the fp32 baseline; include fp32 in --precisions")
    lines = ["# Precision: what FP16, BF16 and INT8 cost and buy", "",
             f"Made by `facenet-offline bench --suites precision --out docs` on {date}, all rows in one run on "
             + (f"one machine ({cpu})." if cpu else "one machine.") + " LFW View 2 (6,000 pairs, 10 folds) with the job's default options "
             f"({job.align.method.value}-{job.align.margin:g} crops of the {job.select.value} face,",
             f"{job.protocol.distance.value} distance, flips {job.flip.value}, mean subtraction "
             f"{'on' if job.protocol.subtract_mean else 'off'}) on the same cached detections; throughput at batch "
             f"{base['batch_size']}, 2 threads,",
             f"median of {len(base['speed']['onnxruntime']['runs_s'])} rounds that time every row once each (x fp32: "
             "the median of the round-by-round ratios).",
             "INT8: ONNX Runtime static quantization, QDQ, per-channel weights,",
             "calibrated on 256 aligned LFW faces that pairs.txt does not use (`lfw-outside-pairs-256`).",
             f"Fidelity: cosine similarity to the fp32 embedding on {base['fidelity']['faces']} other such faces, "
             f"outside the calibration set too (`{base['fidelity']['set']}`).", "",
             ("bf16: the fp32 model run by OpenVINO in bfloat16 arithmetic (`--backend openvino-bf16`, CPUs with "
              "AMX or AVX512-BF16),\nscored and timed on OpenVINO; x fp32 there is against fp32 on OpenVINO in float32."
              if any(r["precision"] == "bf16" for r in rows) else
              "bf16: left out, as this CPU has no native bfloat16 arithmetic (AMX or AVX512-BF16)."), "",
             "| precision | calibration | batch | img/s ORT | x fp32 | img/s OpenVINO | x fp32 | cos to fp32 mean "
             "| cos min | AUC | accuracy | vs fp32 | VAL @ FAR 1e-3 |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def speed(r: dict, column: str) -> str:
        t = r["speed"].get(column)
        return f"{t['rate_median']:.1f}{noisy_flag(t)} | {r['vs_fp32'][column]:.2f}x" if t else "- | -"

    for r in rows:
        lines.append(f"| {r['precision']} | {r['calibration'] or '-'} | {r['batch_size']} | "
                     f"{speed(r, 'onnxruntime')} | {speed(r, 'openvino')} | "
                     f"{r['fidelity']['cosine_mean']:.6f} | {r['fidelity']['cosine_min']:.5f} | {r['auc']:.4f} | "
                     f"{r['accuracy_mean']:.5f} +- {r['accuracy_std']:.5f} | "
                     f"{(r['accuracy_mean'] - base['accuracy_mean']) * 100:+.3f} pt | "
                     f"{r['val_mean']:.5f} +- {r['val_std']:.5f} |")
    if base.get("ceiling_gflops"):  # rows of runs before the ceiling was recorded here have none
        achieved = base["speed"]["onnxruntime"]["rate_median"] * base["gflop_per_image"]
        lines += ["", f"The machine's ceiling in this run: float32 GEMM at {base['ceiling_gflops']:.1f} GFLOP/s "
                  f"(benchmarks.md, Ceiling). fp32 FaceNet on ONNX Runtime ({base['gflop_per_image']:.3f} GFLOP "
                  f"per image) reaches {achieved:.0f} GFLOP/s, {achieved / base['ceiling_gflops']:.0%} of it; FP16, "
                  "BF16 and INT8 run other arithmetic, so only their ratio to fp32 is given."]
    if any(r["precision"] == "int8" for r in rows):
        best = closest_calibration(rows)["calibration"]
        verdict = ("the default" if best == DEFAULT_CALIBRATION.value
                   else f"**not** the default, which is {DEFAULT_CALIBRATION.value}: the default needs updating")
        lines += ["", f"Closest to fp32 on the held-out faces: INT8 with {best} calibration, {verdict} "
                  "(`export.quantize.DEFAULT_CALIBRATION`). The choice reads fidelity only, never the LFW columns."]
    return "\n".join(lines) + "\n"
