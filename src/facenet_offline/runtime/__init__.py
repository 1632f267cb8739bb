"""Inference backends behind one small interface (``Backend.run``)."""

from .base import Backend

__all__ = ["Backend"]
