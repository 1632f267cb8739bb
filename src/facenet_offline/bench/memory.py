"""Peak memory of embedding many photos: the streaming `embed` job against decoding everything first.

Each run is a fresh process over the first N LFW photos (detection, alignment and embedding), so
its peak resident memory is its own. The load-everything baseline is what a straightforward script
does (decode all photos into a list, then detect and embed in batches); it shows what streaming saves.
The "mixed" set is the same photos resized to random sizes (120 to 1600 px a side, seeded), as in a
real collection: every new size is a new input shape for the detector's runtimes. The "largest" set
has every photo at the largest of those sizes: the mixed set's peaks should stay below its peak. The "camera" set is phone photos: every photo at 4000 x 3000.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..allocator import keep_large_blocks_mapped
from ..api import FaceNet
from ..cache import atomic_write_json
from ..data.images import iter_image_paths, load_rgb
from ..data.lfw_dataset import check_lfw_dir, images_folder
from ..detect.align import AlignConfig, align_face
from ..engines import open_detector, open_embedder
from .harness import RssSampler, peak_rss_mb

log = logging.getLogger(__name__)

MODES = ("streaming", "load-all")
MIXED_SIDES = (120, 1600)
CAMERA_SIZE = (4000, 3000)  # width, height of a 12 MP phone photo


def lfw_photos(count: int) -> list[Path]:
    """The first ``count`` LFW photos in name order (all 13,233 are available)."""
    paths = []
    for path in iter_image_paths([images_folder(check_lfw_dir())]):
        paths.append(path)
        if len(paths) == count:
            return paths
    raise ValueError(f"LFW has only {len(paths)} photos; asked for {count}")


def load_all_baseline(folder: str, batch_size: int = 32) -> dict:
    """Decode every photo into memory first, then detect, align and embed in batches (of `embed`'s default size)."""
    detector, embedder = open_detector(), open_embedder()
    images = [load_rgb(p) for p in iter_image_paths([folder])]
    embedded = 0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        crops = []
        for img, det in zip(batch, detector.detect(batch)):
            face = det.select("largest")
            if len(face):
                crops.append(align_face(img, face.boxes[0], face.landmarks[0], AlignConfig()))
        embedded += len(embedder.embed(crops))
    return {"embedded": embedded}


def _child(mode: str, folder: str, out: str, result: str) -> None:
    """One measured run in this (fresh) process; its figures go to the JSON file ``result``."""
    started = time.perf_counter()
    keep_large_blocks_mapped()  # as the command line fixes it for long runs (allocator.py): both modes alike
    if mode == "streaming":  # what `facenet-offline embed FOLDER --out OUT` runs
        summary = FaceNet().embed_to_file([folder], out)
        if summary.ok == 0:
            raise SystemExit(f"nothing embedded from {folder}")
    else:
        load_all_baseline(folder)
    atomic_write_json(result, {"peak_mib": peak_rss_mb(), "wall_s": time.perf_counter() - started})


def _measure(mode: str, folder: Path, out: Path) -> dict:
    """One run in a fresh process: its own peak and wall time, and its RSS sampled from here."""
    result = out.with_suffix(".json")
    child = subprocess.Popen([sys.executable, "-m", __name__, mode, str(folder), str(out), str(result)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, TQDM_DISABLE="1"))
    with RssSampler(child.pid) as rss:
        _, stderr = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"memory run ({mode}, {folder}) failed:\n{stderr[-2000:]}")
    return {**json.loads(result.read_text()), "settled_mib": rss.settled_mib(), "drift_mib": rss.drift_mib(),
            "rss_trace": rss.trace()}


def _resized_copy(path: Path, target: Path, size: tuple[int, int]) -> None:
    with Image.open(path) as img:
        img.resize(size, Image.Resampling.BILINEAR).save(target, quality=90)


def _fill(photo_set: str, photos: Sequence[Path], folder: Path, rng) -> None:
    """``folder`` gets the photos of ``photo_set``: LFW itself (links), random sizes, the largest size, or phone size."""
    folder.mkdir()
    for k, path in enumerate(photos):
        target = folder / f"{k:05d}_{path.name}"
        if photo_set == "lfw":
            target.symlink_to(path)
        elif photo_set == "mixed":
            _resized_copy(path, target, (int(rng.integers(*MIXED_SIDES)), int(rng.integers(*MIXED_SIDES))))
        elif photo_set == "largest":
            _resized_copy(path, target, (MIXED_SIDES[1], MIXED_SIDES[1]))
        else:
            _resized_copy(path, target, CAMERA_SIZE)


def bench_memory(sizes: Sequence[int] = (500, 2000, 5000, 13233), modes: Sequence[str] = MODES,
                 mixed_sizes: Sequence[int] = (500, 2000, 5000), largest_sizes: Sequence[int] = (500, 2000),
                 camera_sizes: Sequence[int] = (100, 400)) -> dict:
    """Peak and settled RSS and wall time per (photo set, mode, number of photos), each in a fresh process.

    The mixed, largest and camera sets (``mixed_sizes``, ``largest_sizes``, ``camera_sizes``; none
    to skip) run streaming only: decoded all at once they would need many GiB; they run at a fifth,
    a tenth and a fiftieth of LFW's rate, hence their own, smaller sizes.
    """
    photos = lfw_photos(max([*sizes, *mixed_sizes, *largest_sizes, *camera_sizes]))
    rows = []
    plan = [("lfw", list(modes), sizes), ("mixed", ["streaming"], mixed_sizes), ("largest", ["streaming"], largest_sizes),
            ("camera", ["streaming"], camera_sizes)]
    with tempfile.TemporaryDirectory(prefix="facenet-offline-memory-") as tmp:
        for photo_set, set_modes, set_sizes in plan:
            rng = np.random.default_rng(0)
            for n in set_sizes:
                folder = Path(tmp) / f"{photo_set}-{n}"
                _fill(photo_set, photos[:n], folder, rng)
                for mode in set_modes:
                    figures = _measure(mode, folder, Path(tmp) / f"{photo_set}-{mode}-{n}.npz")
                    rows.append({"set": photo_set, "mode": mode, "images": n, **figures,
                                 "images_per_s": n / figures["wall_s"]})
                    log.info("memory %s %s %d photos: %.0f MiB peak, %.0f settled, %+.0f drift, %.0f s", photo_set,
                             mode, n, figures["peak_mib"], figures["settled_mib"] or 0, figures["drift_mib"] or 0,
                             figures["wall_s"])
                shutil.rmtree(folder)
    return {"rows": rows, "mixed_sides": list(MIXED_SIDES), "camera_size": list(CAMERA_SIZE)}


if __name__ == "__main__":
    _child(*sys.argv[1:5])
