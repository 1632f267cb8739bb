"""Conversion of weights to checked ONNX models: export, simplification and parity, FP16 and calibrated INT8."""
