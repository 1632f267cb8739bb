"""Peer parity: OpenCV DNN running the shipped frozen graph agrees with our ONNX Runtime model."""

import numpy as np

from facenet_offline.bench.peers import opencv_facenet_embed, opencv_facenet_net
from facenet_offline.data.tensors import InputNorm, resize_face, standardise
from facenet_offline.distance import row_cosine
from facenet_offline.runtime.onnxruntime import OnnxRuntimeBackend


def test_opencv_dnn_on_shipped_graph_matches_ours_on_real_lfw_faces(built_default, lfw_faces):
    assert len(lfw_faces) >= 20
    batch = standardise(np.stack([resize_face(f, 160) for f in lfw_faces]), InputNorm())
    theirs = opencv_facenet_embed(opencv_facenet_net(), batch)
    (ours,) = OnnxRuntimeBackend(built_default.path).run(batch)
    cosine = row_cosine(ours, theirs)
    assert cosine.min() >= 0.9999, cosine.min()
