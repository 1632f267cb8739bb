"""The machine's own ceiling, measured in the same run as the models: float32 GEMM throughput."""

from __future__ import annotations

import torch

from .harness import Timing, measure


def gemm_gflops(n: int = 2048, threads: int | None = None, repeats: int = 5) -> tuple[float, Timing]:
    """GFLOP/s of an n x n x n float32 matrix product in torch (MKL/oneDNN), all threads unless told.

    The ceiling is the fastest run: noise on a shared machine only ever slows a run down, so the
    fastest is the best estimate of what the machine can do (and the strictest yardstick).
    """

    if threads:
        torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    timing = measure(lambda: a @ b, items=1, repeats=repeats, warmup=2)
    return 2.0 * n ** 3 / min(timing.runs) / 1e9, timing
