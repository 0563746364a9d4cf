"""Nominal floating-point work of the networks: 2 x the multiply-adds of every convolution.

`enhance_flops` counts the paper's network, ``EnhanceNet`` (Fig. 4): ``2 depth + 2`` 3x3 convolutions on
the input grid (the first with one input channel), one 3x3 convolution on the x2 grid and the 1x1 output
convolution. BatchNorm, ReLU, sums and up-sampling are not counted. Faster evaluations of the same
function (the phase-decomposed up-sampling of `enhance.runtime.graph.InferenceNet`) are still credited
with this nominal count, so "achieved GFLOP/s" compares like with like across implementations.

`wiener_flops` counts the default models, `enhance.models.hybrid.WienerEnhanceNet`, on the grid they
compute (the input mirrored by the receptive margin, each unpadded convolution two pixels smaller than
its input): the linear stage once (one blended ``taps x taps`` kernel per output phase), the CNN once
per pass (8 for 'full', which averages over the rotations and flips; 1 for 'light'), and with
``exact_constants`` the CNN's response to a constant image of each pixel's value (its kernels summed to
1x1): in the one pass of 'light', once for all the passes of 'full' (their mean over the phases). The
onnxruntime runner evaluates that response in its exact piecewise-linear form
(`enhance.runtime.constant_pieces`: a table lookup per pixel, not a multiply-add count); like the paper's
up-sampling above, it is credited with the nominal count of the 1x1 network it equals.
"""

__all__ = ["enhance_flops", "wiener_flops"]


def enhance_flops(ny: int, nx: int, *, depth: int = 5, width: int = 64) -> int:
    """FLOPs (2 x multiply-adds) of ``EnhanceNet(depth, width)`` on an ``ny`` x ``nx`` image.

    >>> round(enhance_flops(400, 400) / 1e9, 1)  # the paper's model: about 177 GFLOP
    177.2
    """
    pixels = ny * nx
    low = pixels * 9 * (1 * width + (2 * depth + 1) * width * width)  # conv_in, the blocks, conv_skip
    high = 4 * pixels * (9 * width * width + width * 1)  # conv_up (3x3) and conv_out (1x1) on the x2 grid
    return 2 * (low + high)


def wiener_flops(ny: int, nx: int, *, depth: int = 3, width: int = 32, taps: int = 21, passes: int = 1,
                 exact_constants: bool = False) -> int:  # fmt: skip
    """FLOPs (2 x multiply-adds) of ``WienerEnhanceNet(depth, width, taps)`` on an ``ny`` x ``nx`` image.

    ``passes`` is the number of CNN passes: 8 for the 'full' model, 1 for 'light'.

    >>> round(wiener_flops(400, 400) / 1e9, 1), round(wiener_flops(400, 400, passes=8) / 1e9, 1)
    (19.9, 154.9)
    >>> round(wiener_flops(400, 400, exact_constants=True) / 1e9, 1)
    21.9
    """

    def grid(margin: int) -> int:  # pixels of a layer's output, ``margin`` input pixels beyond the image
        return (ny + 2 * margin) * (nx + 2 * margin)

    edge = 2 * depth + 2  # the CNN's margin: one pixel per 3x3 convolution
    linear = grid(edge) * 4 * taps * taps  # four phases, on the grid the CNN starts from
    cnn = grid(edge - 1) * 9 * 6 * width  # conv_in: image, estimate - image (4 phases), log noise
    for block in range(depth):
        cnn += (grid(edge - 2 - 2 * block) + grid(edge - 3 - 2 * block)) * 9 * width * width
    cnn += grid(0) * 9 * width * 4  # conv_out: one correction per phase
    constants = 0
    if exact_constants:  # 1x1 convolutions on the input grid: the value and the level in, 4 phases (1: their mean) out
        constants = grid(0) * (2 * width + 2 * depth * width * width + width * (4 if passes == 1 else 1))
    return 2 * (linear + passes * cnn + constants)
