"""The service's Prometheus metrics, in a registry of its own (one per app, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("facenet_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("facenet_request_seconds", "Request latency by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_images = Histogram("facenet_batch_images", "Images per detector run", buckets=BATCH_BUCKETS,
                                      registry=self.registry)
        self.queue_depth = Gauge("facenet_queue_images", "Images waiting or running in the batcher",
                                 registry=self.registry)
        self.faces = Counter("facenet_faces", "Faces found in processed images", registry=self.registry)
        self.images = Counter("facenet_images", "Images processed", registry=self.registry)

    def on_batch(self, images: int, faces: int) -> None:
        self.batch_images.observe(images)
        self.images.inc(images)
        self.faces.inc(faces)

    def render(self) -> bytes:
        return generate_latest(self.registry)
