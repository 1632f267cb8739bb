"""The versions a result was made with: this package, Python and the libraries that compute anything.

Read from the installed distributions' metadata, so nothing heavy is imported to name them.
"""

from __future__ import annotations

import platform
from importlib import metadata

from . import __version__

LIBRARIES = {"numpy": "numpy", "torch": "torch", "onnx": "onnx", "onnxruntime": "onnxruntime",
             "openvino": "openvino", "opencv": "opencv-python-headless", "scipy": "scipy", "sklearn": "scikit-learn",
             "faiss": "faiss-cpu"}


def library_versions() -> dict[str, str]:
    out = {"facenet_offline": __version__, "python": platform.python_version()}
    for name, distribution in LIBRARIES.items():
        try:
            out[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
