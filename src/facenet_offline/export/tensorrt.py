"""TensorRT engines (FP16, calibrated INT8) from an ONNX file. Needs the ``tensorrt`` package and a GPU.

Written for the TensorRT 10 Python API; it has not run on this project's CI machines (no GPU there),
so `export --target tensorrt` only calls it where both exist.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..cache import atomic_path


def build_engine(onnx_path: Path, target: Path, precision: str, calibration: np.ndarray,
                 batches: tuple[int, int, int] = (1, 64, 128)) -> Path:  # pragma: no cover - needs a GPU
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        raise RuntimeError("; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    shape = calibration.shape[1:]
    profile = builder.create_optimization_profile()
    profile.set_shape("input", *[(b, *shape) for b in batches])
    config.add_optimization_profile(profile)
    config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _Calibrator(calibration, batch=min(32, len(calibration)), torch=torch, trt=trt)
        config.set_calibration_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError(f"TensorRT could not build a {precision} engine from {onnx_path}")
    with atomic_path(target, ".plan") as tmp:
        tmp.write_bytes(bytes(engine))
    return target


def _Calibrator(data: np.ndarray, batch: int, torch, trt):  # pragma: no cover - needs a GPU
    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.index, self.device = 0, None

        def get_batch_size(self):
            return batch

        def get_batch(self, names):
            if self.index + batch > len(data):
                return None
            self.device = torch.from_numpy(np.ascontiguousarray(data[self.index:self.index + batch])).cuda()
            self.index += batch
            return [int(self.device.data_ptr())]

        def read_calibration_cache(self):
            return None

        def write_calibration_cache(self, cache):
            return None

    return Calibrator()
