"""A set of embeddings with the inputs they came from, a status per input, and how they were made."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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

    @classmethod
    def concat(cls, parts: list[EmbeddingSet], meta: dict) -> EmbeddingSet:
        """The rows of ``parts`` in order, under one ``meta``."""
        if not parts:
            raise ValueError("nothing to concatenate")
        return cls([p for part in parts for p in part.paths], np.concatenate([part.embeddings for part in parts]),
                   [s for part in parts for s in part.status], meta)


def distance_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Pairwise squared euclidean distances of unit vectors (0 = identical, 4 = opposite)."""
    e = np.asarray(embeddings, np.float64)
    sq = np.sum(e * e, axis=1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * e @ e.T, 0.0)
