"""Group faces by person: average-linkage agglomerative clustering on cosine distance, cut at a threshold.

Average linkage on cosine distance suits unit-length embeddings: a face joins a group when it is,
on average, close enough to its members. The default cut is the model's ``cluster_threshold``,
chosen on a development set of LFW people disjoint from the ones clustering is measured on
(docs/recognition.md); a model without one uses its verification threshold (squared L2 d is
cosine distance d / 2), which merges more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw


def cluster_embeddings(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster label per embedding (0 = the largest cluster); ``threshold`` is a cosine distance."""
    from sklearn.cluster import AgglomerativeClustering

    n = len(embeddings)
    if n < 2:
        return np.zeros(n, np.int64)
    labels = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                     distance_threshold=threshold).fit_predict(embeddings)
    sizes = np.bincount(labels)
    order = np.argsort(-sizes, kind="stable")  # relabel by size, largest first
    relabel = np.empty_like(order)
    relabel[order] = np.arange(len(order))
    return relabel[labels]


def contact_sheet(thumbs: Sequence[np.ndarray], title: str, columns: int = 8, limit: int = 64) -> Image.Image:
    """A grid of face thumbnails under a title line, for looking at a cluster instead of reading it."""
    shown = list(thumbs[:limit])
    side = shown[0].shape[0] if shown else 64
    rows = max(1, math.ceil(len(shown) / columns))
    sheet = Image.new("RGB", (columns * (side + 4) + 4, rows * (side + 4) + 24), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    more = f" (first {limit} of {len(thumbs)})" if len(thumbs) > limit else ""
    draw.text((4, 4), title + more, fill=(0, 0, 0))
    for k, thumb in enumerate(shown):
        r, c = divmod(k, columns)
        sheet.paste(Image.fromarray(np.ascontiguousarray(thumb)), (4 + c * (side + 4), 24 + r * (side + 4)))
    return sheet


def default_cluster_threshold(spec) -> float:
    """The model's measured cut, else its verification threshold (squared L2 of unit vectors) as a cosine distance."""
    if spec.cluster_threshold is not None:
        return spec.cluster_threshold
    if spec.threshold is None:
        raise ValueError(f"no threshold is known for {spec.name}; pass --threshold")
    return spec.threshold / 2.0


def cluster(paths, detector, embedder, out_dir=None, threshold: float | None = None, progress=None) -> dict:
    """Every face in ``paths``, grouped by person. Writes ``clusters.json``, a contact sheet per cluster
    of two or more faces (``cluster-NNN.png``) and one of all single faces (``singles.png``) into
    ``out_dir`` when given; returns the JSON."""
    from pathlib import Path

    from ..cache import atomic_write_json
    from .faces import embed_faces

    threshold = default_cluster_threshold(embedder.spec) if threshold is None else threshold
    faces, status = embed_faces(paths, detector, embedder, thumbs=out_dir is not None, progress=progress)
    labels = cluster_embeddings(np.stack([f.embedding for f in faces]), threshold) if faces else np.zeros(0, int)
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(int(label), []).append(i)
    result = {"model": embedder.description, "threshold_cosine_distance": threshold,
              "method": "agglomerative, average linkage, cosine distance",
              "faces": len(faces), "images": len(status),
              "clusters": [{"id": c, "size": len(m), "sheet": None,
                            "faces": [{"source": faces[i].source, "face": faces[i].index, "box": faces[i].box}
                                      for i in m]} for c, m in sorted(groups.items())],
              "images_without_faces": {p: s for p, s in status.items() if s != "ok"}}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        singles = [e for e in result["clusters"] if e["size"] == 1]
        for entry in result["clusters"]:
            if entry["size"] > 1:
                entry["sheet"] = _save_sheet(out_dir / f"cluster-{entry['id']:03d}.png",
                                             [faces[i].thumb for i in groups[entry["id"]]],
                                             f"cluster {entry['id']}: {entry['size']} faces")
        if singles:  # faces like no other: one sheet for all of them, not one file each
            name = _save_sheet(out_dir / "singles.png", [faces[groups[e["id"]][0]].thumb for e in singles],
                               f"{len(singles)} faces in clusters of their own", limit=256)
            for entry in singles:
                entry["sheet"] = name
        atomic_write_json(out_dir / "clusters.json", result)
    return result


def _save_sheet(path, thumbs, title: str, limit: int = 64) -> str:
    from ..cache import atomic_path

    with atomic_path(path, ".png") as tmp:
        contact_sheet(thumbs, title, limit=limit).save(tmp, format="PNG")
    return path.name
