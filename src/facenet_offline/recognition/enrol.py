"""Enrolment from folders: ``root/<person>/<photos>``, one person per sub-folder."""

from __future__ import annotations

from pathlib import Path

from ..data.images import iter_image_paths
from .gallery import GalleryError


def people_folders(root: str | Path) -> dict[str, list[Path]]:
    """``root/<person>/<photos>``: the photos of each person, by folder name."""
    root = Path(root)
    if not root.is_dir():
        raise GalleryError(f"{root}: not a folder; give a folder with one sub-folder of photos per person.")
    people = {d.name: list(iter_image_paths([d])) for d in sorted(root.iterdir()) if d.is_dir()}
    people = {name: photos for name, photos in people.items() if photos}
    if not people:
        raise GalleryError(f"{root}: expected one sub-folder of photos per person, found none.")
    return people
