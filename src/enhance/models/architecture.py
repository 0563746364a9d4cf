"""Facts of the Enhance architecture that need no PyTorch: the receptive field of a network of a given depth.

`~enhance.models.network` builds the network itself; inference without PyTorch (onnxruntime) and the
tiling take what they need to know about it from here.
"""

__all__ = ["receptive_margin"]


def receptive_margin(depth: int) -> int:
    """Input pixels on each side that influence one output pixel of ``EnhanceNet(depth=depth)``.

    ``2 depth + 2`` 3x3 convolutions run on the input grid and one on the x2 grid (half an input
    pixel, rounded up), so a tile with this margin on every side gives exact interior outputs.

    Parameters
    ----------
    depth : int
        Residual blocks of the network.

    Returns
    -------
    int
        The margin, input pixels.

    Examples
    --------
    >>> receptive_margin(5), receptive_margin(1)
    (13, 5)
    """
    return 2 * depth + 3
