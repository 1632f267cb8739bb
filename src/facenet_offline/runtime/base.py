"""The one interface every inference backend implements: a float32 batch in, the float32 outputs out."""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """A loaded network that maps an input batch to its outputs, in the network's output order."""

    name: str

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """Run one batch (N x C x H x W float32) and return every output as float32."""
        ...


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, which a container or ``taskset`` may narrow."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
