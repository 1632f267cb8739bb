"""Operating points of each installed model: thresholds for FAR 1e-2, 1e-3 and 1e-4, measured on LFW View 1.

View 1 (pairsDevTrain + pairsDevTest, LFW's development set) chooses; pairs.txt (View 2, the
benchmark) never does. Every image of View 1 gives one face: the one nearest the centre, as the
LFW job takes it (LFW centres each image on the person named), in the default margin-28 crop,
embedded without flips as `verify`, `identify` and the gallery embed (on photos of one's own
they take the largest face, or every face for `identify`; a threshold is about the distance
between two faces' embeddings, whichever rule picked them). Impostor pairs are all pairs of View 1
images of two different people, genuine pairs all pairs of one person. The accuracy-optimal
threshold is the best split of View 1's 3,200 listed pairs. The same thresholds on the images of
View 2 are shown for information. Writes docs/operating-points.md and
docs/results/operating-points.json; the registry (weights/registry.py) holds the rounded
thresholds, and a test checks they are these.

Run: .venv/bin/python tools/operating_points.py
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facenet_offline.cache import atomic_write_bytes, atomic_write_json
from facenet_offline.data.lfw_dataset import check_lfw_dir, image_path, images_in_pairs, read_pairs, read_view1
from facenet_offline.engines import open_detector, open_embedder
from facenet_offline.errors import FacenetOfflineError
from facenet_offline.evaluate.lfw_job import Flip, LfwOptions, lfw_embeddings
from facenet_offline.evaluate.operating_points import accepted, accuracy_threshold, measure, pair_distances
from facenet_offline.weights import MODELS, resolve_weights

FARS = (1e-2, 1e-3, 1e-4)


def rounded(point) -> float:
    """Thresholds kept to 3 decimals: FAR points rounded down (never looser than measured), the accuracy one to nearest."""
    if point.far_target is None:
        return round(point.threshold, 3)
    return math.floor(point.threshold * 1000) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    root = check_lfw_dir()
    view1, view2 = read_view1(root), read_pairs(root / "pairs.txt")
    images = {"View 1": images_in_pairs(root, view1), "View 2": images_in_pairs(root, view2)}
    rel = list(dict.fromkeys(p.relative_to(root).as_posix() for v in images.values() for p in v))
    index = {r: i for i, r in enumerate(rel)}
    options = dataclasses.replace(LfwOptions(), flip=Flip.NONE)
    detector = open_detector()
    report = {"method": __doc__.split("\n\n")[1].replace("\n", " "), "fars": list(FARS),
              "options": options.to_dict(), "models": {}}
    for name, spec in MODELS.items():
        try:
            resolve_weights(spec)
        except FacenetOfflineError:
            report["models"][name] = {"measured": False, "why": "weights not installed"}
            continue
        embedder = open_embedder(name)
        _, emb, _ = lfw_embeddings(root, rel, embedder, detector, {"backend": "openvino", "config": "default"},
                                   options, progress_factory=lambda n, d: tqdm(total=n, desc=f"{name} {d}"))
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)

        def rows(paths):
            return [index[p.relative_to(root).as_posix()] for p in paths]

        def listed(pairs):
            d = np.array([np.sum((emb[index[image_path(root, p.name1, p.num1).relative_to(root).as_posix()]]
                                  - emb[index[image_path(root, p.name2, p.num2).relative_to(root).as_posix()]]) ** 2)
                          for p in pairs])
            same = np.array([p.same for p in pairs])
            return d[same], d[~same]

        views = {}
        for view, paths in images.items():
            labels = [p.parent.name for p in paths]
            genuine, impostor = pair_distances(emb[rows(paths)], labels)
            views[view] = (genuine, impostor)
        genuine, impostor = views["View 1"]
        acc_t, acc = accuracy_threshold(*listed(view1))
        points = measure(genuine, impostor, FARS, (acc_t, acc))
        g2, i2 = views["View 2"]
        report["models"][name] = {
            "measured": True, "model": embedder.description,
            "view1": {"images": len(images["View 1"]), "genuine_pairs": len(genuine), "impostor_pairs": len(impostor),
                      "listed_pairs_accuracy": acc},
            "view2": {"images": len(images["View 2"]), "genuine_pairs": len(g2), "impostor_pairs": len(i2)},
            "points": [{"far_target": p.far_target, "threshold": p.threshold, "threshold_rounded": rounded(p),
                        "far": accepted(impostor, rounded(p)), "tar": accepted(genuine, rounded(p)),
                        "view2_far": accepted(i2, rounded(p)), "view2_tar": accepted(g2, rounded(p))} for p in points]}
    out = Path(args.out)
    atomic_write_json(out / "results" / "operating-points.json", report)
    atomic_write_bytes(out / "operating-points.md", render(report).encode())
    print(render(report))


def render(report: dict) -> str:
    lines = ["# Operating points", "",
             "Made by `tools/operating_points.py`. " + report["method"], "",
             "Distances are squared L2 between unit-length embeddings (0 to 4); a pair is accepted as one person "
             "when its distance is below the threshold. FAR: the share of impostor pairs accepted; TAR: the share of "
             "genuine pairs accepted.", ""]
    for name, m in report["models"].items():
        lines += [f"## {name}", ""]
        if not m["measured"]:
            lines += [f"Not measured: {m['why']}.", ""]
            continue
        v1, v2 = m["view1"], m["view2"]
        lines += [f"View 1: {v1['images']:,} images, {v1['genuine_pairs']:,} genuine and {v1['impostor_pairs']:,} "
                  f"impostor pairs. View 2 (information only): {v2['images']:,} images, {v2['genuine_pairs']:,} "
                  f"genuine and {v2['impostor_pairs']:,} impostor pairs.", "",
                  "| operating point | threshold | FAR (View 1) | TAR (View 1) | FAR (View 2) | TAR (View 2) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for p in m["points"]:
            label = (f"best accuracy on View 1's listed pairs ({v1['listed_pairs_accuracy']:.4f})"
                     if p["far_target"] is None else f"FAR {p['far_target']:g}")
            lines.append(f"| {label} | {p['threshold_rounded']:.3f} | {p['far']:.2e} | {p['tar']:.4f} | "
                         f"{p['view2_far']:.2e} | {p['view2_tar']:.4f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
