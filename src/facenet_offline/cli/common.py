"""Arguments and helpers every subcommand shares: building the library's objects from flags, printing.

The library's heavy parts are imported inside the helpers that need them, so that building the
parser (and ``--help``) imports no engine.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from ..choices import DEFAULT_CALIBRATION, CalibrationMethod, Precision
from ..detect import DETECTOR_BACKENDS
from ..detect.align import AlignConfig, AlignMethod
from ..detect.mtcnn import Selection
from ..embedder import BackendName
from ..errors import FacenetOfflineError
from ..weights import DEFAULT_MODEL, MODELS


def add_model_args(p: argparse.ArgumentParser, from_gallery: bool = False) -> None:
    """``from_gallery``: a command that adds to or searches a gallery, whose model and precision are the
    defaults (``take_gallery_model``)."""
    model, precision = (("the gallery's; for a new one " + DEFAULT_MODEL, "the gallery's; for a new one fp32")
                        if from_gallery else (DEFAULT_MODEL, "fp32"))
    p.add_argument("--model", default=None if from_gallery else DEFAULT_MODEL,
                   help=f"one of {', '.join(MODELS)} (default {model})")
    p.add_argument("--weights", help="path to the weights file (of a model whose file is not installed: vggface2, "
                                     "or ms-celeb-1m without models fetch)")
    p.add_argument("--precision", default=None if from_gallery else "fp32", choices=[m.value for m in Precision],
                   help=f"the model's arithmetic (default {precision}; int8 is about twice as fast, docs/precision.md)")
    p.add_argument("--calibration", default=DEFAULT_CALIBRATION.value, choices=[m.value for m in CalibrationMethod],
                   help=f"INT8 calibration method (default {DEFAULT_CALIBRATION.value}: the closest to float32 on "
                        "held-out faces, docs/precision.md)")


THREADS_HELP = "intra-op threads (default: all cores)"


def add_runtime_args(p: argparse.ArgumentParser, threads_help: str = THREADS_HELP) -> None:
    p.add_argument("--backend", default="onnxruntime", choices=[b.value for b in BackendName],
                   help="embedding backend (default onnxruntime; openvino-bf16: OpenVINO in bfloat16 arithmetic, "
                        "for CPUs with AMX or AVX512-BF16, docs/precision.md)")
    p.add_argument("--threads", type=int, default=None, help=threads_help)
    p.add_argument("--providers", default=None,
                   help="comma-separated ONNX Runtime providers, e.g. CUDAExecutionProvider,CPUExecutionProvider")


def add_run_args(p: argparse.ArgumentParser, out_help: str, batch_size: int) -> None:
    """Inputs, output, batch size and the resumable-run options of a long run over photos."""
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--batch-size", type=int, default=batch_size,
                   help=f"photos decoded and detected together (default {batch_size}; "
                        "fewer for large photos: at most 2^25 pixels)")
    p.add_argument("--strict", action="store_true", help="exit non-zero if any input failed")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run with the same --out, settings and inputs (finished chunks kept)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="inputs per chunk written to <out>.parts/ as the run goes (default: at most 256, and at least "
                        "16 chunks; --resume takes the interrupted run's)")


def add_face_args(p: argparse.ArgumentParser, select: str, margin: float | None = None) -> None:
    """Face selection and alignment options; ``margin`` defaults to ``AlignConfig``'s."""
    margin = AlignConfig().margin if margin is None else margin
    p.add_argument("--select", default=select, choices=[s.value for s in Selection],
                   help=f"which face(s) of an image to use (default {select})")
    p.add_argument("--align", default=AlignMethod.MARGIN.value, choices=[m.value for m in AlignMethod],
                   help="how a face is cut out: facenet-pytorch's margin crop (default), davidsandberg's, or a "
                        "five-landmark similarity transform")
    p.add_argument("--margin", type=float, default=margin, help=f"crop margin in pixels (default {margin:g})")
    add_detector_arg(p)


def add_detector_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector-backend", default="openvino", choices=DETECTOR_BACKENDS,
                   help="runtime of the MTCNN detector (default openvino, the fastest here: docs/benchmarks.md)")


def add_embedding_args(p: argparse.ArgumentParser, select: str | None = None, margin: float | None = None,
                       from_gallery: bool = False, threads_help: str = THREADS_HELP) -> None:
    """Model, runtime and face options: what a command that finds and embeds faces needs.

    With ``select`` the face selection and alignment options too (with their default selection and
    margin), else only the detector backend. ``from_gallery``: see ``add_model_args``.
    """
    add_model_args(p, from_gallery)
    add_runtime_args(p, threads_help)
    if select:
        add_face_args(p, select=select, margin=margin)
    else:
        add_detector_arg(p)


def add_threshold_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--threshold", type=float, default=None,
                   help="squared L2 distance below which two faces are one person (overrides --far)")
    p.add_argument("--far", type=float, default=None,
                   help=f"the false-accept rate to hold: 0.01, 0.001 or 0.0001, thresholds measured on LFW View 1 "
                        f"(docs/operating-points.md; default {default})")


def input_paths(inputs: list[str]) -> list[Path]:
    """The image files of the inputs (folders walked), or an error naming inputs that are not there."""
    from ..data.images import iter_image_paths

    missing = [p for p in inputs if not Path(p).exists() and not Path(p).is_symlink()]
    if missing:
        raise FacenetOfflineError(f"input not found: {', '.join(missing)}; check the path.")
    paths = list(iter_image_paths(inputs))
    if not paths:
        raise FacenetOfflineError(f"no images found in {', '.join(inputs)}.")
    return paths


def take_gallery_model(args: argparse.Namespace, folder=None) -> None:
    """--model and --precision, where not given, become the gallery's own (``folder``, default --gallery):
    faces added to or searched in a gallery must be embedded as its faces were (a new gallery takes the
    defaults)."""
    from ..recognition import Gallery

    stored = Gallery.stored_model(folder or args.gallery)
    args.model = args.model or stored.get("model") or DEFAULT_MODEL
    args.precision = args.precision or stored.get("precision") or "fp32"


def open_facenet(args: argparse.Namespace):
    """The library's ``FaceNet`` as the flags say."""
    from ..api import FaceNet

    return FaceNet(args.model, args.precision, args.backend, args.detector_backend, args.threads,
                   args.providers.split(",") if args.providers else None, args.weights, args.calibration,
                   faces=getattr(args, "select", Selection.LARGEST), align=align_config(args))


def open_embedder(args: argparse.Namespace):
    from ..engines import open_embedder as open_

    return open_(args.model, args.backend, args.threads, args.providers.split(",") if args.providers else None,
                 args.weights, args.precision, args.calibration)


def align_config(args: argparse.Namespace) -> AlignConfig:
    if not hasattr(args, "align"):
        return AlignConfig()
    return AlignConfig(method=args.align, margin=args.margin)


def progress(total: int, desc: str):
    """A progress bar with rate and ETA on a terminal (none when output is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc=desc, disable=None, dynamic_ncols=True)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 face``, ``2 faces``, ``1 person``, ``3 people``."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


SHOWN_FAILURES = 20  # a folder of thousands of photos without faces must not bury the summary line


def report_failures(failures: Sequence[tuple[str, object]], where: str | None = None) -> int:
    """Print the first failed inputs (``path: status``) to stderr and how many more; return how many failed."""
    for path, status in failures[:SHOWN_FAILURES]:
        print(f"{path}: {status}", file=sys.stderr)
    if len(failures) > SHOWN_FAILURES:
        print(f"... and {len(failures) - SHOWN_FAILURES} more failed inputs"
              + (f" (every input's status is in {where})" if where else ""), file=sys.stderr)
    return len(failures)


# Library errors name parameters (``threshold=``); on the command line they are flags. The few whose
# flag is not the parameter's name are listed.
_FLAG_NAMES = {"faces": "select", "images": "paths", "input_dir": "input", "output_dir": "output"}
_PARAMETER = re.compile(r"(?<![-\w])([a-z][a-z_]*)=(?!=)(True\b|'([^']*)'|(?=[\s(),;.]|$)|(\S+?)(?=[\s),;]|\.?$))")


def as_flags(message: str) -> str:
    """``threshold=T`` -> ``--threshold T``, ``resume=True`` -> ``--resume``, ``faces='all'`` -> ``--select all``."""
    def flag(m: re.Match) -> str:
        name = "--" + _FLAG_NAMES.get(m[1], m[1]).replace("_", "-")
        if m[2] == "True":
            return name
        value = m[3] if m[3] is not None else (m[4] or "")
        return f"{name} {value}" if value else name

    return _PARAMETER.sub(flag, message)
