"""Models built once into the cache (``FACENET_OFFLINE_HOME``): FaceNet (float32, FP16, INT8) and MTCNN's nets,
each exported to ONNX, checked and keyed by its weights' sha256 and build options."""

from .facenet import BuildOptions, build_facenet, facenet_build_dir, facenet_cache_dir, parity_batch
from .mtcnn import MTCNN_INPUT_SIZES, DetectorBuildOptions, build_mtcnn, mtcnn_parity_patches, run_shipped_mtcnn
from .store import RECORD, Built

__all__ = ["MTCNN_INPUT_SIZES", "RECORD", "BuildOptions", "Built", "DetectorBuildOptions", "build_facenet",
           "build_mtcnn", "facenet_build_dir", "facenet_cache_dir", "mtcnn_parity_patches", "parity_batch", "run_shipped_mtcnn"]
