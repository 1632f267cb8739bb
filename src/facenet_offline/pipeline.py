"""Streaming jobs over many images: decode, (detect, align,) embed, collect."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .data.images import load_rgb
from .embedder import Embedder
from .embeddings import OK, EmbeddingSet
from .errors import ImageError

log = logging.getLogger(__name__)


def _decode(path: Path) -> np.ndarray | str:
    try:
        return load_rgb(path)
    except ImageError as exc:
        log.warning("%s", exc)
        return f"error: {exc}"


def embed_aligned(paths: Sequence[Path], embedder: Embedder, batch_size: int = 32,
                  progress: Callable[[int], None] | None = None, workers: int = 2) -> EmbeddingSet:
    """Embed ready face crops; undecodable inputs get an error status and a NaN row, and the run goes on.

    Decoding of the next batch runs in threads while the current batch is embedded.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    dim = embedder.spec.embedding_dim
    out = np.full((len(paths), dim), np.nan, dtype=np.float32)
    status: list[str] = [""] * len(paths)
    starts = range(0, len(paths), batch_size)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = [pool.map(_decode, paths[s:s + batch_size]) for s in starts[:1]]
        for i, start in enumerate(starts):
            decoded = list(pending.pop(0))
            if i + 1 < len(starts):
                nxt = starts[i + 1]
                pending.append(pool.map(_decode, paths[nxt:nxt + batch_size]))
            good = [j for j, d in enumerate(decoded) if not isinstance(d, str)]
            if good:
                out[[start + j for j in good]] = embedder.embed([decoded[j] for j in good])
            for j, d in enumerate(decoded):
                status[start + j] = d if isinstance(d, str) else OK
            if progress:
                progress(len(decoded))
    return EmbeddingSet([str(p) for p in paths], out, status, dict(embedder.description))
