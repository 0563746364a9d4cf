"""Wiener-Enhance: a linear minimum-mean-square-error (Wiener) stage, then a residual CNN, told the noise level.

The linear stage is a bank of polyphase filters: for each of ``K`` noise levels, four ``taps x taps``
kernels give the four x2 output pixels of every input pixel (the linear estimator of the target that
has the least mean square error on the training scenes at that noise; `~enhance.training.linear_stage`
computes them in closed form). Its output for the given noise level interpolates the bank linearly in
log noise. The CNN sees the input, the linear estimate and the log noise level, and adds a correction
on the x2 grid; its last convolution starts at zero, so an untrained network is the linear stage.

The input is mirrored about its outer pixel edges (half-sample symmetric, as scipy's ``'reflect'``)
once, by the whole receptive margin; every convolution after that is unpadded, so an output pixel
depends on the input within `WienerEnhanceNet.margin` pixels and tiling with that margin is exact.
"""

import json
import math

import torch
from torch import nn

from ..checks import check_integer
from .architecture import OFFSET_MIN_SIDE, OFFSET_STEP, WIENER_ENHANCE
from .runner import dihedral_average

__all__ = ["NOISE_NODES", "symmetric_pad", "symmetrize_filters", "WienerEnhanceNet", "NoiseBound"]

#: Noise levels of the linear stage's filter bank, in units of HMI's noise: factors of two from 1/4 to 32.
NOISE_NODES = tuple(2.0**k for k in range(-2, 6))


def symmetric_pad(x: torch.Tensor, margin: int) -> torch.Tensor:
    """Mirror the last two axes about the outer pixel edges by ``margin`` pixels (numpy's ``'symmetric'``).

    Parameters
    ----------
    x : `torch.Tensor`
        ``(..., ny, nx)``, with ``ny`` and ``nx`` at least ``margin``.
    margin : int
        Pixels added on each side.

    Returns
    -------
    `torch.Tensor`
        ``(..., ny + 2 margin, nx + 2 margin)``.

    Examples
    --------
    >>> symmetric_pad(torch.arange(3.0).reshape(1, 3), 2)
    tensor([[1., 0., 0., 1., 2., 2., 1.],
            [1., 0., 0., 1., 2., 2., 1.],
            [1., 0., 0., 1., 2., 2., 1.],
            [1., 0., 0., 1., 2., 2., 1.],
            [1., 0., 0., 1., 2., 2., 1.]])
    """
    # torch has no half-sample mirror mode: flipped slices give it, again and again for images smaller than it.
    for axis in (-1, -2):
        extra = margin
        while extra > 0:
            size = x.shape[axis]
            reach = min(extra, size)
            head, tail = x.narrow(axis, 0, reach).flip(axis), x.narrow(axis, size - reach, reach).flip(axis)
            x = torch.cat([head, x, tail], dim=axis)
            extra -= reach
    return x


def symmetrize_filters(filters: torch.Tensor) -> torch.Tensor:
    """Average a polyphase filter bank over the 8 rotations and flips: its linear stage is then equivariant.

    Parameters
    ----------
    filters : `torch.Tensor`
        ``(4 K, 1, taps, taps)``: for each of ``K`` levels the kernels of output phases (0, 0), (0, 1),
        (1, 0), (1, 1).

    Returns
    -------
    `torch.Tensor`
        The same shape. Transposing the image swaps the phases' axes and transposes each kernel; flipping
        it left-right swaps phases (a, 0) and (a, 1) and flips each kernel left-right.

    Examples
    --------
    >>> w = symmetrize_filters(torch.rand(4, 1, 3, 3)).reshape(2, 2, 3, 3)
    >>> bool(torch.allclose(w[0, 1], w[0, 0].flip(1))), bool(torch.allclose(w[1, 0], w[0, 1].T))
    (True, True)
    """
    taps = filters.shape[-1]
    bank = filters.reshape(-1, 2, 2, taps, taps)  # level, phase row a, phase column b, kernel row, kernel column
    total = 0
    for transpose in (False, True):
        base = bank.permute(0, 2, 1, 4, 3) if transpose else bank
        for flip_y in (False, True):
            for flip_x in (False, True):
                dims = (1, 3) * flip_y + (2, 4) * flip_x
                total = total + (base.flip(dims) if dims else base)
    return (total / 8).reshape(filters.shape)


class WienerEnhanceNet(nn.Module):
    """Linear Wiener stage plus a residual CNN, for x2 deconvolution of a single-channel image.

    Parameters
    ----------
    depth : int
        Residual blocks of the CNN (two 3x3 convolutions each).
    width : int
        Feature channels of the CNN.
    taps : int
        Odd size of the linear stage's kernels, input pixels.
    noise_nodes : tuple of float
        Noise levels of the filter bank, in units of ``noise_unit``; increasing, a constant ratio apart.
    noise_unit : float
        HMI's noise in the network's units (1e-3 I/Ic, 0.01 kG).
    symmetric : bool
        Average the output over the 8 rotations and flips of the input (8 passes): the network is then
        equivariant under them by construction.
    exact_constants : bool
        Subtract from the CNN's correction its response to a constant image at each pixel's own value
        (`constant_response`), so that a constant image comes back exactly constant.
    odd : bool
        Use the odd part of the CNN's correction, ``(c(x) - c(-x)) / 2``, so that ``f(-x) = -f(x)``
        (magnetograms: the sign of the field is a convention). The linear stage is odd already.

    Notes
    -----
    ``forward(x, noise)`` takes ``x`` of shape ``(batch, 1, ny, nx)`` (I/Ic or kG) and ``noise`` of shape
    ``(batch,)``, the standard deviation of the noise per input pixel in the same units, and returns
    ``(batch, 1, 2 ny, 2 nx)``. Noise outside the nodes is clamped to the first or last.

    Examples
    --------
    >>> net = WienerEnhanceNet(depth=1, width=8, taps=5)
    >>> net(torch.ones(2, 1, 6, 7), torch.tensor([1e-3, 2e-3])).shape
    torch.Size([2, 1, 12, 14])
    >>> net.margin
    6
    """

    #: The model family (`~enhance.models.runner.family_of`): its runners are built by its entry in
    #: `~enhance.runtime.runners.RUNNERS`.
    family = WIENER_ENHANCE

    def __init__(self, depth: int = 3, width: int = 32, taps: int = 21, noise_nodes=NOISE_NODES,
                 noise_unit: float = 1e-3, *, symmetric: bool = False, exact_constants: bool = False,
                 odd: bool = False) -> None:  # fmt: skip
        super().__init__()
        check_integer(depth, name="depth")
        check_integer(width, name="width")
        check_integer(taps, name="taps")
        if taps % 2 == 0:
            msg = f"taps must be odd, got {taps}"
            raise ValueError(msg)
        nodes = [float(v) for v in noise_nodes]
        ratios = [b / a for a, b in zip(nodes, nodes[1:], strict=False)]
        uneven = any(abs(r - ratios[0]) > 1e-9 * ratios[0] for r in ratios) if ratios else True
        if len(nodes) < 2 or min(nodes) <= 0 or uneven or ratios[0] <= 1:
            msg = f"noise_nodes must be two or more increasing positive levels a constant ratio apart: {noise_nodes}"
            raise ValueError(msg)
        self.depth, self.width, self.taps = depth, width, taps
        self.noise_unit = float(noise_unit)
        self.noise_nodes = tuple(nodes)
        self.symmetric = bool(symmetric)
        self.exact_constants, self.odd = bool(exact_constants), bool(odd)
        self.register_buffer("log_nodes", torch.log(torch.tensor(nodes, dtype=torch.float32)))
        self.log_step = math.log(ratios[0])
        self.register_buffer("filters", torch.zeros(4 * len(nodes), 1, taps, taps))
        self.conv_in = nn.Conv2d(6, width, 3)
        self.blocks = nn.ModuleList(nn.ModuleList([nn.Conv2d(width, width, 3), nn.Conv2d(width, width, 3)])
                                    for _ in range(depth))  # fmt: skip
        self.conv_out = nn.Conv2d(width, 4, 3)
        self.relu = nn.ReLU()
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            nn.init.zeros_(block[1].weight)  # each block starts as the identity
        nn.init.zeros_(self.conv_out.weight)  # the whole network starts as the linear stage

    @property
    def cnn_margin(self) -> int:
        """Input pixels the CNN reads on each side: one per 3x3 convolution.

        Examples
        --------
        >>> WienerEnhanceNet(depth=3).cnn_margin
        8
        """
        return 2 * self.depth + 2

    @property
    def margin(self) -> int:
        """Input pixels on each side that influence an output pixel (the tiling margin).

        Examples
        --------
        >>> WienerEnhanceNet(depth=3, taps=21).margin
        18
        """
        return self.taps // 2 + self.cnn_margin

    def level(self, noise: torch.Tensor) -> torch.Tensor:
        """``log(noise / noise_unit)``, clamped to the filter bank's nodes (the range the CNN was trained on).

        Parameters
        ----------
        noise : `torch.Tensor`
            ``(batch,)`` standard deviations of the noise, network units.

        Returns
        -------
        `torch.Tensor`
            ``(batch,)`` log levels.

        Examples
        --------
        >>> WienerEnhanceNet(noise_unit=1e-3).level(torch.tensor([1e-3, 1.0])).tolist()  # 1000 x is clamped at 32 x
        [0.0, 3.465735912322998]
        """
        return torch.log(noise / self.noise_unit).clamp(self.log_nodes[0], self.log_nodes[-1])

    def node_weights(self, noise: torch.Tensor) -> torch.Tensor:
        """The weights of the filter bank's levels for noise levels ``noise``: linear in log noise.

        Parameters
        ----------
        noise : `torch.Tensor`
            ``(batch,)`` standard deviations of the noise, network units.

        Returns
        -------
        `torch.Tensor`
            ``(batch, K)``, each row summing to one.

        Examples
        --------
        >>> WienerEnhanceNet(noise_unit=1e-3).node_weights(torch.tensor([2e-3]))[0, :4].tolist()
        [0.0, 0.0, 0.0, 1.0]
        """
        return self.relu(1 - torch.abs(self.level(noise)[:, None] - self.log_nodes[None, :]) / self.log_step)

    def linear(self, padded: torch.Tensor, noise: torch.Tensor, filters: torch.Tensor | None = None) -> torch.Tensor:
        """The linear stage on an input padded by ``taps // 2``, one channel per output phase.

        One noise level for the whole batch (inference) blends the bank into one filter per phase first;
        levels that differ (training) run the whole bank.

        Parameters
        ----------
        padded : `torch.Tensor`
            ``(batch, 1, ny + taps - 1, nx + taps - 1)``.
        noise : `torch.Tensor`
            ``(batch,)`` noise levels, network units.
        filters : `torch.Tensor`, optional
            A bank to use instead of the network's (e.g. `symmetrize_filters` of it).

        Returns
        -------
        `torch.Tensor`
            ``(batch, 4, ny, nx)``: phase ``2 a + b`` is output pixel ``(2 y + a, 2 x + b)``.

        Examples
        --------
        >>> WienerEnhanceNet(taps=5).linear(torch.ones(1, 1, 8, 9), torch.tensor([1e-3])).shape
        torch.Size([1, 4, 4, 5])
        """
        filters = self.filters if filters is None else filters
        weights = self.node_weights(noise)
        if noise.numel() == 1 or bool((noise == noise[0]).all()):
            blended = (weights[0][:, None] * filters.reshape(len(weights[0]), -1)).sum(dim=0)
            return nn.functional.conv2d(padded, blended.reshape(4, 1, self.taps, self.taps))
        bank = nn.functional.conv2d(padded, filters)
        batch, _, ny, nx = bank.shape
        bank = bank.reshape(batch, -1, 4, ny, nx)
        return (bank * weights[:, :, None, None, None]).sum(dim=1)

    def centred_linear(
        self, padded: torch.Tensor, noise: torch.Tensor, filters: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The linear stage as `forward` runs it: with ``exact_constants``, on each image less its median, added
        back as it is (the filters sum to one, `~enhance.training.linear_stage.mmse_filters`), so that a constant
        image's estimate is that constant exactly and the rounding scales with the image's contrast, not its
        level; `linear` itself otherwise.

        The median is the mean of the lower and the upper middle of the finite values (of every fourth row and
        column of a large image; 0 if none): that of ``-x`` is minus that of ``x``, bit for bit, so the stage
        stays odd, and a NaN pixel reaches no pixel beyond its own reach.

        Parameters
        ----------
        padded, noise, filters
            As in `linear`.

        Returns
        -------
        `torch.Tensor`
            ``(batch, 4, ny, nx)``, as `linear`.

        Examples
        --------
        >>> net = WienerEnhanceNet(taps=5, exact_constants=True)
        >>> _ = net.filters.fill_(1 / 25)  # each phase's filter sums to one
        >>> bool((net.centred_linear(torch.full((1, 1, 9, 9), 1.7), torch.tensor([1e-3])) == 1.7).all())
        True
        """
        if not self.exact_constants:
            return self.linear(padded, noise, filters)
        step = OFFSET_STEP if min(padded.shape[2:]) >= OFFSET_MIN_SIDE else 1
        sample = padded[:, :, ::step, ::step]
        flat = sample.flatten(1)
        flat = torch.where(torch.isfinite(flat), flat, torch.full_like(flat, float("nan")))  # left out
        middle = (flat.nanmedian(dim=1).values - (-flat).nanmedian(dim=1).values) / 2
        offset = torch.nan_to_num(middle, nan=0.0).reshape(-1, 1, 1, 1)
        return self.linear(padded - offset, noise, filters) + offset

    def core(self, padded: torch.Tensor, noise: torch.Tensor, estimate: torch.Tensor | None = None) -> torch.Tensor:
        """The network on an input already padded by `margin` (what training calls on patches).

        Parameters
        ----------
        padded : `torch.Tensor`
            ``(batch, 1, ny, nx)``, with ``margin`` pixels of context on each side.
        noise : `torch.Tensor`
            ``(batch,)`` noise levels, network units.
        estimate : `torch.Tensor`, optional
            The linear stage's output for ``padded``, when it is already known.

        Returns
        -------
        `torch.Tensor`
            ``(batch, 1, 2 (ny - 2 margin), 2 (nx - 2 margin))``.

        Examples
        --------
        >>> net = WienerEnhanceNet(depth=1, width=4, taps=5)
        >>> net.core(torch.ones(1, 1, 20, 20), torch.tensor([1e-3])).shape
        torch.Size([1, 1, 16, 16])
        """
        cut = self.cnn_margin
        estimate = self.linear(padded, noise) if estimate is None else estimate
        inner = padded[:, :, self.taps // 2 : padded.shape[2] - self.taps // 2,
                       self.taps // 2 : padded.shape[3] - self.taps // 2]  # fmt: skip
        level = self.level(noise)[:, None, None, None].expand_as(inner)
        detail = estimate - inner
        if self.odd:  # x and -x in one batch: the linear stage is odd, so -x has detail -detail
            both = self.correction(torch.cat([inner, -inner]), torch.cat([detail, -detail]), torch.cat([level, level]))
            correction = (both[: len(inner)] - both[len(inner) :]) / 2
        else:
            correction = self.correction(inner, detail, level)
        estimate = estimate[:, :, cut : estimate.shape[2] - cut, cut : estimate.shape[3] - cut]
        return nn.functional.pixel_shuffle(estimate + correction, 2)

    def correction(self, inner: torch.Tensor, detail: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The CNN's correction of the linear estimate, one channel per output phase.

        Parameters
        ----------
        inner : `torch.Tensor`
            ``(batch, 1, ny, nx)``: the input, network units.
        detail : `torch.Tensor`
            ``(batch, 4, ny, nx)``: the linear estimate's phases minus the input.
        level : `torch.Tensor`
            ``(batch, 1, ny, nx)``: the log noise level (`level`), the same everywhere in a sample.

        Returns
        -------
        `torch.Tensor`
            ``(batch, 4, ny - 2 cnn_margin, nx - 2 cnn_margin)``; with ``exact_constants``, less the
            `constant_response` at each pixel's own value.

        Examples
        --------
        >>> net = WienerEnhanceNet(depth=1, width=4, taps=3, exact_constants=True)
        >>> _ = nn.init.normal_(net.conv_out.weight)
        >>> flat = net.correction(torch.full((1, 1, 9, 9), 0.7), torch.zeros(1, 4, 9, 9), torch.zeros(1, 1, 9, 9))
        >>> float(flat.detach().abs().max()) < 1e-5  # float32 rounding of sums of order one
        True
        """
        out = self.relu(self.conv_in(torch.cat([inner, detail, level], dim=1)))
        for conv1, conv2 in self.blocks:
            out = conv2(self.relu(conv1(out))) + out[:, :, 2:-2, 2:-2]
        out = self.conv_out(out)
        if not self.exact_constants:
            return out
        cut = self.cnn_margin
        centre = (slice(None), slice(None), slice(cut, inner.shape[2] - cut), slice(cut, inner.shape[3] - cut))
        return out - self.constant_response(inner[centre], level[centre])

    def constant_response(self, value: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The CNN's correction of a constant image of each pixel's value: its 3x3 kernels summed to 1x1.

        A constant input has zero detail (the linear stage keeps constants) and the same features at every
        pixel, so each 3x3 convolution acts as the 1x1 convolution of its summed kernel.

        Parameters
        ----------
        value : `torch.Tensor`
            ``(batch, 1, ny, nx)``: the constant, per pixel, network units.
        level : `torch.Tensor`
            ``(batch, 1, ny, nx)``: the log noise level.

        Returns
        -------
        `torch.Tensor`
            ``(batch, 4, ny, nx)``.

        Examples
        --------
        >>> net = WienerEnhanceNet(depth=1, width=4, taps=3)
        >>> _ = nn.init.normal_(net.conv_out.weight)
        >>> image, level = torch.full((1, 1, 9, 9), 1.3), torch.zeros(1, 1, 9, 9)
        >>> full = net.correction(image, torch.zeros(1, 4, 9, 9), level)[0, :, 0, 0]
        >>> bool(torch.allclose(full, net.constant_response(image, level)[0, :, 0, 0], atol=1e-6))
        True
        """

        def summed(conv, weight=None):
            weight = conv.weight if weight is None else weight
            return weight.sum(dim=(2, 3), keepdim=True), conv.bias

        # Input channels: the value, four zero details, the level.
        w_in = self.conv_in.weight[:, [0, 5]]
        out = self.relu(nn.functional.conv2d(torch.cat([value, level], dim=1), *summed(self.conv_in, w_in)))
        for conv1, conv2 in self.blocks:
            hidden = self.relu(nn.functional.conv2d(out, *summed(conv1)))
            out = nn.functional.conv2d(hidden, *summed(conv2)) + out
        return nn.functional.conv2d(out, *summed(self.conv_out))

    def forward(self, x: torch.Tensor, noise: torch.Tensor, *, symmetric: bool | None = None) -> torch.Tensor:
        """The x2 enhancement of ``x`` at noise levels ``noise``, averaged over D4 when ``symmetric``.

        ``symmetric=None`` follows the network's own ``symmetric``."""
        padded = symmetric_pad(x, self.margin)
        if not (self.symmetric if symmetric is None else symmetric):
            return self.core(padded, noise, self.centred_linear(padded, noise))
        # With its filters averaged over the 8 transforms the linear stage is equivariant (the trained ones
        # are, to rounding: their statistics cover the 8 transforms), so it runs once and its x2 image is
        # transformed with the input.
        fine = nn.functional.pixel_shuffle(self.centred_linear(padded, noise, symmetrize_filters(self.filters)), 2)
        return dihedral_average(lambda image, estimate: self.core(image, noise, nn.functional.pixel_unshuffle(
            estimate, 2)), padded, fine)  # fmt: skip

    @property
    def architecture(self) -> dict:
        """The constructor arguments that set its size, as the registry states them.

        Examples
        --------
        >>> WienerEnhanceNet(depth=1, width=4, taps=5).architecture
        {'depth': 1, 'width': 4, 'taps': 5}
        """
        return {"depth": self.depth, "width": self.width, "taps": self.taps}

    def file_metadata(self) -> dict:
        """What a weights file records of this network besides its tensors (`~enhance.models.weights.save_weights`).

        Returns
        -------
        dict of str
            ``architecture`` ('wiener-enhance'), ``depth``, ``width``, ``taps``, ``noise_unit``, ``noise_nodes`` (JSON),
            ``exact_constants`` and ``odd``, as strings (safetensors metadata).

        Examples
        --------
        >>> WienerEnhanceNet(depth=1, width=4, taps=5).file_metadata()["architecture"]
        'wiener-enhance'
        """
        return {"architecture": WIENER_ENHANCE, **{key: str(value) for key, value in self.architecture.items()},
                "noise_unit": repr(self.noise_unit), "noise_nodes": json.dumps(list(self.noise_nodes)),
                "exact_constants": str(self.exact_constants), "odd": str(self.odd)}  # fmt: skip

    #: Settings that change how it runs but are not weights: `~enhance.models.pretrained.load_weights` copies them.
    run_settings = ("symmetric", "exact_constants", "odd")

    @property
    def filter_bank(self) -> tuple:
        """The linear stage as numpy: ``(filters, noise_nodes, noise_unit)`` (what the uncertainty propagates).

        Examples
        --------
        >>> filters, nodes, unit = WienerEnhanceNet(depth=1, width=4, taps=5).filter_bank
        >>> filters.shape, unit
        ((32, 1, 5, 5), 0.001)
        """
        return self.filters.detach().cpu().double().numpy(), tuple(self.noise_nodes), float(self.noise_unit)

    def bind(self, noise: float) -> "NoiseBound":
        """This network with its noise level fixed (`NoiseBound`), as the tiled pipeline runs it.

        Parameters
        ----------
        noise : float
            Standard deviation of the noise per input pixel, in the network's units.

        Returns
        -------
        NoiseBound
            ``forward(x)`` is ``self(x, noise)``.

        Examples
        --------
        >>> WienerEnhanceNet(depth=1, width=4, taps=5).bind(1e-3).noise
        0.001
        """
        return NoiseBound(self, noise)

    def extra_repr(self) -> str:
        return (f"depth={self.depth}, width={self.width}, taps={self.taps}, nodes={len(self.log_nodes)}, "
                f"symmetric={self.symmetric}, exact_constants={self.exact_constants}, odd={self.odd}")  # fmt: skip


class NoiseBound(nn.Module):
    """A `WienerEnhanceNet` with its noise level fixed: ``forward(x)`` is ``net(x, noise)`` for every image.

    What the tiled pipeline runs: the noise is a property of the whole image, estimated or given once.

    Parameters
    ----------
    net : WienerEnhanceNet
        The network.
    noise : float
        Standard deviation of the noise per input pixel, in the network's units.

    Examples
    --------
    >>> net = WienerEnhanceNet(depth=1, width=8, taps=5)
    >>> NoiseBound(net, 1e-3)(torch.ones(1, 1, 4, 4)).shape
    torch.Size([1, 1, 8, 8])
    """

    def __init__(self, net: WienerEnhanceNet, noise: float) -> None:
        super().__init__()
        self.net = net
        self.noise = float(noise)
        self.margin = net.margin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, torch.full((x.shape[0],), self.noise, dtype=x.dtype, device=x.device))
