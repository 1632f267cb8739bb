"""The Python API: ``FaceNet``, built once, then detect, embed and verify faces in any image, or many.

Every method takes any image a person has in hand: a path, bytes, a binary file object, a PIL
image or a numpy array (H x W x 3 uint8 RGB; grey and RGBA are converted). Results are
dataclasses; no face is an empty list. One instance may be called from several threads at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .data.images import ImageInput, as_source, expand_inputs
from .detect.align import AlignConfig
from .detect.mtcnn import Selection
from .distance import squared_l2
from .embedding_set import SetSummary
from .engines import open_detector, open_embedder
from .errors import FacenetOfflineError, ImageError
from .face_loop import Face, FaceOptions, ImageResult, analyse
from .folder_runs import RunConfig, embed_run
from .status import Status
from .weights import DEFAULT_MODEL, ModelSpec, OperatingPoint

log = logging.getLogger(__name__)


class NoFaceError(FacenetOfflineError):
    """A single-image call found no usable face; ``source`` names the image and ``status`` says why."""

    def __init__(self, source: str, status: Status, doing: str):
        why = "holds no face of the smallest size the detector looks for (20 px)" if str(status) == "too small" \
            else "no face found"
        super().__init__(f"{source}: {why}; cannot {doing}.")
        self.source, self.status = source, status


@dataclass
class Verification:
    """Are two faces one person? ``same`` is ``distance < threshold``, at ``operating_point``."""

    distance: float  # squared L2 between the unit-length embeddings (0 to 4)
    threshold: float
    same: bool
    operating_point: OperatingPoint
    face1: Face
    face2: Face
    model: dict = field(repr=False)


class FaceNet:
    """MTCNN detection and FaceNet embeddings on this machine, opened once and used many times.

    ``model``: a registry name (``facenet-offline models list``); ``weights`` a weights file for
    it. ``precision``: fp32, fp16 or int8 (``calibration``: INT8's method). ``backend``:
    onnxruntime, openvino, openvino-bf16 or torch (the float32 reference); ``detector_backend``:
    openvino, onnxruntime or torch; ``threads`` and ONNX Runtime ``providers`` for both.
    ``faces``: which face of an image ``embed`` and ``verify`` use by default (largest, probable,
    centre-weighted, nearest-centre, or all). ``align``: how faces are cut out (default: the
    margin-28 crop the thresholds were measured with). ``batch_size``: photos detected together
    by ``embed_many`` and ``embed_to_file``.

    Opening builds the models into the cache if they are not there yet; nothing else is done
    until a method is called. One instance may be called from several threads at once: each
    engine runs one batch at a time. A bad image raises ``ImageError`` naming it; ``verify``
    raises ``NoFaceError`` for an image without a usable face; batch calls give a status per
    image instead.
    """

    def __init__(self, model: str = DEFAULT_MODEL, precision: str = "fp32", backend: str = "onnxruntime",
                 detector_backend: str = "openvino", threads: int | None = None,
                 providers: Sequence[str] | None = None, weights: str | Path | None = None,
                 calibration: str | None = None, faces: Selection | str = Selection.LARGEST,
                 align: AlignConfig = AlignConfig(), batch_size: int = 32):
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be at least 1")
        self.options = FaceOptions(faces, align)
        self.batch_size = batch_size
        self.embedder = open_embedder(model, backend, threads, providers, str(weights) if weights else None,
                                      precision, calibration)
        self.detector_backend = detector_backend
        self.detector = open_detector(detector_backend, threads)

    def __repr__(self) -> str:
        d = self.description
        return (f"FaceNet(model={d['model']!r}, precision={d['precision']!r}, backend={d['backend']!r}, "
                f"detector_backend={self.detector_backend!r}, faces={self.options.select.value!r})")

    @property
    def spec(self) -> ModelSpec:
        return self.embedder.spec

    @property
    def description(self) -> dict:
        """What embeddings from this instance are comparable with: model, precision, backend, weights digest."""
        return dict(self.embedder.description)

    def operating_point(self, threshold: float | None = None, far: float | None = None,
                        default_far: float | None = None) -> OperatingPoint:
        """The threshold a decision uses: given, measured for ``far``, or the model's default (see ``ModelSpec``)."""
        return self.spec.operating_point(threshold, far, default_far)

    # --- one image -------------------------------------------------------------------------------
    def detect(self, image: ImageInput, crops: bool = False) -> list[Face]:
        """Every face in ``image``, most certain first: box, score, landmarks (and the aligned crop if ``crops``)."""
        return self._one(image, None, FaceOptions(Selection.ALL, self.options.align), crops).faces

    def embed(self, image: ImageInput, faces: Selection | str | None = None, aligned: bool = False) -> list[Face]:
        """The chosen face (``faces``: largest, nearest-centre, ..., or all) of ``image`` with its embedding.

        ``aligned=True``: the image is a ready face crop, embedded whole.
        """
        return self._one(image, self.embedder, self._options(faces), False, aligned=aligned).faces

    def verify(self, image1: ImageInput, image2: ImageInput, threshold: float | None = None,
               far: float | None = None, faces: Selection | str | None = None) -> Verification:
        """Is the face in ``image1`` the person in ``image2``? At ``threshold``, or the measured one for ``far``
        (1e-2, 1e-3 or 1e-4), or by default the model's accuracy-optimal threshold."""
        options = self._options(faces)
        if options.select is Selection.ALL:
            raise ValueError("verify compares one face of each image; faces='all' cannot be used there: choose "
                             "largest, probable, centre-weighted or nearest-centre.")
        point = self.operating_point(threshold, far)
        first, second = (self._one(img, self.embedder, options, False, index=i, need_face="verify").faces[0]
                         for i, img in ((1, image1), (2, image2)))
        distance = float(squared_l2(first.embedding, second.embedding))
        return Verification(distance, point.threshold, point.same(distance), point, first, second, self.description)

    # --- many images -----------------------------------------------------------------------------
    def embed_many(self, inputs: ImageInput | Iterable[ImageInput], faces: Selection | str | None = None,
                   aligned: bool = False, crops: bool = False,
                   progress: Callable[[int], None] | None = None) -> Iterator[ImageResult]:
        """Embed the chosen faces of every input (folders are walked), streaming: one ``ImageResult`` per
        input, in order, with its status; a bad input never stops the run."""
        yield from analyse(expand_inputs(inputs), None if aligned else self.detector, self.embedder,
                           self._options(faces), self.batch_size, crops, progress)

    def detect_many(self, inputs: ImageInput | Iterable[ImageInput], crops: bool = False,
                    progress: Callable[[int], None] | None = None) -> Iterator[ImageResult]:
        """Every face of every input (folders are walked), streaming, one ``ImageResult`` per input."""
        yield from analyse(expand_inputs(inputs), self.detector, None, FaceOptions(Selection.ALL, self.options.align),
                           self.batch_size, crops, progress)

    def embed_to_file(self, inputs: ImageInput | Iterable[ImageInput], out: str | Path,
                      faces: Selection | str | None = None, aligned: bool = False, resume: bool = False,
                      chunk_size: int | None = None, batch_size: int | None = None,
                      progress_factory: Callable[[int, str], object] | None = None) -> SetSummary:
        """``embed_many`` into an ``.npz`` (``EmbeddingSet.load`` reads it), written in resumable chunks.

        After an interruption the same call with ``resume=True`` computes only what is missing; it is
        refused if the model, the face options or the inputs differ.
        """
        if Path(out).suffix != ".npz":
            raise ValueError(f"out={out}: the output must be a .npz file (embeddings, paths, status).")
        return embed_run(list(expand_inputs(inputs)), self.embedder, RunConfig(Path(out), chunk_size, resume),
                         None if aligned else self.detector, self.detector_backend, self._options(faces),
                         batch_size or self.batch_size, progress_factory)

    # --- helpers ---------------------------------------------------------------------------------
    def _options(self, faces: Selection | str | None) -> FaceOptions:
        return self.options if faces is None else FaceOptions(faces, self.options.align)

    def _one(self, image: ImageInput, embedder, options: FaceOptions, crops: bool, aligned: bool = False,
             index: int | None = None, need_face: str = "") -> ImageResult:
        """One image through the face loop. A bad image raises ImageError; with ``need_face`` (what cannot be
        done without one) an image without a usable face raises NoFaceError."""
        source = as_source(image, index)
        result = next(analyse([source], None if aligned else self.detector, embedder, options, 1, crops))
        if result.status.is_error:
            raise ImageError(result.source, result.status.detail)
        if need_face and not result.faces:
            raise NoFaceError(result.source, result.status, need_face)
        return result
