"""OpenVINO backend: reads our ONNX files directly; on this CPU it runs MTCNN's small convolutions
about twice as fast as ONNX Runtime (see docs/benchmarks.md)."""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import openvino as ov

from .base import usable_cpus

log = logging.getLogger(__name__)

# Kernels and memory prepared per input shape are kept in an LRU cache of this many entries: OpenVINO's
# default (5,000) let memory grow over photos of mixed sizes, this does not (docs/engine-choices.md).
SHAPE_CACHE_ENTRIES = 100


@dataclass(frozen=True)
class StaticShapes:
    """When a small input shape keeps coming back, compile the model for that shape alone.

    A dynamic-shape model pays for every change of input shape, and MTCNN at batch 1 changes shape
    on every PNet run; a static model of the same shape gives identical outputs faster, but costs a
    compile and buffers of its own. So only shapes of at most ``max_rows`` rows and
    ``max_elements`` input values seen ``after`` times are compiled, and at most ``capacity`` are
    kept (least recently used first out): batched runs amortise the change over their rows
    (docs/engine-choices.md).
    """

    after: int = 16
    max_rows: int = 1
    max_elements: int = 1 << 18
    capacity: int = 32

    def __post_init__(self):
        if min(self.after, self.max_rows, self.max_elements, self.capacity) < 1:
            raise ValueError("after, max_rows, max_elements and capacity must be at least 1")


def has_bf16(device: str = "CPU", core=None) -> bool:
    """Whether OpenVINO runs bfloat16 arithmetic natively on ``device`` (CPUs with AMX or AVX512-BF16).

    ``core`` is an ``openvino.Core`` to ask (a new one if None).
    """
    if core is None:

        core = ov.Core()
    return "BF16" in core.get_property(device, "OPTIMIZATION_CAPABILITIES")


class OpenVinoBackend:
    """Runs an ONNX model with OpenVINO's CPU plugin; outputs in the model's order.

    ``arithmetic`` is OpenVINO's inference precision: f32 (the default; OpenVINO would otherwise pick
    bf16 by itself on AMX CPUs), or bf16, about twice as fast there with an 8-bit mantissa.

    ``pinning`` ties OpenVINO's threads to cores. OpenVINO pins by default, always onto the same
    first cores, so two one-thread processes would share one core; None (the default) pins only when
    this backend's threads cover every usable CPU.

    ``row_slice`` runs inputs of more rows in slices of at most that many: OpenVINO picks its kernels
    by the row count, and a row's outputs then change in the last bits with the rows beside it.
    Slices below the switch (and a lone row run as two) keep every row's result independent of its
    batch, at about the same speed (docs/engine-choices.md).
    """

    def __init__(self, model_path: str | os.PathLike, threads: int | None = None, device: str = "CPU",
                 static_shapes: StaticShapes | None = None, arithmetic: str = "f32", pinning: bool | None = None,
                 row_slice: int | None = None):

        if row_slice is not None and row_slice < 1:
            raise ValueError(f"row_slice must be at least 1, got {row_slice}")
        self.row_slice = row_slice
        if arithmetic not in ("f32", "bf16"):
            raise ValueError(f"OpenVINO arithmetic {arithmetic!r}: use f32 or bf16")
        self._core = ov.Core()
        if arithmetic == "bf16" and not has_bf16(device, self._core):
            raise ValueError(f"this {device} has no native bfloat16 arithmetic (AMX or AVX512-BF16); use the "
                             "openvino backend (float32) instead of openvino-bf16")
        if pinning is None:
            pinning = not threads or threads >= usable_cpus()
        self._config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": arithmetic,
                        "CPU_RUNTIME_CACHE_CAPACITY": SHAPE_CACHE_ENTRIES, "ENABLE_CPU_PINNING": pinning}
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = threads
        self._model, self._device = self._core.read_model(str(model_path)), device  # kept for static copies
        self.compiled = self._core.compile_model(self._model, device, self._config)
        self.request = self.compiled.create_infer_request()
        self.static_shapes = static_shapes
        self._static: OrderedDict[tuple[int, ...], object] = OrderedDict()  # shape -> infer request
        self._seen: dict[tuple[int, ...], int] = {}
        self.name = f"openvino[{device}]" + ("-bf16" if arithmetic == "bf16" else "")

    @property
    def static_shapes_compiled(self) -> tuple[tuple[int, ...], ...]:
        """The input shapes that have a static model now, least recently used first."""
        return tuple(self._static)

    def _request_for(self, shape: tuple[int, ...]):
        """The static model's request for ``shape`` if it has one (compiling it when due), else the dynamic one."""
        policy = self.static_shapes
        if policy is None:
            return self.request
        request = self._static.get(shape)
        if request is not None:
            self._static.move_to_end(shape)
            return request
        if shape[0] > policy.max_rows or math.prod(shape) > policy.max_elements:
            return self.request
        if len(self._seen) >= 64 * policy.capacity:  # many one-off shapes: forget the counts
            self._seen.clear()
        self._seen[shape] = seen = self._seen.get(shape, 0) + 1
        if seen < policy.after:
            return self.request
        model = self._model.clone()
        model.reshape({model.inputs[0]: list(shape)})
        request = self._core.compile_model(model, self._device, self._config).create_infer_request()
        log.debug("compiled a static model for input shape %s", shape)
        self._static[shape] = request
        del self._seen[shape]
        if len(self._static) > policy.capacity:
            self._static.popitem(last=False)
        return request

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        batch = np.ascontiguousarray(batch, np.float32)
        if self.row_slice is None:
            return self._infer(batch)
        parts = [self._infer_rows(batch[s:s + self.row_slice]) for s in range(0, len(batch), self.row_slice)]
        return parts[0] if len(parts) == 1 else tuple(np.concatenate(outputs) for outputs in zip(*parts))

    def _infer_rows(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        """A slice's outputs; a lone row runs as two, since OpenVINO has a kernel of its own for one row."""
        if len(rows) != 1:
            return self._infer(rows)
        return tuple(o[:1] for o in self._infer(np.concatenate([rows, rows])))

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        result = self._request_for(batch.shape).infer({0: batch})
        return tuple(np.array(v) for v in result.values())
