"""Compare face selection rules on LFW, the job's other defaults fixed: View 1 chooses, View 2 is reported.

Where an image holds several faces, the rule decides which one is the person named. Only images
where the rules pick different faces can score differently; they are listed with the pairs that
use them. Writes docs/lfw-selection.md and docs/results/lfw-selection.json.

Run: .venv/bin/python tools/lfw_selection.py
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from tqdm import tqdm

from facenet_offline.cache import atomic_write_bytes, atomic_write_json
from facenet_offline.data.lfw_dataset import check_lfw_dir, image_path, images_in_pairs, read_pairs, read_view1
from facenet_offline.detect import Selection
from facenet_offline.engines import open_detector, open_embedder
from facenet_offline.evaluate.lfw_job import LfwOptions, combine_flips, lfw_embeddings, score_pairs

RULES = (Selection.CENTRE_WEIGHTED, Selection.NEAREST_CENTRE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    root = check_lfw_dir()
    views = {"View 1": read_view1(root), "View 2": read_pairs(root / "pairs.txt")}
    rel = [p.relative_to(root).as_posix() for p in images_in_pairs(root, views["View 2"] + views["View 1"])]
    embedder, detector = open_embedder(), open_detector()
    boxes, rows = {}, []
    for rule in RULES:
        options = dataclasses.replace(LfwOptions(), select=rule)
        det, emb, emb_flip = lfw_embeddings(root, rel, embedder, detector, {"backend": "openvino", "config": "default"},
                                            options, progress_factory=lambda n, d: tqdm(total=n, desc=f"{rule.value} {d}"))
        boxes[rule], emb = det.boxes, combine_flips(emb, emb_flip, options.flip)
        for view, pairs in views.items():
            r = score_pairs(root, pairs, rel, emb, options.protocol)
            rows.append({"select": rule.value, "view": view, "accuracy": r.accuracy_mean, "std": r.accuracy_std,
                         "auc": r.auc, "errors": int(np.sum(r.predictions != np.array([p.same for p in pairs])))})
    differ = [rel[i] for i in np.flatnonzero(np.any(np.abs(boxes[RULES[0]] - boxes[RULES[1]]) > 0.5, axis=1))]
    used: dict[str, list[str]] = {f: [] for f in differ}
    for view, pairs in views.items():
        for p in pairs:
            for name, num in ((p.name1, p.num1), (p.name2, p.num2)):
                f = image_path(root, name, num).relative_to(root).as_posix()
                if f in used:
                    used[f].append(f"{view}: {p.name1} {p.num1} / {p.name2} {p.num2} "
                                   f"({'same' if p.same else 'different'})")
    atomic_write_json(f"{args.out}/results/lfw-selection.json", {"images": len(rel), "options": LfwOptions().to_dict(),
                                                         "rows": rows, "differ": used})
    lines = ["# LFW: which face of an image is the person named", "",
             f"Made by `tools/lfw_selection.py`. Model casia-webface, float32; the LFW job's other defaults; "
             f"{len(rel):,} images (View 1 and View 2). The rules pick different faces in {len(differ)} of them.", "",
             "| selection | view | accuracy | AUC | misclassified pairs |", "| --- | --- | ---: | ---: | ---: |"]
    lines += [f"| {r['select']} | {r['view']} | {r['accuracy']:.5f} +- {r['std']:.5f} | {r['auc']:.5f} | {r['errors']} |"
              for r in rows]
    lines += ["", "Images where the rules disagree, and the pairs that use them:", ""]
    lines += [f"- `{f}`: " + "; ".join(uses) for f, uses in used.items()]
    atomic_write_bytes(f"{args.out}/lfw-selection.md", ("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    main()
