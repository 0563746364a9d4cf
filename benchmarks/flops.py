"""Nominal floating-point work of the Enhance network: 2 x the multiply-adds of every convolution.

Counted on the paper's layer sequence (Fig. 4): ``2 depth + 2`` 3x3 convolutions on the input grid
(the first with one input channel), one 3x3 convolution on the x2 grid and the 1x1 output convolution.
BatchNorm, ReLU, sums and up-sampling are not counted. Faster evaluations of the same function (the
phase-decomposed up-sampling of `enhance.runtime.graph.InferenceNet`) are still credited with this nominal
count, so "achieved GFLOP/s" compares like with like across implementations.
"""

__all__ = ["enhance_flops"]


def enhance_flops(ny: int, nx: int, *, depth: int = 5, width: int = 64) -> int:
    """FLOPs (2 x multiply-adds) of ``EnhanceNet(depth, width)`` on an ``ny`` x ``nx`` image.

    >>> round(enhance_flops(400, 400) / 1e9, 1)  # the paper's model: about 177 GFLOP
    177.2
    """
    pixels = ny * nx
    low = pixels * 9 * (1 * width + (2 * depth + 1) * width * width)  # conv_in, the blocks, conv_skip
    high = 4 * pixels * (9 * width * width + width * 1)  # conv_up (3x3) and conv_out (1x1) on the x2 grid
    return 2 * (low + high)
