"""The INT8 calibration set: a named, reproducible set of aligned LFW faces that no evaluated pair uses.

A second such set, disjoint from the first (``HELD_OUT``), measures how closely a quantized model
reproduces float32: faces neither calibration nor the benchmark sees, so the calibration method can
be chosen on them rather than on LFW accuracy.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..cache import atomic_path, home, options_key
from ..data.images import load_rgb
from ..data.lfw_dataset import (
    check_lfw_dir,
    images_identity,
    images_in_pairs,
    images_outside_pairs,
    pairs_path,
    read_pairs,
)
from ..data.tensors import standardise
from ..detect import AlignConfig, detector_on_files
from ..detect.align import align_face, centre_box
from ..errors import FacenetOfflineError
from .mtcnn import build_mtcnn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationSet:
    """``count`` images spread evenly over the LFW images outside pairs.txt (sorted by path), less
    those of ``disjoint_from`` when given."""

    count: int = 256
    name: str = "lfw-outside-pairs"
    disjoint_from: CalibrationSet | None = None

    def paths(self, lfw_dir: str | os.PathLike | None = None) -> list[Path]:
        root = check_lfw_dir(lfw_dir)
        pool = images_outside_pairs(root)
        if self.disjoint_from is not None:
            taken = set(self.disjoint_from.paths(root))
            pool = [p for p in pool if p not in taken]
        if self.count > len(pool):
            raise FacenetOfflineError(f"calibration set {self.label}: asked for {self.count} images, {len(pool)} exist")
        return [pool[i] for i in np.linspace(0, len(pool) - 1, self.count).round().astype(int)]

    @property
    def label(self) -> str:
        own = f"{self.name}-{self.count}"
        return own if self.disjoint_from is None else f"{own}-not-{self.disjoint_from.label}"


# Faces for judging a quantized model against float32: outside pairs.txt and outside the default calibration set.
HELD_OUT = CalibrationSet(256, "lfw-held-out", disjoint_from=CalibrationSet())


def check_disjoint(calibration: list[Path], pairs_file: str | os.PathLike, lfw_dir: str | os.PathLike) -> None:
    """Refuse a calibration set that shares images with the pairs being evaluated."""
    evaluated = set(images_in_pairs(lfw_dir, read_pairs(pairs_file)))
    shared = sorted(str(p) for p in calibration if Path(p) in evaluated)
    if shared:
        more = f" ... and {len(shared) - 5} more" if len(shared) > 5 else ""
        raise FacenetOfflineError(
            f"calibration set overlaps the evaluated pairs of {pairs_file} in {len(shared)} image(s): "
            f"{', '.join(shared[:5])}{more}. Calibrate on images outside the evaluation (the default set does).")


CALIBRATION_MARGIN = 32.0  # the crop the INT8 models were calibrated on (see calibration_faces)


def calibration_faces(spec, calibration: CalibrationSet = CalibrationSet(), lfw_dir: str | None = None) -> np.ndarray:
    """Standardised faces of the set, N x 3 x 160 x 160, cached: the margin-32 crop of the centre-weighted
    face. That was the default alignment when the INT8 models were calibrated and their fidelity
    measured. The default has since moved to margin 28 and the LFW job to the face nearest the centre;
    the set stays as it was, as changing it would change every INT8 model built from it."""
    root = check_lfw_dir(lfw_dir)
    paths = calibration.paths(root)
    check_disjoint(paths, pairs_path(root), root)
    # Keyed by what the images are, not only their names: two LFW copies share names.
    key = {"size": spec.input_size, "images": images_identity(paths)}
    cache = home() / "calibration" / f"{calibration.label}-{options_key(key)}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            faces = z["faces"]
    else:
        detector, crops = detector_on_files(build_mtcnn().files), []
        for start in tqdm(range(0, len(paths), 16), desc=f"calibration faces ({calibration.label})", unit="batch",
                          disable=None):
            images = [load_rgb(p) for p in paths[start:start + 16]]
            for img, det in zip(images, detector.detect(images)):
                face = det.select("centre-weighted")
                box = face.boxes[0] if len(face) else centre_box(img.shape[1], img.shape[0])
                crops.append(align_face(img, box, None, AlignConfig(image_size=spec.input_size, margin=CALIBRATION_MARGIN)))
        faces = np.stack(crops)
        with atomic_path(cache, ".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, faces=faces, paths=np.array([str(p) for p in paths]))
        log.info("calibration set %s: %d faces cached in %s", calibration.label, len(faces), cache)
    return standardise(faces, spec.norm)
