"""LFW on disk: where it is, its image paths, and the pairs of the verification protocol."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import FacenetOfflineError

LFW_ENV = "FACENET_OFFLINE_LFW"
IMAGES_SUBDIR = "lfw-deepfunneled"


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


def check_lfw_dir(lfw_dir: str | os.PathLike | None = None) -> Path:
    """The LFW root, verified to hold the images and pairs.txt, or an error saying where to put them."""
    root = Path(lfw_dir) if lfw_dir else default_lfw_dir()
    if not (root / IMAGES_SUBDIR).is_dir() or not (root / "pairs.txt").is_file():
        raise FacenetOfflineError(
            f"{root}: LFW not found (expected {IMAGES_SUBDIR}/ and pairs.txt there). "
            f"Pass --lfw-dir DIR or set {LFW_ENV}=DIR.")
    return root


def image_path(root: str | os.PathLike, name: str, num: int) -> Path:
    return Path(root) / IMAGES_SUBDIR / name / f"{name}_{num:04d}.jpg"


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
    used = set(images_in_pairs(root, read_pairs(pairs_file or root / "pairs.txt")))
    return [p for p in sorted((root / IMAGES_SUBDIR).glob("*/*.jpg")) if p not in used]
