"""facenet-offline: offline face recognition with FaceNet."""

__version__ = "0.1.0"
