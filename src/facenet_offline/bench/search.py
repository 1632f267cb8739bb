"""Gallery search at 10^4 to 10^6 vectors: exact (FAISS flat inner product) against approximate (FAISS HNSW).

Synthetic vectors stand in for a large gallery, with the structure of face embeddings: unit
vectors in 512 dimensions around one centre per person (five faces each), so nearest neighbours
are meaningful and an approximate index can miss them. Queries are new faces of gallery people.
Each size runs in a fresh process, so its peak memory is its own; exact search is a matrix product,
so its rate is shown against the machine's GEMM ceiling.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from ..cache import atomic_write_json
from .harness import peak_rss_mb

log = logging.getLogger(__name__)

DIM = 512
FACES_PER_PERSON = 5
NOISE = 0.06  # per-dimension spread around a person's centre: same-person cosine ~0.35-0.5, like real embeddings
QUERIES = 1000
# HNSW graph: 32 links per vector, 80 candidates while building, 256 while searching. (IVF with 4 sqrt(N)
# lists and 16 probes was tried first: recall@1 0.68 / 0.33 / 0.13 at 10^4 / 10^5 / 10^6 on these vectors.)
HNSW_M, EF_CONSTRUCTION, EF_SEARCH = 32, 80, 256


def synthetic_gallery(n: int, seed: int = 0, dim: int = DIM) -> tuple[np.ndarray, np.ndarray]:
    """(n unit vectors, QUERIES unit query vectors of people in the gallery), built in float32 chunks."""
    rng = np.random.default_rng(seed)
    people = max(1, n // FACES_PER_PERSON)
    centres = rng.standard_normal((people, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def faces(owner: np.ndarray) -> np.ndarray:
        v = centres[owner] + NOISE * rng.standard_normal((len(owner), dim), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    vectors = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        vectors[start:stop] = faces(np.arange(start, stop) % people)
    return vectors, faces(rng.integers(0, people, QUERIES))


def _peak_mib() -> float:
    return peak_rss_mb()


def measure_size(n: int) -> dict:
    """Build both indexes over ``n`` vectors, time batched and single-query search, recall@1 of IVF."""
    vectors, queries = synthetic_gallery(n)
    base = _peak_mib()
    rows = {}
    exact = faiss.IndexFlatIP(DIM)
    start = time.perf_counter()
    exact.add(vectors)
    build_exact = time.perf_counter() - start
    approx = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    approx.hnsw.efConstruction = EF_CONSTRUCTION
    start = time.perf_counter()
    approx.add(vectors)
    build_approx = time.perf_counter() - start
    approx.hnsw.efSearch = EF_SEARCH
    truth = None
    for name, index, build in (("exact (flat)", exact, build_exact), (f"HNSW{HNSW_M}, efSearch {EF_SEARCH}", approx, build_approx)):
        index.search(queries[:10], 1)  # warm-up
        start = time.perf_counter()
        _, ids = index.search(queries, 1)
        batched = (time.perf_counter() - start) / len(queries)
        single = []
        for q in queries[:50]:
            t = time.perf_counter()
            index.search(q[None], 1)
            single.append(time.perf_counter() - t)
        if truth is None:
            truth = ids[:, 0]
        rows[name] = {"build_s": build, "batched_ms_per_query": batched * 1e3,
                      "single_ms_p50": float(np.median(single) * 1e3), "single_ms_p99": float(np.percentile(single, 99) * 1e3),
                      "recall_at_1": float(np.mean(ids[:, 0] == truth)),
                      "index_mib": faiss.serialize_index(index).nbytes / 2**20}
    flops = 2.0 * n * DIM  # per query, exact search
    rows["exact (flat)"]["gflops"] = flops / (rows["exact (flat)"]["batched_ms_per_query"] / 1e3) / 1e9
    return {"vectors": n, "vectors_mib": vectors.nbytes / 2**20, "rows": rows, "peak_mib": _peak_mib(),
            "peak_mib_before_indexes": base}


def bench_search(sizes: Sequence[int] = (10_000, 100_000, 1_000_000)) -> dict:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            result = Path(tmp) / f"{n}.json"
            done = subprocess.run([sys.executable, "-m", __name__, str(n), str(result)], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"search benchmark at {n} vectors failed:\n{done.stderr[-2000:]}")
            out.append(json.loads(result.read_text()))
        log.info("search %d vectors: %s", n, out[-1]["rows"])
    return {"sizes": out, "dim": DIM, "queries": QUERIES, "faces_per_person": FACES_PER_PERSON, "noise": NOISE,
            "hnsw": {"M": HNSW_M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF_SEARCH}}


if __name__ == "__main__":

    atomic_write_json(sys.argv[2], measure_size(int(sys.argv[1])))
