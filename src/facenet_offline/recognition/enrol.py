"""Enrolment: photos of a person -> one face each (the largest) -> the gallery, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.images import iter_image_paths
from ..detect.mtcnn import MTCNNDetector, Selection
from ..embedder import Embedder
from .faces import embed_faces
from .gallery import Gallery, GalleryError


def enrol(gallery: Gallery, people: dict[str, Sequence[Path]], detector: MTCNNDetector, embedder: Embedder,
          progress=None) -> tuple[int, dict[str, str]]:
    """Add the largest face of each photo of each person, all in one transaction (a build is all or nothing).

    Returns (faces added, status per photo).
    """
    gallery.check_model(embedder.description)
    names, faces, status = [], [], {}
    for name, paths in people.items():
        found, st = embed_faces(paths, detector, embedder, Selection.LARGEST, progress=progress)
        names += [name] * len(found)
        faces += found
        status.update(st)
    if faces:
        gallery.add_faces(names, np.stack([f.embedding for f in faces]), [f.source for f in faces],
                          [f.box for f in faces])
    return len(faces), status


def people_folders(root: str | Path) -> dict[str, list[Path]]:
    """``root/<person>/<photos>``: the photos of each person, by folder name."""
    root = Path(root)
    people = {d.name: list(iter_image_paths([d])) for d in sorted(root.iterdir()) if d.is_dir()}
    people = {name: photos for name, photos in people.items() if photos}
    if not people:
        raise GalleryError(f"{root}: expected one sub-folder of photos per person, found none.")
    return people
