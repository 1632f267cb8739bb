"""A set of embeddings with the inputs they came from, a status per input, and how they were made."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from .cache import atomic_path

OK = "ok"


@dataclass
class EmbeddingSet:
    """Row i of ``embeddings`` belongs to ``paths[i]``; rows whose status is not "ok" are NaN."""

    paths: list[str]
    embeddings: np.ndarray
    status: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> np.ndarray:
        return np.array([s == OK for s in self.status], dtype=bool)

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` atomically: a failed run leaves no file behind."""
        path = Path(path)
        with atomic_path(path, ".npz") as tmp:
            self.write(tmp)
        return path

    def write(self, path: str | os.PathLike) -> None:
        """Write the ``.npz`` in place (``save`` is the atomic form)."""
        with open(path, "wb") as fh:
            np.savez(fh, embeddings=self.embeddings.astype(np.float32), paths=np.array(self.paths, dtype=str),
                     status=np.array(self.status, dtype=str), meta=np.array(json.dumps(self.meta)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> EmbeddingSet:
        with np.load(path, allow_pickle=False) as data:
            return cls([str(p) for p in data["paths"]], data["embeddings"], [str(s) for s in data["status"]],
                       json.loads(str(data["meta"])))


@dataclass
class SetSummary:
    """Counts of a saved set, and its failed inputs (path, status): what a run reports at the end."""

    rows: int = 0
    ok: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def add(self, paths, status) -> None:
        """Count rows with these paths and statuses."""
        self.rows += len(status)
        for p, st in zip(paths, status):
            if st == OK:
                self.ok += 1
            else:
                self.failures.append((str(p), str(st)))


def save_concatenated(path: str | os.PathLike, part_files: Sequence[str | os.PathLike], meta: dict) -> SetSummary:
    """Write the rows of the ``part_files`` (saved sets) in order as one ``.npz``, atomically.

    Each array is streamed into the archive one part at a time, so memory holds one part, never
    the whole set: a run over many thousands of photos ends with as little memory as it ran with.
    The file is what ``EmbeddingSet.save`` writes (``np.load`` and ``EmbeddingSet.load`` read it).
    """
    summary, dim, widths = SetSummary(), 0, {"paths": 1, "status": 1}
    for part in part_files:  # first pass: shapes and string widths, and the summary
        with np.load(part, allow_pickle=False) as data:
            paths, status = data["paths"], data["status"]
            dim = dim or data["embeddings"].shape[1]  # the same for every part: read one
        widths = {"paths": max(widths["paths"], paths.dtype.itemsize // 4),
                  "status": max(widths["status"], status.dtype.itemsize // 4)}
        summary.add(paths, status)
    dtypes = {"embeddings": np.dtype(np.float32), "paths": np.dtype(f"<U{widths['paths']}"),
              "status": np.dtype(f"<U{widths['status']}")}
    path = Path(path)
    with atomic_path(path, ".npz") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, dtype in dtypes.items():
            shape = (summary.rows, dim) if name == "embeddings" else (summary.rows,)
            with archive.open(f"{name}.npy", "w", force_zip64=True) as fh:
                npy_format.write_array_header_1_0(fh, {"descr": npy_format.dtype_to_descr(dtype),
                                                       "fortran_order": False, "shape": shape})
                for part in part_files:
                    with np.load(part, allow_pickle=False) as data:
                        fh.write(np.ascontiguousarray(data[name], dtype).tobytes())
        with archive.open("meta.npy", "w") as fh:
            npy_format.write_array(fh, np.array(json.dumps(meta)))
    return summary


def distance_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Pairwise squared euclidean distances of unit vectors (0 = identical, 4 = opposite)."""
    e = np.asarray(embeddings, np.float64)
    sq = np.sum(e * e, axis=1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * e @ e.T, 0.0)
