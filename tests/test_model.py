"""The torch model: facenet-pytorch's layout, size, and exact batch-norm folding."""

import torch

from facenet_offline.models.inception_resnet_v1 import InceptionResnetV1, folded_state_dict, unfolded_state_dict


def test_module_names_follow_facenet_pytorch():
    keys = set(InceptionResnetV1().state_dict())
    for key in ("conv2d_1a.conv.weight", "conv2d_1a.bn.running_var", "repeat_1.4.branch2.2.bn.bias",
                "mixed_6a.branch1.2.conv.weight", "repeat_2.9.conv2d.bias", "mixed_7a.branch2.1.conv.weight",
                "repeat_3.0.branch1.2.conv.weight", "block8.conv2d.weight", "last_linear.weight",
                "last_bn.running_mean", "last_bn.num_batches_tracked"):
        assert key in keys, key
    assert not any(k.startswith("logits") for k in keys)


def test_parameter_count_matches_the_published_model():
    n = sum(p.numel() for p in InceptionResnetV1(folded=True).parameters())
    assert abs(n - 23.47e6) < 0.01e6


def test_folding_preserves_the_function():
    torch.manual_seed(0)
    net = InceptionResnetV1().eval()
    for m in net.modules():  # non-trivial running statistics, so folding has real work to do
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    folded = InceptionResnetV1(folded=True).eval()
    folded.load_state_dict(folded_state_dict(net.state_dict()), strict=True)
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(net(x), folded(x), atol=1e-5)


def test_unfolding_then_folding_round_trips(facenet_torch):
    folded = facenet_torch.state_dict()
    back = folded_state_dict(unfolded_state_dict(folded))
    assert set(back) == set(folded)
    for k, v in folded.items():
        assert torch.allclose(back[k].float(), v.float(), rtol=1e-6, atol=1e-6), k


def test_output_is_unit_length(facenet_torch):
    with torch.no_grad():
        e = facenet_torch(torch.randn(3, 3, 160, 160))
    assert e.shape == (3, 512)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
