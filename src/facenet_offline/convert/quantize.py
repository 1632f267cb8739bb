"""Lower-precision models, file in and file out: FP16 by onnxconverter-common, INT8 by ONNX Runtime's
static quantization (QDQ, per-channel weights) calibrated on a named set of real aligned faces.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnxconverter_common import float16
from onnxruntime.quantization import CalibrationMethod as OrtMethod
from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static
from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

from ..cache import atomic_path
from ..choices import DEFAULT_CALIBRATION, CalibrationMethod

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Int8Config:
    """How to quantize: calibration method, and ONNX Runtime's knobs that matter on x86."""
    method: CalibrationMethod = DEFAULT_CALIBRATION
    per_channel: bool = True
    # AVX2 without VNNI multiplies u8 x s8 with 16-bit intermediate sums that can saturate;
    # 7-bit weights avoid it (ONNX Runtime's documented advice for such CPUs). With VNNI the
    # full 8 bits are safe and more accurate.
    reduce_range: bool = field(default_factory=lambda: not cpu_has_vnni())

    def __post_init__(self):
        object.__setattr__(self, "method", CalibrationMethod(self.method))


def cpu_has_vnni() -> bool:
    """Whether this x86 CPU has VNNI (AVX512-VNNI or AVX-VNNI): int8 dot products without saturation."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def to_fp16(source: str | Path, target: str | Path) -> Path:
    """FP16 weights and arithmetic, float32 inputs and outputs kept (onnxconverter-common)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny weights truncated to fp16's range: expected
        model = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.checker.check_model(model)
    with atomic_path(target, ".onnx") as tmp:
        onnx.save(model, str(tmp))
    return Path(target)


class _Batches:
    """ONNX Runtime's CalibrationDataReader over model inputs.

    An array is cut into batches of one size (the largest divisor of the count up to ``batch_size``):
    the histogram calibrators stack all batches of a tensor and fail on a shorter last one. A list
    is taken as the batches themselves, which may differ in shape (a detector's pyramid levels).
    """

    def __init__(self, input_name: str, data: np.ndarray | Sequence[np.ndarray], batch_size: int = 16):
        if isinstance(data, np.ndarray):
            batch_size = max(d for d in range(1, min(batch_size, len(data)) + 1) if len(data) % d == 0)
            data = [data[i:i + batch_size] for i in range(0, len(data), batch_size)]
        self._it: Iterator[dict] = ({input_name: batch} for batch in data)

    def get_next(self) -> dict | None:
        return next(self._it, None)


# Calibrator settings ONNX Runtime's quantize_static does not forward (it passes symmetry, moving
# averages and the percentile only). Its entropy default of 128 histogram bins equals the 128
# quantized bins, which leaves the KL search one candidate, the full range: minmax under another
# name. 2,048 bins (TensorRT's) give it a range to search; 256 quantized bins are uint8's levels.
_CALIBRATOR_OPTIONS = {
    CalibrationMethod.MINMAX: {},
    CalibrationMethod.ENTROPY: {"num_bins": 2048, "num_quantized_bins": 256},
    CalibrationMethod.PERCENTILE: {"num_bins": 2048, "percentile": 99.999},
}


def calibrator_options(method: CalibrationMethod | str) -> dict:
    """What ONNX Runtime's calibrator is told for ``method``; a build depends on it."""
    return {"symmetric": False, **_CALIBRATOR_OPTIONS[CalibrationMethod(method)]}


def to_int8(source: str | Path, target: str | Path, calibration: np.ndarray | Sequence[np.ndarray],
            config: Int8Config = Int8Config()) -> Path:
    """Static INT8 (QDQ) of ``source`` calibrated on ``calibration``: model-ready float32 inputs, one
    N x C x H x W array, or a list of batches whose heights and widths may differ (minmax only, as the
    histogram calibrators cannot pool tensors of different shapes).

    The activation ranges are computed by ONNX Runtime's own calibrator with every option set here,
    then handed to quantize_static as its calibration cache.
    """

    if len(calibration) == 0:
        raise ValueError(f"INT8 calibration of {source} got no inputs; calibrate on at least one image (256 by default).")
    if not isinstance(calibration, np.ndarray) and config.method is not CalibrationMethod.MINMAX \
            and len({batch.shape[1:] for batch in calibration}) > 1:
        raise ValueError(f"INT8 calibration of {source}: {config.method.value} cannot pool batches of different "
                         "shapes; calibrate with minmax, or give batches of one shape.")


    methods = {CalibrationMethod.MINMAX: OrtMethod.MinMax, CalibrationMethod.ENTROPY: OrtMethod.Entropy,
               CalibrationMethod.PERCENTILE: OrtMethod.Percentile}
    input_name = onnx.load(str(source), load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp_dir, atomic_path(target, ".onnx") as tmp:
        prepared, ranges = Path(tmp_dir) / "prepared.onnx", Path(tmp_dir) / "ranges.json"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        calibrator = create_calibrator(prepared, augmented_model_path=str(Path(tmp_dir) / "augmented.onnx"),
                                       calibrate_method=methods[config.method],
                                       extra_options=calibrator_options(config.method))
        calibrator.collect_data(_Batches(input_name, calibration))
        save_tensors_data(calibrator.compute_data(), ranges)
        del calibrator
        quantize_static(str(prepared), str(tmp), quant_format=QuantFormat.QDQ,
                        per_channel=config.per_channel, reduce_range=config.reduce_range,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[config.method], calibration_cache_path=ranges)
        onnx.checker.check_model(str(tmp))
    log.info("quantized %s -> %s (%s, %d calibration inputs)", source, target, config.method.value, len(calibration))
    return Path(target)
