"""Face detection (MTCNN on any runtime), box math and alignment: pure algorithm, given the nets."""

from __future__ import annotations

from .align import AlignConfig, AlignMethod, align_face
from .mtcnn import Detection, MTCNNConfig, MTCNNDetector, Selection
from .runtimes import DETECTOR_BACKENDS, OPENVINO_ROW_SLICE, detector_on_files, detector_on_torch

__all__ = ["AlignConfig", "AlignMethod", "DETECTOR_BACKENDS", "Detection", "MTCNNConfig", "MTCNNDetector",
           "OPENVINO_ROW_SLICE", "Selection", "align_face", "detector_on_files", "detector_on_torch"]
