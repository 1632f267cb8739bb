"""Torch eager backend: the reference every exported model is checked against."""

from __future__ import annotations

import numpy as np
import torch


class TorchBackend:
    """Runs a torch module in eval mode without gradients."""

    def __init__(self, module: torch.nn.Module, threads: int | None = None):
        self.module = module.eval()
        self.name = "torch"
        if threads:
            torch.set_num_threads(threads)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(np.ascontiguousarray(batch, np.float32)))
        return tuple(t.numpy() for t in out) if isinstance(out, (tuple, list)) else (out.numpy(),)
