"""Import and export facenet-pytorch state dicts (``20180402-114759-vggface2.pt`` and friends)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import WeightsLayoutError
from ..models.inception_resnet_v1 import InceptionResnetV1, folded_state_dict, unfolded_state_dict
from .mismatch import mismatch_message

# facenet-pytorch's releases carry the training classifier; an embedding model has no use for it.
CLASSIFIER_KEYS = ("logits.weight", "logits.bias")


def check_keys(expected: set[str], found: set[str], source: str, limit: int = 20) -> None:
    """Raise one error that lists every missing and every unexpected tensor."""
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if not (missing or unexpected):
        return
    raise WeightsLayoutError(mismatch_message(f"{source}: the tensors do not match the network's facenet-pytorch "
                                              "layout.", missing, unexpected, limit=limit))


def fold_facenet_pytorch_state(state: dict[str, torch.Tensor], source: str = "state dict") -> dict[str, torch.Tensor]:
    """Validate a facenet-pytorch state dict strictly and return its folded form."""
    state = {k: v for k, v in state.items() if k not in CLASSIFIER_KEYS}
    expected = set(InceptionResnetV1(folded=False).state_dict())
    check_keys(expected, set(state), source)
    return folded_state_dict(state)


def load_plain_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.pt`` file, loaded with ``weights_only`` (no code in the file runs)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise WeightsLayoutError(f"{path}: not a PyTorch state dict ({exc}).") from exc
    if not isinstance(state, dict):
        raise WeightsLayoutError(f"{path}: holds a {type(state).__name__}, not a state dict.")
    return state


def load_torch_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Folded FaceNet state dict from a facenet-pytorch ``.pt`` file."""
    return fold_facenet_pytorch_state(load_plain_state(path), str(path))


def save_facenet_pytorch_state(folded: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write folded weights in facenet-pytorch's key layout, loadable by its ``InceptionResnetV1``."""
    torch.save(unfolded_state_dict(folded), path)
