"""The service's Prometheus metrics, in a registry of its own (one per app, so tests can run several).

With several worker processes (``serve --workers N``) each worker writes its values to files in one
folder (prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``, set by the parent before
the workers start), and ``/metrics`` sums them, whichever worker answers.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def shared_dir() -> str | None:
    """The folder the workers share their values in, or None for a server of one process."""
    return os.environ.get(MULTIPROCESS_ENV) or None


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("facenet_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("facenet_request_seconds", "Request latency by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_images = Histogram("facenet_batch_images", "Images per detector run", buckets=BATCH_BUCKETS,
                                      registry=self.registry)
        # livesum: the images waiting in every live worker together
        self.queue_depth = Gauge("facenet_queue_images", "Images waiting or running in the batcher",
                                 registry=self.registry, multiprocess_mode="livesum")
        self.faces = Counter("facenet_faces", "Faces found in processed images", registry=self.registry)
        self.images = Counter("facenet_images", "Images processed", registry=self.registry)

    def on_batch(self, images: int, faces: int) -> None:
        self.batch_images.observe(images)
        self.images.inc(images)
        self.faces.inc(faces)

    def render(self) -> bytes:
        folder = shared_dir()
        if folder is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker, folder)
        return generate_latest(every_worker)

    def close(self) -> None:
        """This worker is stopping: its live gauge no longer counts."""
        if shared_dir() is not None:
            multiprocess.mark_process_dead(os.getpid())
