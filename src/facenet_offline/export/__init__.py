"""ONNX export, runtime-specific variants and quantization."""
