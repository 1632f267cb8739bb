"""Identification and clustering measured on all of LFW; writes docs/recognition.md, and
docs/results/recognition.json and contact sheets.

Identification (closed and open set): the gallery is the first image of every person with at least
two images, the probes are all their other images; people with a single image are the impostors
of the open-set test. Every image gives one face: the one nearest the centre, as the LFW job takes
it (LFW centres each image on the person named; a photo of one's own would give its largest face,
as `gallery add` takes), in the default margin-28 crop, with the job's centre-crop fallback,
embedded without flips as the gallery and `identify` embed. The gallery is a real `Gallery` (SQLite + FAISS); rank-1
from its search is checked against the similarity matrix the measures use.

Clustering: every image of the people with at least five images, clustered by
`recognition.cluster_embeddings` at the model's default cut. That cut is chosen here on a disjoint
development set, the people with three or four images (the best BCubed F on a grid), and is what
`ModelSpec.cluster_threshold` holds; a sweep of cuts on the evaluation set is shown for information.

Run: .venv/bin/python tools/recognition_report.py
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facenet_offline.cache import atomic_path, atomic_write_bytes, atomic_write_json
from facenet_offline.data.images import iter_image_paths, load_rgb
from facenet_offline.data.lfw_dataset import check_lfw_dir
from facenet_offline.detect.align import align_face
from facenet_offline.engines import open_detector, open_embedder
from facenet_offline.evaluate.lfw_job import Flip, LfwOptions, lfw_embeddings
from facenet_offline.recognition import Gallery, cluster_embeddings
from facenet_offline.recognition.cluster import THUMB, contact_sheet, default_cluster_threshold
from facenet_offline.recognition.metrics import cluster_scores, open_set_dir, rank_k

SWEEP = (0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
SHEET_FACES = 24
DEV_GRID = tuple(round(0.40 + 0.025 * k, 3) for k in range(13))  # 0.400 .. 0.700


def _people(root: Path) -> dict[str, list[str]]:
    people = defaultdict(list)
    for path in iter_image_paths([root / "lfw-deepfunneled"]):
        people[path.parent.name].append(path.relative_to(root).as_posix())
    return dict(people)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    out = Path(args.out)
    root = check_lfw_dir()
    people = _people(root)
    rel = [r for name in sorted(people) for r in people[name]]
    index = {r: i for i, r in enumerate(rel)}
    embedder, detector = open_embedder(), open_detector()
    options = LfwOptions(flip=Flip.NONE)
    det, emb, _ = lfw_embeddings(root, rel, embedder, detector, {"backend": "openvino", "config": "default"}, options,
                                 progress_factory=lambda n, d: tqdm(total=n, desc=d, unit="img"))
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)

    # --- identification ---
    multi = [n for n in sorted(people) if len(people[n]) >= 2]
    single = [n for n in sorted(people) if len(people[n]) == 1]
    g_idx = [index[people[n][0]] for n in multi]
    p_idx = [index[r] for n in multi for r in people[n][1:]]
    p_lab = [n for n in multi for _ in people[n][1:]]
    i_idx = [index[people[n][0]] for n in single]
    sim = emb[p_idx] @ emb[g_idx].T
    ranks = rank_k(sim, p_lab, multi, [1, 5, 10])
    opens = open_set_dir(sim, p_lab, multi, emb[i_idx] @ emb[g_idx].T, [1e-2, 1e-3])
    with tempfile.TemporaryDirectory() as tmp:
        gallery = Gallery.open(Path(tmp) / "g", embedder.description, create=True)
        gallery.add_faces(multi, emb[g_idx], [rel[i] for i in g_idx])
        top = gallery.search(emb[p_idx], k=1)
        rank1_gallery = float(np.mean([t[0].name == lab for t, lab in zip(top, p_lab)]))
        gallery.close()

    # --- clustering ---
    dev = [n for n in sorted(people) if len(people[n]) in (3, 4)]
    d_idx = [index[r] for n in dev for r in people[n]]
    d_lab = [n for n in dev for _ in people[n]]
    dev_scores = {t: cluster_scores(d_lab, cluster_embeddings(emb[d_idx], t)) for t in DEV_GRID}
    dev_best = max(DEV_GRID, key=lambda t: dev_scores[t].bcubed_f)
    big = [n for n in sorted(people) if len(people[n]) >= 5]
    c_idx = [index[r] for n in big for r in people[n]]
    c_lab = [n for n in big for _ in people[n]]
    default = default_cluster_threshold(embedder.spec)
    sweep = {}
    for t in sorted(set(SWEEP) | {default}):
        labels = cluster_embeddings(emb[c_idx], t)
        sweep[t] = (cluster_scores(c_lab, labels), labels)
    scores, labels = sweep[default]

    # Contact sheets of three clusters: the largest, one of median size, and the largest impure one.
    sheets = []
    sizes = np.bincount(labels)
    purity = {c: max(np.unique(np.array(c_lab)[labels == c], return_counts=True)[1]) / sizes[c] for c in range(len(sizes))}
    picks = [0, int(np.argsort(sizes)[len(sizes) // 2])]
    impure = [int(c) for c in np.argsort(-sizes) if purity[c] < 1.0 and c not in picks]
    picks += impure[:1]
    sheet_dir = out / "results" / "recognition"
    sheet_dir.mkdir(parents=True, exist_ok=True)
    for c in picks:
        members = [c_idx[k] for k in np.flatnonzero(labels == c)]
        thumbs = []
        for i in members[:SHEET_FACES]:
            img = load_rgb(root / rel[i])
            crop = align_face(img, det.boxes[i], det.landmarks[i] if det.found[i] else None, options.align)
            thumbs.append(np.asarray(crop[::160 // THUMB, ::160 // THUMB]))
        names = sorted(set(np.array(c_lab)[labels == c]))
        title = f"cluster {c}: {sizes[c]} faces, {len(names)} people ({', '.join(names[:3])}{' ...' if len(names) > 3 else ''})"
        path = sheet_dir / f"cluster-{c:03d}.jpg"
        with atomic_path(path, ".jpg") as tmp:  # small: LFW-derived images in the repository stay well under 1 MB
            contact_sheet(thumbs, title, limit=SHEET_FACES).save(tmp, format="JPEG", quality=80)
        sheets.append((path.name, title))

    result = {
        "model": embedder.description,
        "identification": {"gallery": len(g_idx), "probes": len(p_idx), "impostors": len(i_idx),
                           "rank": {str(k): v for k, v in ranks.items()}, "rank1_via_gallery_search": rank1_gallery,
                           "open_set": [vars(p) for p in opens]},
        "clustering": {"people": len(big), "images": len(c_idx), "default_threshold": default,
                       "development": {"people": len(dev), "images": len(d_idx), "best_cut": dev_best,
                                       "grid": {str(t): vars(v) for t, v in dev_scores.items()}},
                       "sweep": {str(t): vars(s) for t, (s, _) in sweep.items()}},
        "no_face_fallbacks": int((~det.found).sum()),
    }
    atomic_write_json(out / "results" / "recognition.json", result)
    lines = ["# Recognition and clustering on LFW", "",
             "Made by `tools/recognition_report.py` (all 13,233 LFW images, default model "
             f"{embedder.description['model']}, {embedder.description['precision']}). One face per image: the one",
             "nearest the centre, as the LFW job takes it (LFW centres each image on the person named), in the default",
             f"margin-28 crop, with the job's centre-crop fallback for the {result['no_face_fallbacks']} image(s) without a",
             "detected face; embedded without flips, as the gallery and `identify` embed.", "",
             "## Identification", "",
             f"Gallery: the first image of each of the {len(g_idx):,} people with two or more images. Probes: their other",
             f"{len(p_idx):,} images. Open-set impostors: the {len(i_idx):,} people with a single image (not in the gallery).",
             "",
             "| measure | value |", "| --- | ---: |"]
    lines += [f"| rank-{k} accuracy (closed set) | {v:.4f} |" for k, v in ranks.items()]
    lines += [f"| rank-1 via the on-disk gallery's search (SQLite + FAISS) | {rank1_gallery:.4f} |"]
    for p in opens:
        lines.append(f"| DIR at FAR {p.far:g} (open set; threshold cosine {p.threshold:.3f}, achieved FAR "
                     f"{p.achieved_far:.4f}) | {p.dir:.4f} |")
    lines += ["", "DIR (detection and identification rate): the share of probes whose best match is the right person",
              "and is at least as similar as the threshold; the threshold is set so that at most the given share of",
              "impostors reach it.", "",
              "## Clustering", "",
              f"All {len(c_idx):,} images of the {len(big)} people with at least five images, clustered with",
              "average-linkage agglomerative clustering on cosine distance (`facenet-offline cluster`). The default",
              f"cut, {default:.3f}, was chosen on a disjoint development set: the {len(dev):,} people with three or four",
              f"images ({len(d_idx):,} images), where it gave the best BCubed F ({dev_scores[dev_best].bcubed_f:.4f}) of the cuts "
              f"{DEV_GRID[0]:.3f} to {DEV_GRID[-1]:.3f} in steps of 0.025"
              + (" (it is the model's `cluster_threshold`)." if abs(dev_best - default) < 1e-9 else
                 f"; NOTE: the model's default ({default:.3f}) differs from this run's best ({dev_best:.3f})."),
              "The other rows are for information only.", "",
              "| cut | clusters (true: %d) | pairwise P | pairwise R | pairwise F | BCubed P | BCubed R | BCubed F |" % len(big),
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for t, (s, _) in sweep.items():
        mark = " (default)" if t == default else ""
        lines.append(f"| {t:.3f}{mark} | {s.clusters} | {s.pairwise_precision:.4f} | {s.pairwise_recall:.4f} | "
                     f"{s.pairwise_f:.4f} | {s.bcubed_precision:.4f} | {s.bcubed_recall:.4f} | {s.bcubed_f:.4f} |")
    lines += ["", "Contact sheets at the default cut (the largest cluster, one of median size, and the largest",
              "cluster holding more than one person):", ""]
    lines += [f"![{title}](results/recognition/{name})" for name, title in sheets]
    atomic_write_bytes(out / "recognition.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
