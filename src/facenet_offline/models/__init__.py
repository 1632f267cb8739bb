"""Torch modules of the networks."""

from .inception_resnet_v1 import InceptionResnetV1

__all__ = ["InceptionResnetV1"]
