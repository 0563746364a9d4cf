import numpy as np
import pytest
import torch

from enhance.exceptions import ModelNotTrainedError
from enhance.models.network import EnhanceNet, ResidualBlock, fold_batchnorm, receptive_margin
from enhance.models.pretrained import full, paper, paper_light


def _n_trainable(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _n_bn_stats(net):
    return sum(b.numel() for name, b in net.named_buffers() if name.endswith(("running_mean", "running_var")))


def test_paper_parameter_counts():
    net = EnhanceNet(depth=5, width=64)
    assert _n_trainable(net) == 445_249
    assert _n_bn_stats(net) == 1_408


def test_layer_parameter_counts_of_the_paper():
    net = EnhanceNet(depth=5, width=64)
    assert sum(p.numel() for p in net.conv_in.parameters()) == 640
    assert sum(p.numel() for p in net.conv_up.parameters()) == 36_928
    assert sum(p.numel() for p in net.conv_out.parameters()) == 65


def test_light_model_is_about_40k_parameters():
    assert _n_trainable(EnhanceNet(depth=1, width=32)) == 37_537
    assert paper_light().depth == 1
    assert paper_light().width == 32
    assert paper().depth == 5
    assert paper().width == 64


def test_output_shape_is_doubled_for_odd_sizes():
    net = EnhanceNet(depth=1, width=8).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 1, 13, 7))
    assert out.shape == (2, 1, 26, 14)


def test_padding_is_reflect_everywhere():
    net = EnhanceNet(depth=2, width=8)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 2 * 2 + 3
    assert all(m.padding_mode == "reflect" and m.padding == (1, 1) for m in convs)


def test_residual_block_has_no_relu_after_the_sum():
    block = ResidualBlock(4).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
        x = -torch.rand(1, 4, 5, 5)  # negative input passes through unchanged: no final ReLU
        assert torch.equal(block(x), x)


def test_final_layer_is_linear_so_output_can_be_negative():
    torch.manual_seed(0)
    net = EnhanceNet(depth=1, width=8).eval()
    with torch.no_grad():
        net.conv_out.bias.fill_(-10.0)
        assert (net(torch.rand(1, 1, 6, 6)) < 0).all()


def test_folded_network_matches_within_1e_5(tiny_net):
    folded = fold_batchnorm(tiny_net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in tiny_net.modules())  # original untouched
    x = torch.rand(1, 1, 17, 23)
    with torch.no_grad():
        ref = tiny_net.eval()(x)
        out = folded(x)
    assert torch.max(torch.abs(ref - out)).item() < 1e-5 * max(1.0, ref.abs().max().item())


def test_receptive_margin_is_exact():
    torch.manual_seed(0)
    depth = 2
    net = EnhanceNet(depth=depth, width=4).eval()
    margin = receptive_margin(depth)
    x = torch.rand(1, 1, 64, 64)
    y = x.clone()
    y[0, 0, 32, 32] += 1.0  # perturb one input pixel
    with torch.no_grad():
        changed = (net(x) - net(y)).abs()[0, 0] > 0
    rows = np.nonzero(changed.any(dim=1).numpy())[0]
    # Output pixels 2*32 +- (2*margin) are the furthest reached: input radius margin, x2.
    assert rows.min() >= 2 * (32 - margin)
    assert rows.max() <= 2 * (32 + margin) + 1
    assert rows.min() <= 2 * (32 - margin) + 2  # and the margin is not larger than needed


def test_constructor_rejects_bad_sizes():
    with pytest.raises(ValueError, match="depth must be a positive integer, got 0"):
        EnhanceNet(depth=0)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        EnhanceNet(width=2.5)


def test_shipped_weights_not_trained_yet_raise_clearly(no_shipped_models):
    with pytest.raises(ModelNotTrainedError, match="not trained yet"):
        full("intensity", weights="default")
