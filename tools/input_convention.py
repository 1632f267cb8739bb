"""Which input each model wants, measured on LFW View 1: RGB or BGR, fixed standardisation or per-image prewhitening.

Every View 1 image (pairsDevTrain + pairsDevTest, LFW's development set) is embedded under each of
the four conventions, with the LFW job's detections and alignment; each convention is then scored
with every protocol option of the job (distance, flips, mean subtraction) by 10-fold accuracy on
View 1's 3,200 pairs. The best row, ranked as the job's defaults were (View 1 accuracy, then View 1
AUC), is the convention and the options the registry records. View 2 is not read. Writes
docs/input-convention.md and docs/results/input-convention.json.

Run: .venv/bin/python tools/input_convention.py [--models ms-celeb-1m,casia-webface]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools

from tqdm import tqdm

from facenet_offline.cache import atomic_write_bytes, atomic_write_json
from facenet_offline.data.lfw_dataset import check_lfw_dir, images_in_pairs, read_view1
from facenet_offline.embedder import Embedder
from facenet_offline.engines import open_detector, open_embedder
from facenet_offline.evaluate.lfw_job import Flip, LfwOptions, combine_flips, lfw_embeddings, score_pairs
from facenet_offline.evaluate.variants import rank_on_view1
from facenet_offline.evaluate.verification import Distance, ProtocolOptions

CONVENTIONS = [(colour, prewhiten) for colour in ("RGB", "BGR") for prewhiten in (False, True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ms-celeb-1m,casia-webface")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    root = check_lfw_dir()
    view1 = read_view1(root)
    rel = [p.relative_to(root).as_posix() for p in images_in_pairs(root, view1)]
    detector = open_detector()
    options = LfwOptions(flip=Flip.CONCAT)  # both embeddings kept: every flip mode is scored from them
    report = {"images": len(rel), "pairs": len(view1), "options": options.to_dict(), "models": {}}
    for name in args.models.split(","):
        base = open_embedder(name)
        rows = []
        for colour, prewhiten in CONVENTIONS:
            spec = dataclasses.replace(base.spec, colour=colour, prewhiten=prewhiten)
            embedder = Embedder(spec, base.backend, {k: v for k, v in base.description.items() if k != "input"})
            label = f"{colour}, {'prewhitened' if prewhiten else 'fixed'}"
            _, emb, emb_flip = lfw_embeddings(root, rel, embedder, detector, {"backend": "openvino", "config": "default"},
                                              options, progress_factory=lambda n, d: tqdm(total=n, desc=f"{name} {label}"))
            for distance, flip, mean in itertools.product(Distance, Flip, (False, True)):
                result = score_pairs(root, view1, rel, combine_flips(emb, emb_flip, flip),
                                     ProtocolOptions(distance=distance, subtract_mean=mean))
                rows.append({"colour": colour, "prewhiten": prewhiten, "distance": distance.value, "flip": flip.value,
                             "subtract_mean": mean, "view1_accuracy": result.accuracy_mean,
                             "view1_std": result.accuracy_std, "view1_auc": result.auc,
                             "view1_val": float(result.val.mean())})
        report["models"][name] = {"model": base.description, "rows": rank_on_view1(rows)}
    atomic_write_json(f"{args.out}/results/input-convention.json", report)
    atomic_write_bytes(f"{args.out}/input-convention.md", render(report).encode())
    print(render(report))


def render(report: dict) -> str:
    lines = ["# Input conventions, measured on LFW View 1", "",
             "Made by `tools/input_convention.py`. " + " ".join(__doc__.split("\n\n")[1].split()), "",
             f"{report['images']:,} View 1 images, {report['pairs']:,} pairs; alignment and face selection as the "
             f"LFW job's defaults ({report['options']['align']['method']} crop, margin "
             f"{report['options']['align']['margin']:g}, {report['options']['select']} face).", ""]
    for name, m in report["models"].items():
        rows = m["rows"]
        lines += [f"## {name}", "", "Each convention at its best protocol options on View 1:", "",
                  "| convention | distance | flips | mean subtracted | View 1 accuracy | View 1 AUC | View 1 VAL@FAR 1e-3 |",
                  "| --- | --- | --- | --- | ---: | ---: | ---: |"]
        seen = set()
        for r in rows:
            key = (r["colour"], r["prewhiten"])
            if key in seen:
                continue
            seen.add(key)
            lines.append(f"| {r['colour']}, {'prewhitened' if r['prewhiten'] else 'fixed (x - 127.5) / 128'} | "
                         f"{r['distance']} | {r['flip']} | {'yes' if r['subtract_mean'] else 'no'} | "
                         f"{r['view1_accuracy']:.5f} +- {r['view1_std']:.5f} | {r['view1_auc']:.5f} | "
                         f"{r['view1_val']:.3f} |")
        best = rows[0]
        lines += ["", f"Chosen: {best['colour']}, {'prewhitened' if best['prewhiten'] else 'fixed standardisation'}; "
                      f"{best['distance']} distance, flips {best['flip']}, mean "
                      f"{'subtracted' if best['subtract_mean'] else 'kept'}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
