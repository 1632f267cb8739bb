"""What every worker of an archive run needs to know: the model, its runtime, the face options, the threads."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..detect import MTCNNDetector, detector_on_files
from ..detect.align import AlignConfig
from ..detect.mtcnn import Selection
from ..embedder import Embedder, embedder_on_file
from ..face_loop import FaceOptions
from ..weights import get_spec


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
    # The models as the driver built them: workers on its node open these files, and so never import torch
    # or build (about a second and 300 MB less per actor); a worker on a node without them builds its own.
    facenet_file: str | None = None
    facenet_build: dict | None = None
    mtcnn_files: dict[str, str] | None = None

    def with_built_models(self) -> ArchiveJob:
        """This job with the models built into this machine's cache and their files named."""
        from ..engines import build_embedder
        from ..model_cache import DetectorBuildOptions, build_mtcnn

        built, build = build_embedder(self.model, self.weights, self.precision, self.calibration)
        mtcnn = build_mtcnn(DetectorBuildOptions())
        return replace(self, facenet_file=str(built.path), facenet_build=build,
                       mtcnn_files={k: str(v) for k, v in mtcnn.files.items()})

    def open_embedder(self) -> Embedder:
        if self.facenet_file and Path(self.facenet_file).is_file() and self.backend != "torch":
            return embedder_on_file(self.facenet_file, get_spec(self.facenet_build["model"]), self.facenet_build,
                                    self.backend, self.threads)
        from ..engines import open_embedder

        return open_embedder(self.model, self.backend, self.threads, None, self.weights, self.precision,
                             self.calibration)

    def open_detector(self) -> MTCNNDetector:
        if self.mtcnn_files and all(Path(p).is_file() for p in self.mtcnn_files.values()) \
                and self.detector_backend != "torch":
            return detector_on_files({k: Path(v) for k, v in self.mtcnn_files.items()}, self.detector_backend,
                                     self.threads)
        from ..engines import open_detector

        return open_detector(self.detector_backend, self.threads)
