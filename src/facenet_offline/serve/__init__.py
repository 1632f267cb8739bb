"""The HTTP service (``facenet-offline serve``): the library over FastAPI, batched across requests."""
