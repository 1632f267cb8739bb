"""Both shipped FaceNets side by side on LFW View 2 with the LFW job's protocol, and their speed in the same run.

Each model runs the LFW job (pairs.txt, the official 10 folds) with the protocol options that scored
best on View 1 for it in docs/results/input-convention.json (the View 1 sweep of input conventions
and protocol options); nothing here is chosen on View 2. Throughput is FaceNet alone on ONNX Runtime
(2 threads, float32, batch 32 of the same real face crops), the models timed in alternation round
after round so that the host's drift reaches both. Writes docs/models.md and docs/results/models.json.

Run: .venv/bin/python tools/model_comparison.py   (after tools/input_convention.py)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facenet_offline.bench.harness import MachineInfo, measure_interleaved, paired_ratios
from facenet_offline.cache import atomic_write_bytes, atomic_write_json
from facenet_offline.engines import open_detector, open_embedder
from facenet_offline.evaluate.lfw_job import Flip, LfwOptions, run_lfw
from facenet_offline.evaluate.verification import Distance, ProtocolOptions
from facenet_offline.model_cache.calibration import HELD_OUT, calibration_faces
from facenet_offline.weights import DEFAULT_MODEL, get_spec

MODELS = ("casia-webface", "ms-celeb-1m")


def view1_options(choice: dict) -> LfwOptions:
    """The LFW job's options with the protocol options of the best View 1 row."""
    return LfwOptions(flip=Flip(choice["flip"]), protocol=ProtocolOptions(
        distance=Distance(choice["distance"]), subtract_mean=choice["subtract_mean"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    chosen = json.loads((Path(args.out) / "results" / "input-convention.json").read_text())["models"]
    detector = open_detector()
    report = {"machine": MachineInfo().to_dict(), "default_model": DEFAULT_MODEL, "models": {}}
    embedders = {}
    for name in MODELS:
        best = chosen[name]["rows"][0]
        spec = get_spec(name)
        if (best["colour"], best["prewhiten"]) != (spec.colour, spec.prewhiten):
            raise SystemExit(f"{name}: View 1 chose {best['colour']}, prewhiten={best['prewhiten']}, but the registry "
                             f"says {spec.colour}, prewhiten={spec.prewhiten}: update weights/registry.py first")
        options = view1_options(best)
        embedders[name] = embedder = open_embedder(name, threads=2)
        run = run_lfw(None, embedder, detector, {"backend": "openvino", "config": "default"}, options=options,
                      progress_factory=lambda n, d: tqdm(total=n, desc=f"{name} {d}"))
        r = run.result
        at_defaults = run_lfw(None, embedder, detector, {"backend": "openvino", "config": "default"}).result
        report["models"][name] = {
            "tag": spec.tag, "training_set": spec.training_set, "embedding_dim": spec.embedding_dim,
            "published": spec.published_lfw_accuracy, "input": spec.norm.key(), "options": options.to_dict(),
            "view1_accuracy": best["view1_accuracy"], "view1_auc": best["view1_auc"],
            "accuracy_mean": r.accuracy_mean, "accuracy_std": r.accuracy_std, "auc": r.auc,
            "val_mean": float(np.mean(r.val)), "val_std": float(np.std(r.val)), "far_mean": float(np.mean(r.far)),
            "images": run.images, "pairs": len(run.pairs), "model": run.model,
            "at_job_defaults": {"accuracy_mean": at_defaults.accuracy_mean, "accuracy_std": at_defaults.accuracy_std,
                                "auc": at_defaults.auc, "val_mean": float(np.mean(at_defaults.val))}}
    crops = calibration_faces(get_spec(DEFAULT_MODEL), HELD_OUT)[:32]  # standardised real faces, N x 3 x 160 x 160
    timings = measure_interleaved([lambda e=e: e.run(crops) for e in embedders.values()], len(crops),
                                  repeats=args.rounds)
    for (name, _), timing in zip(embedders.items(), timings):
        report["models"][name]["speed"] = timing.summary()
        report["models"][name]["vs_default"] = float(np.median(paired_ratios(timing, timings[0])))
    atomic_write_json(Path(args.out) / "results" / "models.json", report)
    write_page(report, Path(args.out))


def write_page(report: dict, out: Path) -> None:
    atomic_write_bytes(out / "models.md", render(report).encode())
    print(render(report))


def render(report: dict) -> str:
    m = report["machine"]
    lines = ["# Two published FaceNets side by side on LFW", "",
             "Made by `tools/model_comparison.py`. " + " ".join(__doc__.split("\n\n")[1].split()), "",
             f"Machine: {m['cpu']}, {m['cores']} cores.", "",
             "| model | training set | embedding | input | published | View 1 acc (chose the options) | "
             "View 2 accuracy | AUC | VAL @ FAR 1e-3 | images/s (FaceNet, batch 32) | x default |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in report["models"].items():
        speed = r["speed"]
        lines.append(f"| `{name}` ({r['tag']}) | {r['training_set']} | {r['embedding_dim']}-d | {r['input']['colour']}, "
                     f"{r['input']['standardisation']} | {r['published']:.4f} | {r['view1_accuracy']:.5f} | "
                     f"**{r['accuracy_mean']:.5f} +- {r['accuracy_std']:.5f}** | {r['auc']:.5f} | "
                     f"{r['val_mean']:.3f} +- {r['val_std']:.3f} | {speed['rate_median']:.1f}{' (noisy)' if speed['noisy'] else ''} | "
                     f"{r['vs_default']:.2f} |")
    default = report["models"][report["default_model"]]
    for name, r in report["models"].items():
        if name == report["default_model"]:
            continue
        lines += ["", f"`{name}` reaches {r['accuracy_mean']:.5f} on View 2: "
                      f"{'at or above' if r['accuracy_mean'] >= r['published'] else 'below'} its published "
                      f"{r['published']}, and {r['accuracy_mean'] - default['accuracy_mean']:+.5f} against the "
                      f"default `{report['default_model']}` in the same job (VAL at FAR 1e-3 {r['val_mean']:.3f} "
                      f"against {default['val_mean']:.3f}), at {r['vs_default']:.2f}x its speed."]
    lines += ["", f"The same embeddings scored with {report['default_model']}'s protocol options (its View 1 "
                  "choice: angular distance, flips summed, mean subtracted), for information:", "",
              "| model | View 2 accuracy | AUC | VAL @ FAR 1e-3 |", "| --- | ---: | ---: | ---: |"]
    for name, r in report["models"].items():
        d = r["at_job_defaults"]
        lines.append(f"| `{name}` | {d['accuracy_mean']:.5f} +- {d['accuracy_std']:.5f} | {d['auc']:.5f} | "
                     f"{d['val_mean']:.3f} |")
    lines += ["", "Protocol options per model (chosen on View 1):", ""]
    for name, r in report["models"].items():
        o = r["options"]
        lines.append(f"- `{name}`: {o['align']['method']} crop, margin {o['align']['margin']:g}, {o['select']} face; "
                     f"{o['protocol']['distance']} distance, flips {o['flip']}, mean "
                     f"{'subtracted' if o['protocol']['subtract_mean'] else 'kept'}; {r['images']:,} images, "
                     f"{r['pairs']:,} pairs.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
