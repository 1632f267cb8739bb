"""Measure the 5-landmark template for similarity alignment (facenet_offline.detect.align.TEMPLATE_160).

The template is where MTCNN landmarks fall, on average, inside facenet-pytorch ``margin`` crops
(margin 32 at 160 px) of LFW images that no pair of pairs.txt uses (so evaluation data is not
touched), mirrored and averaged so that it is left-right symmetric.

Run: .venv/bin/python tools/landmark_template.py [--limit N]
"""

from __future__ import annotations

import argparse

import numpy as np

from facenet_offline.data.images import load_rgb
from facenet_offline.data.lfw_dataset import check_lfw_dir, images_outside_pairs
from facenet_offline.engines import open_detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--margin", type=float, default=32.0)
    args = parser.parse_args()
    root = check_lfw_dir()
    paths = images_outside_pairs(root)[: args.limit]
    detector = open_detector()
    points = []
    for start in range(0, len(paths), 32):
        chunk = paths[start:start + 32]
        for det in detector.detect([load_rgb(p) for p in chunk]):
            if len(det) == 0:
                continue
            one = det.select("largest")
            x1, y1, x2, y2 = one.boxes[0]
            mx = args.margin * (x2 - x1) / (160 - args.margin)
            my = args.margin * (y2 - y1) / (160 - args.margin)
            origin = np.array([x1 - mx / 2, y1 - my / 2])
            scale = 160.0 / np.array([x2 - x1 + mx, y2 - y1 + my])
            points.append((one.landmarks[0] - origin) * scale)
    mean = np.mean(points, axis=0)
    mirrored = mean[[1, 0, 2, 4, 3]] * [-1, 1] + [160, 0]
    template = (mean + mirrored) / 2
    print(f"{len(points)} faces from {len(paths)} images outside pairs.txt")
    print("TEMPLATE_160 = np.array([")
    print("    " + ", ".join(f"[{x:.2f}, {y:.2f}]" for x, y in template) + ",")
    print("], dtype=np.float64)")


if __name__ == "__main__":
    main()
