"""Arguments and helpers every subcommand shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import FacenetOfflineError


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from ..export.quantize import DEFAULT_CALIBRATION, CalibrationMethod
    from ..weights import DEFAULT_MODEL, MODELS

    p.add_argument("--model", default=DEFAULT_MODEL, help=f"one of {', '.join(MODELS)} (default {DEFAULT_MODEL})")
    p.add_argument("--weights", help="path to the weights file (for user-supplied models such as vggface2)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--calibration", default=DEFAULT_CALIBRATION.value, choices=[m.value for m in CalibrationMethod],
                   help=f"INT8 calibration method (default {DEFAULT_CALIBRATION.value}: the closest to float32 on "
                        "held-out faces, docs/precision.md)")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    from ..embedder import BackendName

    p.add_argument("--backend", default="onnxruntime", choices=[b.value for b in BackendName],
                   help="embedding backend (default onnxruntime; openvino-bf16: OpenVINO in bfloat16 arithmetic, "
                        "for CPUs with AMX or AVX512-BF16, docs/precision.md)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--providers", default=None,
                   help="comma-separated ONNX Runtime providers, e.g. CUDAExecutionProvider,CPUExecutionProvider")


def _add_run_args(p: argparse.ArgumentParser, out_help: str, batch_size: int) -> None:
    """Inputs, output, batch size and the resumable-run options of a long run over photos."""
    from ..jobs import DEFAULT_CHUNK_SIZE

    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--batch-size", type=int, default=batch_size,
                   help=f"photos decoded and detected together (default {batch_size}; "
                        "fewer for large photos: at most 2^25 pixels)")
    p.add_argument("--strict", action="store_true", help="exit non-zero if any input failed")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run with the same --out, settings and inputs (finished chunks kept)")
    p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                   help=f"inputs per chunk written to <out>.parts/ as the run goes (default {DEFAULT_CHUNK_SIZE})")


def _add_face_args(p: argparse.ArgumentParser, select: str, margin: float | None = None) -> None:
    """Face selection and alignment options; ``margin`` defaults to ``AlignConfig``'s."""
    from ..detect import DETECTOR_BACKENDS
    from ..detect.align import AlignConfig, AlignMethod
    from ..detect.mtcnn import Selection

    margin = AlignConfig().margin if margin is None else margin

    p.add_argument("--select", default=select, choices=[s.value for s in Selection],
                   help=f"which face(s) of an image to use (default {select})")
    p.add_argument("--align", default=AlignMethod.MARGIN.value, choices=[m.value for m in AlignMethod])
    p.add_argument("--margin", type=float, default=margin, help=f"crop margin in pixels (default {margin:g})")
    p.add_argument("--detector-backend", default="openvino", choices=DETECTOR_BACKENDS)


def _input_paths(inputs: list[str]) -> list[Path]:
    from ..data.images import iter_image_paths

    missing = [p for p in inputs if not Path(p).exists() and not Path(p).is_symlink()]
    if missing:
        raise FacenetOfflineError(f"input not found: {', '.join(missing)}; check the path.")
    paths = list(iter_image_paths(inputs))
    if not paths:
        raise FacenetOfflineError(f"no images found in {', '.join(inputs)}.")
    return paths


def _open_embedder(args: argparse.Namespace):
    from ..embedder import open_embedder

    providers = args.providers.split(",") if args.providers else None
    return open_embedder(args.model, args.backend, args.threads, providers, args.weights, args.precision,
                         args.calibration)


def _align_config(args: argparse.Namespace):
    from ..detect import AlignConfig

    return AlignConfig(method=args.align, margin=args.margin)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc=desc, disable=None, dynamic_ncols=True)


def _run_config(args: argparse.Namespace):
    from ..jobs import RunConfig

    return RunConfig(Path(args.out), args.chunk_size, args.resume)


SHOWN_FAILURES = 20  # a folder of thousands of photos without faces must not bury the summary line


def _report_failures(failures: Sequence[tuple[str, str]], where: str | None = None) -> int:
    """Print the first failed inputs (path: status) to stderr and how many more; return how many failed."""
    for path, status in failures[:SHOWN_FAILURES]:
        print(status if str(path) in status else f"{path}: {status}", file=sys.stderr)
    if len(failures) > SHOWN_FAILURES:
        print(f"... and {len(failures) - SHOWN_FAILURES} more failed inputs"
              + (f" (every input's status is in {where})" if where else ""), file=sys.stderr)
    return len(failures)


def _add_embedding_args(p: argparse.ArgumentParser, select: str | None = None, margin: float | None = None) -> None:
    """Model, runtime and face options: what a command that finds and embeds faces needs.

    With ``select`` the face selection and alignment options too (with their default selection and
    margin), else only the detector backend.
    """
    from ..detect import DETECTOR_BACKENDS

    _add_model_args(p)
    _add_runtime_args(p)
    if select:
        _add_face_args(p, select=select, margin=margin)
    else:
        p.add_argument("--detector-backend", default="openvino", choices=DETECTOR_BACKENDS)
