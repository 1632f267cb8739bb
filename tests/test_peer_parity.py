"""Peer parity: OpenCV DNN running the shipped frozen graph agrees with our ONNX Runtime model."""

import cv2
import numpy as np

from facenet_offline.data.tensors import resize_face, standardise
from facenet_offline.runtime.onnxruntime import OnnxRuntimeBackend
from facenet_offline.weights import get_spec, resolve_weights


def test_opencv_dnn_on_shipped_graph_matches_ours_on_real_lfw_faces(built_default, lfw_faces):
    assert len(lfw_faces) >= 20
    batch = standardise(np.stack([resize_face(f, 160) for f in lfw_faces]), 127.5, 128.0)
    peer = cv2.dnn.readNetFromTensorflow(str(resolve_weights(get_spec("casia-webface")).path))
    theirs = []
    for x in batch:  # the shipped graph's flatten is fixed to batch 1
        peer.setInput(x[None])
        theirs.append(peer.forward()[0])
    theirs = np.stack(theirs)
    (ours,) = OnnxRuntimeBackend(built_default.path).run(batch)
    cosine = np.sum(ours * theirs, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    assert cosine.min() >= 0.9999, cosine.min()
