"""The Enhance network: a deep residual CNN that deconvolves and super-resolves by two.

The layer sequence is exactly that of Díaz Baso & Asensio Ramos (2018), Fig. 4. The Keras original
used BatchNormalization with epsilon 1e-3 and momentum 0.99; the same values are kept here.
"""

import copy

import torch
from torch import nn

from ..checks import check_integer
from .architecture import receptive_margin

__all__ = ["ResidualBlock", "EnhanceNet", "fold_batchnorm", "receptive_margin"]

_BN_EPS = 1e-3  # Keras default, as in the paper's Eq. (5)
_BN_MOMENTUM = 0.01  # Keras momentum 0.99 in PyTorch's convention


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 convolution with one pixel of reflection padding on each side."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, padding_mode="reflect")


def _batchnorm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the identity (no ReLU after the sum, as in the paper).

    Parameters
    ----------
    width : int
        Feature channels in and out.

    Examples
    --------
    >>> import torch
    >>> block = ResidualBlock(8).eval()
    >>> block(torch.zeros(1, 8, 5, 5)).shape
    torch.Size([1, 8, 5, 5])
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(width, width)
        self.bn1 = _batchnorm(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = _batchnorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return out + x


class EnhanceNet(nn.Module):
    """Enhance: deconvolution and x2 super-resolution of a single-channel image.

    Parameters
    ----------
    depth : int
        Number of residual blocks; 5 in the paper, 1 for the light model.
    width : int
        Number of feature channels of every convolution; 64 in the paper, 32 for the light model.

    Notes
    -----
    ``forward`` takes a ``(batch, 1, ny, nx)`` tensor (I/Ic or kG) and returns ``(batch, 1, 2 ny, 2 nx)``.
    ``EnhanceNet(depth=5, width=64)`` has 445,249 trainable parameters and 1,408 BatchNorm running
    statistics, as in the paper's model summary.

    References
    ----------
    Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5.

    Examples
    --------
    >>> net = EnhanceNet(depth=5, width=64)
    >>> sum(p.numel() for p in net.parameters())
    445249
    """

    #: The model family (`~enhance.models.runner.family_of`): its runners are built by its entry in
    #: `~enhance.runtime.runners.RUNNERS`.
    family = "paper"

    def __init__(self, depth: int = 5, width: int = 64) -> None:
        super().__init__()
        check_integer(depth, name="depth")
        check_integer(width, name="width")
        self.depth = depth
        self.width = width
        self.conv_in = _conv3x3(1, width)
        self.relu = nn.ReLU(inplace=True)
        self.blocks = self._make_blocks(depth, width)
        self.conv_skip = _conv3x3(width, width)
        self.bn_skip = _batchnorm(width)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv_up = _conv3x3(width, width)
        self.conv_out = nn.Conv2d(width, 1, kernel_size=1)

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # Glorot-uniform kernels and zero biases: the Keras defaults of the original model.
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def margin(self) -> int:
        """Input pixels on each side that influence an output pixel (`receptive_margin` of the depth).

        Examples
        --------
        >>> EnhanceNet(depth=5, width=8).margin
        13
        """
        return receptive_margin(self.depth)

    @property
    def architecture(self) -> dict:
        """The constructor arguments that set its size, as the registry states them.

        Examples
        --------
        >>> EnhanceNet(depth=1, width=8).architecture
        {'depth': 1, 'width': 8}
        """
        return {"depth": self.depth, "width": self.width}

    def file_metadata(self) -> dict:
        """What a weights file records of this network besides its tensors (`~enhance.models.weights.save_weights`).

        Returns
        -------
        dict of str
            ``depth`` and ``width``, as strings (safetensors metadata).

        Examples
        --------
        >>> EnhanceNet(depth=1, width=8).file_metadata()
        {'depth': '1', 'width': '8'}
        """
        return {key: str(value) for key, value in self.architecture.items()}

    #: Settings that change how it runs but are not weights (none for this network).
    run_settings = ()

    @staticmethod
    def _make_blocks(depth: int, width: int) -> nn.Sequential:
        return nn.Sequential(*[ResidualBlock(width) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.relu(self.conv_in(x))
        out = self.blocks(head)
        out = self.bn_skip(self.conv_skip(out)) + head  # the long skip connection
        out = self.upsample(out)
        out = self.relu(self.conv_up(out))
        return self.conv_out(out)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}"


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm into the preceding convolution, in place."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    conv.weight.copy_(conv.weight * scale[:, None, None, None])
    conv.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)


@torch.no_grad()
def fold_batchnorm(net: EnhanceNet) -> EnhanceNet:
    """Return an inference copy of ``net`` with every BatchNorm folded into its convolution.

    The copy is in eval mode and gives the same output as ``net.eval()`` to rounding (1e-5),
    with 11 fewer layers to run. ``net`` is not modified.

    Parameters
    ----------
    net : EnhanceNet
        The network, trained or not.

    Returns
    -------
    EnhanceNet
        The folded copy, in eval mode.

    Examples
    --------
    >>> import torch
    >>> net = EnhanceNet(depth=1, width=8).eval()
    >>> x = torch.rand(1, 1, 12, 12)
    >>> bool(torch.allclose(fold_batchnorm(net)(x), net(x), atol=1e-5))
    True
    """
    folded = copy.deepcopy(net).eval()
    pairs = [(block, "conv1", "bn1") for block in folded.blocks]
    pairs += [(block, "conv2", "bn2") for block in folded.blocks]
    pairs.append((folded, "conv_skip", "bn_skip"))
    for owner, conv_name, bn_name in pairs:
        if not isinstance(getattr(owner, bn_name), nn.BatchNorm2d):
            continue  # already folded
        _fold(getattr(owner, conv_name), getattr(owner, bn_name))
        setattr(owner, bn_name, nn.Identity())
    return folded
