"""A set of embeddings on disk (``embed``'s ``.npz``): one row per face, with where each face came from.

Row i holds one face of input ``inputs[i]`` (``paths[i]``): its embedding, ``faces[i]`` (its place
among the faces found in that image, most certain first) and ``boxes[i]`` (x1, y1, x2, y2 in the
image's pixels). An input without a usable face has one row: NaN embedding, face -1, NaN box,
and its status.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from .cache import atomic_path
from .status import Status


@dataclass
class EmbeddingSet:
    paths: list[str]
    embeddings: np.ndarray
    status: list[Status]
    meta: dict = field(default_factory=dict)
    inputs: np.ndarray | None = None  # the input each row belongs to (its position in the run)
    faces: np.ndarray | None = None
    boxes: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.paths)
        self.status = [Status.parse(s) for s in self.status]
        self.inputs = np.arange(n, dtype=np.int64) if self.inputs is None else np.asarray(self.inputs, np.int64)
        ok = self.ok
        self.faces = np.where(ok, 0, -1).astype(np.int32) if self.faces is None else np.asarray(self.faces, np.int32)
        self.boxes = (np.full((n, 4), np.nan, np.float32) if self.boxes is None
                      else np.asarray(self.boxes, np.float32).reshape(n, 4))

    @property
    def ok(self) -> np.ndarray:
        return np.array([s.ok for s in self.status], dtype=bool)

    @classmethod
    def from_results(cls, results: Iterable, meta: dict, dim: int = 0, first_input: int = 0) -> EmbeddingSet:
        """Rows of ``pipeline.ImageResult``s (each input's faces, or one row with its status); ``dim`` is the
        embedding size, for a set in which no face was embedded."""
        paths, vectors, status, inputs, faces, boxes = [], [], [], [], [], []
        for i, result in enumerate(results, start=first_input):
            for face in result.faces or [None]:
                paths.append(result.source)
                inputs.append(i)
                status.append(result.status)
                vectors.append(None if face is None else face.embedding)
                faces.append(-1 if face is None else face.index)
                boxes.append(np.full(4, np.nan, np.float32) if face is None else face.box)
                dim = dim or (len(face.embedding) if face is not None else 0)
        embeddings = np.full((len(paths), dim), np.nan, np.float32)
        for row, vector in enumerate(vectors):
            if vector is not None:
                embeddings[row] = vector
        return cls(paths, embeddings, status, meta, np.array(inputs, np.int64), np.array(faces, np.int32),
                   np.array(boxes, np.float32).reshape(-1, 4))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"embeddings": self.embeddings.astype(np.float32), "paths": np.array(self.paths, dtype=str),
                "status": np.array([str(s) for s in self.status], dtype=str), "inputs": self.inputs,
                "faces": self.faces, "boxes": self.boxes}

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` atomically: a failed run leaves no file behind."""
        path = Path(path)
        with atomic_path(path, ".npz") as tmp:
            self.write(tmp)
        return path

    def write(self, path: str | os.PathLike) -> None:
        """Write the ``.npz`` in place (``save`` is the atomic form)."""
        with open(path, "wb") as fh:
            np.savez(fh, **self.arrays(), meta=np.array(json.dumps(self.meta)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> EmbeddingSet:
        with np.load(path, allow_pickle=False) as data:
            optional = {k: data[k] for k in ("inputs", "faces", "boxes") if k in data.files}
            return cls([str(p) for p in data["paths"]], data["embeddings"], [str(s) for s in data["status"]],
                       json.loads(str(data["meta"])), **optional)


@dataclass
class SetSummary:
    """Counts of a saved set and its failed inputs (path, status): what a run reports at the end."""

    inputs: int = 0
    ok: int = 0  # inputs with at least one face embedded
    faces: int = 0
    failures: list[tuple[str, Status]] = field(default_factory=list)

    def add(self, paths: Sequence[str], status: Sequence, inputs: Sequence[int]) -> None:
        """Count rows with these paths, statuses and input numbers (rows of one input come together)."""
        last = None
        for p, st, i in zip(paths, status, inputs):
            st = Status.parse(str(st))
            if i != last:
                self.inputs += 1
                self.ok += st.ok
                if not st.ok:
                    self.failures.append((str(p), st))
                last = i
            self.faces += st.ok


def save_concatenated(path: str | os.PathLike, part_files: Sequence[str | os.PathLike], meta: dict,
                      on_full: str = "free space there and run it again") -> SetSummary:
    """Write the rows of the ``part_files`` (saved sets) in order as one ``.npz``, atomically.

    Each array is streamed into the archive one part at a time, so memory holds one part, never
    the whole set: a run over many thousands of photos ends with as little memory as it ran with.
    The file is what ``EmbeddingSet.save`` writes (``np.load`` and ``EmbeddingSet.load`` read it).
    """
    summary, rows, layout = SetSummary(), 0, {}
    for part in part_files:  # first pass: row count, each array's dtype and row shape, and the summary
        loaded = EmbeddingSet.load(part)
        for name, array in loaded.arrays().items():
            known = layout.get(name)
            if array.dtype.kind == "U" and known is not None and known[0].itemsize < array.dtype.itemsize:
                known = None  # a wider string column
            if known is None or (name == "embeddings" and known[1] == (0,)):
                layout[name] = (array.dtype, array.shape[1:])
        summary.add(loaded.paths, loaded.status, loaded.inputs)
        rows += len(loaded.paths)
    path = Path(path)
    with atomic_path(path, ".npz", on_full) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, (dtype, tail) in layout.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as fh:
                npy_format.write_array_header_1_0(fh, {"descr": npy_format.dtype_to_descr(dtype),
                                                       "fortran_order": False, "shape": (rows, *tail)})
                for part in part_files:
                    array = EmbeddingSet.load(part).arrays()[name]
                    if array.shape[1:] != tail:  # a part where no input had a face: NaN rows of the set's width
                        array = np.full((len(array), *tail), np.nan, dtype)
                    fh.write(np.ascontiguousarray(array, dtype).tobytes())
        with archive.open("meta.npy", "w") as fh:
            npy_format.write_array(fh, np.array(json.dumps(meta)))
    return summary
