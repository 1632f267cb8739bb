"""What every worker of an archive run needs to know: the model, its runtime, the face options, the threads."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..detect.align import AlignConfig
from ..detect.mtcnn import Selection
from ..engines import open_embedder
from ..face_loop import FaceOptions


@dataclass(frozen=True)
class ArchiveJob:
    """What every worker needs to open its engines and cut faces the same way: the model, its runtime,
    the face options, the threads per actor and the photos per batch."""

    model: str
    precision: str = "fp32"
    backend: str = "onnxruntime"
    detector_backend: str = "openvino"
    weights: str | None = None
    calibration: str | None = None
    options: FaceOptions = field(default_factory=lambda: FaceOptions(Selection.LARGEST, AlignConfig()))
    threads: int = 1
    batch_size: int = 32

    def open_embedder(self, threads: int | None = None):
        return open_embedder(self.model, self.backend, threads or self.threads, None, self.weights, self.precision,
                             self.calibration)
