"""Export torch modules to ONNX, and check every export against the module it came from.

An export is checked three ways before anyone uses it: ``onnx.checker``, a simplification pass
with onnxslim (a maintained graph optimiser), and numerical parity against torch on real inputs.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxslim
import torch

from ..cache import atomic_path
from ..distance import max_abs_difference
from ..errors import ExportParityError
from ..runtime.onnxruntime import OnnxRuntimeBackend
from ..runtime.torch import TorchBackend
from .export_config import ExportConfig

log = logging.getLogger(__name__)

PARITY_ATOL = 1e-4


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: str | os.PathLike, config: ExportConfig) -> Path:
    """Export ``module`` traced on ``example`` to ``path`` (atomically), checked and optionally simplified."""
    path = Path(path)
    module = module.eval()
    with atomic_path(path, ".onnx") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            module, (example,), str(tmp), input_names=list(config.input_names),
            output_names=list(config.output_names), dynamic_axes=dict(config.dynamic_axes or {}),
            opset_version=config.opset, dynamo=False, do_constant_folding=True,
        )
        model = onnx.load(str(tmp))
        if config.simplify:

            model = onnxslim.slim(model)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp))
    log.info("exported %s (opset %d, %d nodes)", path, config.opset, len(model.graph.node))
    return path


def check_parity(module: torch.nn.Module, onnx_path: str | os.PathLike, batches: Sequence[np.ndarray],
                 atol: float = PARITY_ATOL) -> float:
    """Largest |torch - onnxruntime| over ``batches``; raises ExportParityError above ``atol``."""
    reference, exported = TorchBackend(module), OnnxRuntimeBackend(onnx_path)
    worst = max(max_abs_difference(r, e) for b in batches for r, e in zip(reference.run(b), exported.run(b)))
    if worst > atol:
        raise ExportParityError(f"{onnx_path}: ONNX Runtime output differs from torch by {worst:.3g} "
                                f"(tolerance {atol:g}); the export is wrong, do not use it.")
    log.info("parity %s: max abs difference %.3g (tolerance %g)", Path(onnx_path).name, worst, atol)
    return worst
