"""The inference form of `~enhance.models.network.EnhanceNet`: same output, less memory traffic.

`InferenceNet` computes what ``fold_batchnorm(net)`` computes, to float32 rounding (about 1e-6
relative), but is laid out for speed on CPUs and GPUs:

* BatchNorm is folded into the convolutions and the feature maps are channels-last (NHWC), the
  layout the oneDNN and cuDNN direct convolutions run fastest on.
* Each convolution reads a buffer that already holds its one-pixel reflected frame. The ReLU or
  the residual sum that follows a convolution writes its result straight into the interior of the
  next buffer, and only the frame (four thin strips) is filled afterwards, so no layer spends a
  separate pass on padding, on the ReLU or on the sum.
* The first convolution (one input channel, where convolution kernels are slow) is a matrix product
  of the nine shifted copies of the image with the ``(9, width)`` kernel matrix.
* Nearest-neighbour x2 up-sampling followed by the reflect-padded 3x3 convolution is done on the
  low-resolution grid as four 2x2 convolutions, one per output phase (see `phase_kernels`), which
  need 16 instead of 36 multiply-adds per low-resolution pixel and channel pair and never build the
  x2 feature map. Each phase gets its ReLU and 1x1 output convolution in turn (so only one phase's
  features are held), and the phases are interleaved last.

Options such as reduced precision are applied by the caller (`~enhance.inference.tiling.run_tiled`) with
`torch.autocast`; the buffers then take the dtype of the convolutions' output.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..models.network import EnhanceNet, fold_batchnorm

__all__ = ["InferenceNet", "phase_kernels", "resolve_device", "PRECISIONS"]

#: Precisions of the convolutions: float32 (the reference) and the two autocast dtypes.
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# How the three kernel rows (or columns) of a 3x3 convolution on the nearest-neighbour x2 grid
# fall onto two neighbouring low-resolution rows, for an output row of phase 0 (even) or 1 (odd).
_PHASE_TAPS = ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """The four 2x2 kernels that replace a 3x3 convolution after nearest-neighbour x2 up-sampling.

    Parameters
    ----------
    weight : (out, in, 3, 3) `torch.Tensor`
        Kernel of the 3x3 convolution that runs on the x2 grid with one pixel of reflection padding.

    Returns
    -------
    (4 out, in, 2, 2) `torch.Tensor`
        Output channel ``p * out + o`` holds kernel ``o`` of phase ``p = 2 a + b``, the output pixels
        ``(2 y + a, 2 x + b)``.

    Notes
    -----
    Output row ``2 y`` of the x2 grid reads x2 rows ``2y - 1, 2y, 2y + 1``, which are low-resolution
    rows ``y - 1, y, y``; row ``2 y + 1`` reads ``y, y, y + 1``. So kernel rows ``(w_0, w_1 + w_2)``
    act on low-resolution rows ``(y - 1, y)`` for the even phase and ``(w_0 + w_1, w_2)`` on
    ``(y, y + 1)`` for the odd one, and the same holds for columns. Reflection about the edge of the
    x2 grid (row ``-1`` is row ``1``, both in low-resolution row 0) is replication on the
    low-resolution grid. With ``P`` the features padded by one replicated pixel, phase ``(a, b)`` of
    the output at ``(y, x)`` is the 2x2 convolution of ``P`` with kernel ``(a, b)``, read at
    ``(y + a, x + b)``.

    Examples
    --------
    >>> import torch
    >>> phase_kernels(torch.ones(8, 4, 3, 3)).shape
    torch.Size([32, 4, 2, 2])
    """
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (3, 3):
        msg = f"weight must have shape (out, in, 3, 3), got {tuple(weight.shape)}"
        raise ValueError(msg)
    taps = torch.tensor(_PHASE_TAPS, dtype=weight.dtype, device=weight.device)  # (phase, 2, 3)
    # kernels[a, b, o, i, r, c] = sum_{k, l} taps[a, r, k] * weight[o, i, k, l] * taps[b, c, l]
    rows = torch.einsum("ark,oikl->aoirl", taps, weight)
    kernels = torch.einsum("aoirl,bcl->aboirc", rows, taps)
    return kernels.reshape(4 * weight.shape[0], weight.shape[1], 2, 2)


def _fill_frame(buffer: torch.Tensor, *, reflect: bool) -> torch.Tensor:
    """Fill the one-pixel frame of ``buffer`` from its interior: reflected, or replicated."""
    inner = 2 if reflect else 1  # the row or column the frame copies
    buffer[:, :, 0, 1:-1] = buffer[:, :, inner, 1:-1]
    buffer[:, :, -1, 1:-1] = buffer[:, :, -1 - inner, 1:-1]
    buffer[:, :, :, 0] = buffer[:, :, :, inner]  # whole columns: this also fills the corners
    buffer[:, :, :, -1] = buffer[:, :, :, -1 - inner]
    return buffer


def _new_buffer(like: torch.Tensor, n: int, channels: int, ny: int, nx: int) -> torch.Tensor:
    """An empty channels-last ``(n, channels, ny + 2, nx + 2)`` buffer with the dtype and device of ``like``."""
    shape = (n, channels, ny + 2, nx + 2)
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=torch.channels_last)


class InferenceNet(nn.Module):
    """An eval-only, faster form of an `~enhance.models.network.EnhanceNet` with the same output.

    Parameters
    ----------
    net : `~enhance.models.network.EnhanceNet`
        The network, trained or not; it is not modified (its BatchNorms are folded into a copy).

    Notes
    -----
    ``forward`` maps ``(n, 1, ny, nx)`` to ``(n, 1, 2 ny, 2 nx)`` like ``net.eval()``, for images of at
    least 2x2 pixels (reflection padding needs two). The output agrees with ``fold_batchnorm(net)``
    to about 1e-6 relative in float32; the module docstring lists what is done differently.

    Examples
    --------
    >>> import torch
    >>> from enhance.models.network import EnhanceNet
    >>> net = EnhanceNet(depth=1, width=8).eval()
    >>> x = torch.rand(1, 1, 12, 10)
    >>> with torch.inference_mode():
    ...     bool((InferenceNet(net)(x) - net(x)).abs().max() < 1e-5)
    True
    """

    def __init__(self, net: EnhanceNet) -> None:
        super().__init__()
        if not isinstance(net, EnhanceNet):
            msg = f"net must be an EnhanceNet, got {type(net).__name__}"
            raise TypeError(msg)
        folded = fold_batchnorm(net)
        self.depth, self.width = net.depth, net.width
        with torch.no_grad():
            # First layer as a matrix product: (9 shifted copies) @ (9, width).
            self.register_buffer("in_matrix", folded.conv_in.weight.reshape(self.width, 9).t().contiguous())
            self.register_buffer("in_bias", folded.conv_in.bias.clone())
            self.blocks = folded.blocks  # conv1, conv2 of each (their BatchNorms are now Identity)
            self.conv_skip = folded.conv_skip
            self.conv_up = nn.Conv2d(self.width, 4 * self.width, kernel_size=2)
            self.conv_up.weight.copy_(phase_kernels(folded.conv_up.weight))
            self.conv_up.bias.copy_(folded.conv_up.bias.repeat(4))
            # The 1x1 output convolution as a (width, 1) matrix, applied to each phase's NHWC features.
            self.register_buffer("out_matrix", folded.conv_out.weight.reshape(1, self.width).t().contiguous())
            self.register_buffer("out_bias", folded.conv_out.bias.clone())
        self.to(memory_format=torch.channels_last)
        self.eval()

    def _first_layer(self, image: torch.Tensor) -> torch.Tensor:
        """ReLU(conv_in(image)) in a new reflect-framed buffer."""
        n, _, ny, nx = image.shape
        columns = F.unfold(F.pad(image, (1, 1, 1, 1), mode="reflect"), kernel_size=3)  # (n, 9, ny nx)
        head = None
        for i in range(n):
            features = torch.addmm(self.in_bias, columns[i].t(), self.in_matrix)  # (ny nx, width): NHWC
            if head is None:
                head = _new_buffer(features, n, self.width, ny, nx)
            torch.clamp_min(features.view(ny, nx, self.width).permute(2, 0, 1), 0, out=head[i, :, 1:-1, 1:-1])
        return _fill_frame(head, reflect=True)

    def _layer(self, conv: nn.Conv2d, source: torch.Tensor, *, residual=None, reflect=True) -> torch.Tensor:
        """conv(source), then ReLU or ``+ residual``, written into a new framed buffer."""
        features = F.conv2d(source, conv.weight, conv.bias)  # no padding: the frame of source is the padding
        n, channels, ny, nx = features.shape
        target = _new_buffer(features, n, channels, ny, nx)
        if residual is None:
            torch.clamp_min(features, 0, out=target[:, :, 1:-1, 1:-1])
        else:
            torch.add(features, residual[:, :, 1:-1, 1:-1], out=target[:, :, 1:-1, 1:-1])
        return _fill_frame(target, reflect=reflect)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, ny, nx = x.shape
        if channels != 1 or ny < 2 or nx < 2:
            msg = f"input must have shape (n, 1, ny, nx) with ny, nx >= 2, got {tuple(x.shape)}"
            raise ValueError(msg)
        head = self._first_layer(x)
        current = head
        for block in self.blocks:
            hidden = self._layer(block.conv1, current)
            current = self._layer(block.conv2, hidden, residual=current)
        # The long skip connection; the frame is replicated, as the phases need (see phase_kernels).
        trunk = self._layer(self.conv_skip, current, residual=head, reflect=False)

        out = trunk.new_empty((n, ny, 2, nx, 2))
        for a in (0, 1):
            for b in (0, 1):  # one phase at a time: only one phase's features are held
                p = slice((2 * a + b) * self.width, (2 * a + b + 1) * self.width)
                features = F.conv2d(trunk, self.conv_up.weight[p], self.conv_up.bias[p]).relu_()  # (n, w, ny+1, nx+1)
                features = features.permute(0, 2, 3, 1).reshape(-1, self.width)  # NHWC: a view, no copy
                values = torch.addmm(self.out_bias, features, self.out_matrix).view(n, ny + 1, nx + 1)
                out[:, :, a, :, b] = values[:, a : a + ny, b : b + nx]
        return out.view(n, 1, 2 * ny, 2 * nx)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}"


def resolve_device(device="auto") -> torch.device:
    """The PyTorch device to run on: 'auto' gives CUDA when available, else the CPU.

    Parameters
    ----------
    device : str or `torch.device`
        'auto', or anything `torch.device` takes ('cpu', 'cuda', 'cuda:1').

    Returns
    -------
    `torch.device`
        The device.

    Raises
    ------
    ValueError
        If ``device`` names no device.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        msg = f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        raise ValueError(msg) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        msg = f"device {device!r} was asked for, but CUDA is not available here; use device='cpu' or 'auto'"
        raise ValueError(msg)
    return resolved
