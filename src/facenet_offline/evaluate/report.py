"""The LFW report: JSON with every figure, Markdown for people, the ROC curve drawn to PNG."""

from __future__ import annotations

import datetime
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from ..cache import atomic_write_bytes, atomic_write_json, save_png
from ..versions import library_versions
from ..weights import get_spec
from .lfw_job import LfwRun

# The GPU reference deployment's figures, for the one model it ran.
GPU_REFERENCE = ("casia-webface", [("GPU reference deployment, FP16 (this model)", 0.98667, 0.00641),
                                   ("GPU reference deployment, INT8 (this model)", 0.98633, 0.00605)])


def references(model: str | None) -> list[tuple[str, float, float | None]]:
    """What a run of ``model`` is set against: its published accuracy, and the GPU reference if it ran it."""
    try:
        spec = get_spec(model or "")
    except ValueError:
        return []
    rows = [(f"{spec.published_by} (published, this model)", spec.published_lfw_accuracy, None)]
    return rows + (GPU_REFERENCE[1] if spec.name == GPU_REFERENCE[0] else [])


def misclassified(run: LfwRun) -> list[dict]:
    r = run.result
    rows = []
    for i, p in enumerate(run.pairs):
        if r.predictions[i] != p.same:
            rows.append({"fold": p.fold + 1, "same": p.same, "image1": f"{p.name1}_{p.num1:04d}",
                         "image2": f"{p.name2}_{p.num2:04d}", "distance": round(float(r.distances[i]), 4),
                         "threshold": float(r.thresholds[p.fold] if len(r.thresholds) > p.fold else np.nan)})
    return rows


def exact_roc(run: LfwRun) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC over every pair's own distance (pooled over folds), not the protocol's 0.01 threshold grid."""
    same = np.array([p.same for p in run.pairs])
    fpr, tpr, _ = roc_curve(same, -run.result.distances)
    return fpr, tpr, float(roc_auc_score(same, -run.result.distances))


def val_trained_on(run: LfwRun) -> dict:
    """Whether VAL at the protocol's FAR could be measured: a fold's threshold for FAR f needs 1/f different-person
    pairs to train on, which one fold of 300 does not give."""
    folds = len(run.result.accuracy)
    different = sum(not p.same for p in run.pairs) * (folds - 1) // max(folds, 1)
    far = run.options.protocol.far_target
    return {"measured": different * far >= 1, "far_target": far, "different_pairs_trained_on": different}


def report_dict(run: LfwRun) -> dict:
    det = run.detections
    failures = [p for p, ok in zip(det.paths, det.found) if not ok]
    t = run.timings
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "pairs": len(run.pairs), "images": run.images, "model": run.model, "options": run.options.to_dict(),
        "skipped_pairs": run.skipped_pairs,
        "result": {**run.result.summary(), "auc_exact_pooled": exact_roc(run)[2]}, "val": val_trained_on(run),
        "detection_failures": {"count": len(failures), "images": failures, "fallback": "centre crop, same margin"},
        "timings_s": {"decode": round(t.decode, 2), "detect": round(t.detect, 2), "align": round(t.align, 2),
                      "embed": round(t.embed, 2), "protocol": round(t.protocol, 2), "wall": round(t.wall, 2),
                      "from_cache": t.cached},
        "misclassified": misclassified(run),
        "versions": library_versions(),
    }


def render_markdown(report: dict) -> str:
    r, m = report["result"], report["model"]
    o = report["options"]
    lines = [
        "# LFW verification report", "",
        f"{report['pairs']} pairs, {report['images']} images; model `{m.get('model')}` ({m.get('precision')}, "
        f"{m.get('backend')}); {report['date']}."
        + (f" {report['skipped_pairs']} pairs left out: an image of theirs is missing from the aligned crops."
           if report.get("skipped_pairs") else ""), "",
        "| accuracy | VAL @ FAR | FAR | AUC | AUC (exact) | EER |", "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {r['accuracy_mean']:.5f} +- {r['accuracy_std']:.5f} | "
        + (f"{r['val_mean']:.5f} +- {r['val_std']:.5f} | {r['far_mean']:.5f}" if report.get("val", {}).get("measured", True)
           else "not measured | -")
        + f" | {r['auc']:.4f} | {r['auc_exact_pooled']:.4f} | {r['eer']:.4f} |", "",
        "AUC and EER follow the protocol (ROC on thresholds in 0.01 steps, averaged over the test folds);",
        "AUC (exact) is over every pair's own distance, pooled.", "",
        "## Options", "",
        f"- alignment: {o['align']['method']}, margin {o['align']['margin']}, {o['align']['image_size']} px; "
        f"face selection: {o['select']}",
        f"- distance: {r['options']['distance']}; flipped images: {o['flip']}; training-fold mean subtracted: "
        f"{r['options']['subtract_mean']}", "",
        "## Per fold", "", "| fold | accuracy | threshold |", "| ---: | ---: | ---: |",
    ]
    lines += [f"| {k + 1} | {a:.4f} | {t:.2f} |" for k, (a, t) in enumerate(zip(r["fold_accuracy"], r["fold_thresholds"]))]
    f = report["detection_failures"]
    t = report["timings_s"]
    lines += ["", "## Detection failures", "",
              f"{f['count']} image(s) without a detected face; each falls back to a {f['fallback']}: "
              + (", ".join(f["images"]) if f["images"] else "none."), "",
              "## Time (seconds)", "",
              "Stages overlap (embedding runs in its own thread beside decoding and detection), so the",
              "wall time is less than their sum; decode counts only the time spent waiting for images.", "",
              "| wall | decode | detect | align | embed | protocol | from cache |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
              f"| {t.get('wall', '-')} | {t['decode']} | {t['detect']} | {t['align']} | {t['embed']} | {t['protocol']} | "
              f"{', '.join(t['from_cache']) or '-'} |", "",
              "## Against the references", "", "| | accuracy |", "| --- | ---: |"]
    lines += [f"| {name} | {acc:.5f}" + (f" +- {std:.5f} |" if std else " |")
              for name, acc, std in references(m.get("model"))]
    lines += [f"| **this run** | **{r['accuracy_mean']:.5f} +- {r['accuracy_std']:.5f}** |", "",
              f"## Misclassified pairs ({len(report['misclassified'])})", "",
              "| fold | truth | image 1 | image 2 | distance | threshold |", "| ---: | --- | --- | --- | ---: | ---: |"]
    lines += [f"| {x['fold']} | {'same' if x['same'] else 'different'} | {x['image1']} | {x['image2']} | "
              f"{x['distance']:.4f} | {x['threshold']:.2f} |" for x in report["misclassified"]]
    v = report["versions"]
    lines += ["", "Libraries: " + ", ".join(f"{k} {val}" for k, val in v.items()), ""]
    return "\n".join(lines)


def plot_roc(run: LfwRun, path: Path) -> None:
    matplotlib.use("Agg")

    r = run.result
    fpr, tpr, exact_auc = exact_roc(run)
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    ax.plot(fpr, tpr, lw=2, label=f"{run.model.get('model')} (AUC {exact_auc:.4f}, acc {r.accuracy_mean:.4f})")
    ax.plot(r.fpr, r.tpr, ls="--", lw=1, color="grey", label=f"protocol grid, 0.01 steps (AUC {r.auc:.4f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.plot([r.eer], [1 - r.eer], "o", color="C3", label=f"EER {r.eer:.4f}")
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.set_ylim(0.8, 1.0)
    ax.set_xlabel("false positive rate (log)")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"LFW ROC, {len(run.pairs)} pairs, 10 folds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def write_report(run: LfwRun, out_dir: str | Path) -> dict:
    """Write report.json, report.md and roc.png into ``out_dir``; return the report dict."""
    out_dir = Path(out_dir)
    report = report_dict(run)
    atomic_write_json(out_dir / "report.json", report)
    atomic_write_bytes(out_dir / "report.md", render_markdown(report).encode())
    plot_roc(run, out_dir / "roc.png")
    return report
