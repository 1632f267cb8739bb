"""Group faces by person: average-linkage agglomerative clustering on cosine distance, cut at a threshold.

Average linkage on cosine distance suits unit-length embeddings: a face joins a group when it is,
on average, close enough to its members. The default cut is the model's ``cluster_threshold``,
chosen on a development set of LFW people disjoint from the ones clustering is measured on
(docs/recognition.md); a model without one uses its accuracy-optimal verification threshold
(squared L2 d is cosine distance d / 2), which merges more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sklearn.cluster import AgglomerativeClustering

from ..cache import atomic_path, atomic_write_json
from ..data.images import ImageInput, load_image
from ..errors import ImageError

THUMB = 64  # contact-sheet thumbnail side


def cluster_embeddings(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster label per embedding (0 = the largest cluster); ``threshold`` is a cosine distance."""
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
    top = 32  # the title's strip
    sheet = Image.new("RGB", (columns * (side + 4) + 4, rows * (side + 4) + top), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    more = f" (first {limit} of {len(thumbs)})" if len(thumbs) > limit else ""
    draw.text((6, 7), title + more, fill=(0, 0, 0), font=ImageFont.load_default(size=16))  # Pillow's own font
    for k, thumb in enumerate(shown):
        r, c = divmod(k, columns)
        sheet.paste(Image.fromarray(np.ascontiguousarray(thumb)), (4 + c * (side + 4), top + r * (side + 4)))
    return sheet


def default_cluster_threshold(spec) -> float:
    """The model's measured cut, else its accuracy-optimal verification threshold (squared L2 of unit vectors)
    as a cosine distance."""
    if spec.cluster_threshold is not None:
        return spec.cluster_threshold
    return spec.operating_point().threshold / 2.0


@dataclass
class ClusteredFace:
    source: str
    face: int  # its place among its image's faces, most certain first
    box: list[float]


@dataclass
class Cluster:
    id: int  # 0 is the largest
    faces: list[ClusteredFace]
    sheet: str | None = None  # the contact sheet's file name, when written

    @property
    def size(self) -> int:
        return len(self.faces)


@dataclass
class Clustering:
    """Every face of the inputs grouped by person, and the inputs without a usable face."""

    model: dict
    threshold: float  # cosine distance at which groups stopped merging
    clusters: list[Cluster]
    images: int
    without_faces: dict[str, str]  # source -> status

    @property
    def faces(self) -> int:
        return sum(c.size for c in self.clusters)

    def to_dict(self) -> dict:
        return {"model": self.model, "threshold_cosine_distance": self.threshold,
                "method": "agglomerative, average linkage, cosine distance", "faces": self.faces,
                "images": self.images,
                "clusters": [{"id": c.id, "size": c.size, "sheet": c.sheet, "faces": [vars(f) for f in c.faces]}
                             for c in self.clusters],
                "images_without_faces": self.without_faces}


def cluster(images: ImageInput | Iterable[ImageInput], model, out_dir: str | Path | None = None,
            threshold: float | None = None, progress: Callable[[int], None] | None = None) -> Clustering:
    """Every face of every image (folders are walked), embedded by ``model`` (a ``FaceNet``), grouped by person.

    With ``out_dir``, writes ``clusters.json``, a contact sheet per cluster of two or more faces
    (``cluster-NNN.png``) and one of all single faces (``singles.png``).
    """
    results = model.embed_many(images, faces="all", crops=out_dir is not None, progress=progress)
    return cluster_results(results, model.description, model.spec, out_dir, threshold)


def cluster_results(results: Iterable, description: dict, spec, out_dir: str | Path | None = None,
                    threshold: float | None = None) -> Clustering:
    """``cluster`` of faces embedded already (``ImageResult``s, e.g. read from an archive) by the model of
    ``description`` and ``spec``. A face without its crop gets its thumbnail cut from its photo by its box."""
    threshold = default_cluster_threshold(spec) if threshold is None else threshold
    faces, thumbs, without, count = [], [], {}, 0
    for result in results:
        count += 1
        if not result.faces:
            without[result.source] = str(result.status)
        for face in result.faces:
            faces.append((ClusteredFace(result.source, face.index, [float(v) for v in face.box]), face.embedding))
            if out_dir is not None:  # thumbnails only: a crop is 75 KiB, a thumbnail 12
                thumbs.append(cv2.resize(face.crop, (THUMB, THUMB), interpolation=cv2.INTER_AREA) if face.crop.size
                              else thumbnail_from_photo(result.source, face.box))
    labels = cluster_embeddings(np.stack([e for _, e in faces]), threshold) if faces else np.zeros(0, int)
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(int(label), []).append(i)
    result = Clustering(dict(description), threshold,
                        [Cluster(c, [faces[i][0] for i in members]) for c, members in sorted(groups.items())],
                        count, without)
    if out_dir is not None:
        _write(result, groups, thumbs, Path(out_dir))
    return result


def thumbnail_from_photo(path: str, box) -> np.ndarray:
    """A face's thumbnail cut from its photo by its box (in the photo's pixels); grey if the photo is gone."""
    try:
        decoded = load_image(path)
    except (ImageError, TypeError):
        return np.full((THUMB, THUMB, 3), 128, np.uint8)
    fx, fy = decoded.scale
    x1, y1, x2, y2 = (np.asarray(box, np.float32) * np.array([fx, fy, fx, fy], np.float32)).round().astype(int)
    h, w = decoded.pixels.shape[:2]
    crop = decoded.pixels[max(0, y1):min(h, y2), max(0, x1):min(w, x2)]
    if not crop.size:
        return np.full((THUMB, THUMB, 3), 128, np.uint8)
    return cv2.resize(crop, (THUMB, THUMB), interpolation=cv2.INTER_AREA)


def _write(result: Clustering, groups: dict[int, list[int]], thumbs: list[np.ndarray], out_dir: Path) -> None:
    """Contact sheets and ``clusters.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    singles = [c for c in result.clusters if c.size == 1]
    for c in result.clusters:
        if c.size > 1:
            c.sheet = _save_sheet(out_dir / f"cluster-{c.id:03d}.png", [thumbs[i] for i in groups[c.id]],
                                  f"cluster {c.id}: {c.size} faces")
    if singles:  # faces like no other: one sheet for all of them, not one file each
        name = _save_sheet(out_dir / "singles.png", [thumbs[groups[c.id][0]] for c in singles],
                           f"{len(singles)} faces in clusters of their own", limit=256)
        for c in singles:
            c.sheet = name
    atomic_write_json(out_dir / "clusters.json", result.to_dict())


def _save_sheet(path: Path, thumbs, title: str, limit: int = 64) -> str:
    with atomic_path(path, ".png") as tmp:
        contact_sheet(thumbs, title, limit=limit).save(tmp, format="PNG")
    return path.name
