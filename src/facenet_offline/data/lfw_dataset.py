"""LFW on disk: where it is, its image paths, and the pairs of the verification protocol.

LFW comes in several layouts, all taken: a root holding ``lfw-deepfunneled/``, ``lfw-funneled/``
or ``lfw/`` (what ``lfw.tgz`` unpacks to), or any folder of person folders
(``<Name>/<Name>_NNNN.<ext>``, e.g. crops made by davidsandberg's ``align_dataset_mtcnn.py``).
Images are found by name and number, whatever their extension.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import FacenetOfflineError
from .images import IMAGE_SUFFIXES

LFW_ENV = "FACENET_OFFLINE_LFW"
IMAGE_FOLDERS = ("lfw-deepfunneled", "lfw-funneled", "lfw")  # under an LFW root, in order of preference


@dataclass(frozen=True)
class Pair:
    """One line of pairs.txt: two images and whether they show the same person."""

    name1: str
    num1: int
    name2: str
    num2: int
    same: bool
    fold: int


def default_lfw_dir() -> Path:
    """``$FACENET_OFFLINE_LFW``, else ``../shared/lfw`` beside the project root, else ``./shared/lfw``."""
    env = os.environ.get(LFW_ENV)
    if env:
        return Path(env).expanduser()
    project_root = Path(__file__).resolve().parents[3]
    for candidate in (project_root.parent / "shared" / "lfw", Path.cwd().parent / "shared" / "lfw"):
        if candidate.is_dir():
            return candidate
    return project_root.parent / "shared" / "lfw"


def _holds_people(folder: Path, sample: int = 20) -> bool:
    """Whether ``folder`` is a folder of person folders: ``<Name>/<Name>_NNNN.<ext>``."""
    checked = 0
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_dir():
            continue
        if any(f.startswith(entry.name + "_") for f in os.listdir(entry.path)):
            return True
        checked += 1
        if checked >= sample:
            break
    return False


@functools.lru_cache(maxsize=16)
def _images_folder(root: Path) -> Path | None:
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    return root if root.is_dir() and _holds_people(root) else None


def images_folder(root: str | os.PathLike) -> Path:
    """The folder of person folders of the LFW copy at ``root`` (see the module docstring for the layouts)."""
    root = Path(root)
    found = _images_folder(root.resolve())
    if found is None:
        raise FacenetOfflineError(
            f"{root}: no LFW images found (expected {', '.join(f'{n}/' for n in IMAGE_FOLDERS)} there, or person "
            f"folders <Name>/<Name>_0001.jpg). Give lfw_dir= the folder, or set {LFW_ENV}=DIR.")
    return root / found.relative_to(root.resolve())


def check_lfw_dir(lfw_dir: str | os.PathLike | None = None) -> Path:
    """The LFW root (given, ``$FACENET_OFFLINE_LFW`` or ``../shared/lfw``), verified to hold LFW images."""
    root = Path(lfw_dir) if lfw_dir else default_lfw_dir()
    images_folder(root)
    return root


def pairs_path(root: str | os.PathLike, pairs: str | os.PathLike | None = None) -> Path:
    """``pairs`` if given, else pairs.txt beside the images: in the root, the images folder, or the folder above."""
    if pairs is not None:
        if not Path(pairs).is_file():
            raise FacenetOfflineError(f"{pairs}: pairs file not found; check pairs=.")
        return Path(pairs)
    folder = images_folder(root)
    for candidate in (Path(root) / "pairs.txt", folder / "pairs.txt", folder.parent / "pairs.txt"):
        if candidate.is_file():
            return candidate
    raise FacenetOfflineError(f"{root}: no pairs.txt in it, in {folder} or beside it; give pairs=FILE.")


_NUMBERED = re.compile(r"^(?P<name>.+)_(?P<num>\d+)$")


@functools.lru_cache(maxsize=8192)
def _person_files(folder: str) -> dict[int, str]:
    """Image number -> file name of one person folder, whatever the extension (an image suffix first)."""
    found: dict[int, str] = {}
    try:
        names = sorted(os.listdir(folder), key=lambda n: Path(n).suffix.lower() not in IMAGE_SUFFIXES)
    except OSError:
        return found
    for name in names:
        match = _NUMBERED.match(Path(name).stem)
        if match and match["name"] == Path(folder).name:
            found.setdefault(int(match["num"]), name)
    return found


def image_path(root: str | os.PathLike, name: str, num: int) -> Path:
    """Image ``num`` of person ``name`` in the LFW copy at ``root``: ``<Name>/<Name>_NNNN.<any extension>``.

    An image that is not there gets the path a deep-funneled copy would have (``.jpg``), so reading it
    reports the missing file by name.
    """
    folder = images_folder(root) / name
    file = _person_files(str(folder)).get(num)
    return folder / (file or f"{name}_{num:04d}.jpg")


def images_identity(paths: Sequence[Path]) -> str:
    """sha256 over each image's resolved location, size and modification time: what a cache of results
    computed from these images must be keyed by (two LFW copies share their names, not their pixels)."""
    digest = hashlib.sha256()
    for path in paths:
        st = Path(path).stat()
        digest.update(f"{Path(path).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Parse a pairs file: header "folds n" (pairs.txt) or "n" (pairsDevTrain/DevTest.txt, one fold),
    then per fold n same-person lines and n different-person lines."""
    lines = Path(path).read_text().split("\n")
    try:
        header = [int(v) for v in lines[0].split()]
        folds, per_fold = header if len(header) == 2 else (1, header[0])
    except (ValueError, IndexError):
        raise FacenetOfflineError(f"{path}: first line must be '<folds> <pairs per class>' or '<pairs per class>', "
                                  f"got {lines[0]!r}") from None
    pairs: list[Pair] = []
    for i, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        fold = len(pairs) // (2 * per_fold)
        if len(fields) == 3:
            pairs.append(Pair(fields[0], int(fields[1]), fields[0], int(fields[2]), True, fold))
        elif len(fields) == 4:
            pairs.append(Pair(fields[0], int(fields[1]), fields[2], int(fields[3]), False, fold))
        else:
            raise FacenetOfflineError(f"{path}:{i}: expected 3 or 4 fields, got {line!r}")
    if len(pairs) != folds * 2 * per_fold:
        raise FacenetOfflineError(f"{path}: header promises {folds * 2 * per_fold} pairs, found {len(pairs)}")
    return pairs


def read_view1(root: str | os.PathLike) -> list[Pair]:
    """LFW's development set (View 1: pairsDevTrain + pairsDevTest, 3,200 pairs) as one pool.

    Its files carry no folds, so every pair gets fold 0 and the protocol splits the pool into
    ten stratified folds. Options are chosen here, never on View 2 (pairs.txt, the benchmark).
    """
    pairs = read_pairs(Path(root) / "pairsDevTrain.txt") + read_pairs(Path(root) / "pairsDevTest.txt")
    return [dataclasses.replace(p, fold=0) for p in pairs]


def images_in_pairs(root: str | os.PathLike, pairs: list[Pair]) -> list[Path]:
    """Distinct image paths the pairs reference, in first-use order."""
    seen: dict[Path, None] = {}
    for p in pairs:
        seen.setdefault(image_path(root, p.name1, p.num1))
        seen.setdefault(image_path(root, p.name2, p.num2))
    return list(seen)


def images_outside_pairs(root: str | os.PathLike, pairs_file: str | os.PathLike | None = None) -> list[Path]:
    """All LFW images that no pair of pairs.txt uses: data that can be used without touching the test set."""
    root = Path(root)
    used = set(images_in_pairs(root, read_pairs(pairs_path(root, pairs_file))))
    return [p for p in sorted(images_folder(root).glob("*/*.*")) if p.suffix.lower() in IMAGE_SUFFIXES
            and p not in used]
