"""A Wiener-Enhance CNN's response to constant images, in the exact piecewise-linear form of a ReLU network.

A network with exact constants subtracts, at each pixel, the CNN's correction of a constant image of that pixel's
value (`~enhance.models.hybrid.WienerEnhanceNet.constant_response`): a constant has no detail and the same
features everywhere, so each 3x3 convolution acts as its kernel summed to 1x1, and the response is a ReLU network
of one variable, the value (the noise level is fixed for an image). Such a function is continuous and piecewise
linear. `ConstantResponse` finds its pieces in float64 over the image's range and evaluates it with a table
lookup and one multiply-add per pixel and output phase, where onnxruntime ran the 1x1 network on every pixel (a
tenth of the time of the 'light' model). Written by hand: no library traces the linear pieces of a ReLU network.
"""

import numpy as np

__all__ = ["summed_state", "flat_weights", "response_pieces", "ConstantResponse"]

#: Table cells per linear piece for the lookup of `ConstantResponse` (a power of two, at least this many).
CELLS_PER_PIECE = 32
#: At most this many edges of the pieces in one cell of the table, else a binary search.
MAX_EDGES_PER_CELL = 4


def _names(depth):
    return ["conv_in", *(f"blocks.{i}.{j}" for i in range(int(depth)) for j in (0, 1)), "conv_out"]


def summed_state(state, depth: int) -> dict:
    """The part of a Wiener-Enhance network's state dict that acts on constant images: each 3x3 kernel summed
    to 1x1 (float64) and the biases, under the same names (what a shipped model's graph cache keeps).

    Parameters
    ----------
    state : mapping of str to array
        The network's state dict.
    depth : int
        Residual blocks.

    Returns
    -------
    dict of str to `~numpy.ndarray`
        ``NAME.weight`` ``(out, in, 1, 1)`` and ``NAME.bias`` for ``conv_in``, the blocks and ``conv_out``;
        `flat_weights` reads it as it reads the whole state.

    Examples
    --------
    >>> from enhance.models.architecture import wiener_state_shapes
    >>> state = {name: np.ones(shape) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
    >>> summed = summed_state(state, 1)
    >>> summed["conv_out.weight"].shape, float(summed["conv_out.weight"][0, 0, 0, 0])
    ((4, 4, 1, 1), 9.0)
    """
    out = {}
    for name in _names(depth):
        out[f"{name}.weight"] = np.asarray(state[f"{name}.weight"], np.float64).sum(axis=(2, 3), keepdims=True)
        out[f"{name}.bias"] = np.asarray(state[f"{name}.bias"], np.float64)
    return out


def flat_weights(state, depth: int) -> dict:
    """The 1x1 network a Wiener-Enhance CNN is on constant images: its kernels summed, in float64.

    Parameters
    ----------
    state : mapping of str to array
        The network's state dict (``conv_in``, ``blocks.{i}.{0,1}``, ``conv_out`` weights and biases).
    depth : int
        Residual blocks.

    Returns
    -------
    dict
        ``conv_in``: ``(width, 3)`` the value's and the level's weights and the bias; ``blocks``: per block
        ``(w0, b0, w1, b1)``; ``conv_out``: ``(w, b)`` with one row per output phase.

    Examples
    --------
    >>> from enhance.models.architecture import wiener_state_shapes
    >>> state = {name: np.ones(shape) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
    >>> weights = flat_weights(state, 1)
    >>> weights["conv_in"].shape, weights["conv_out"][0].shape, float(weights["conv_out"][0][0, 0])
    ((4, 3), (4, 4), 9.0)
    """

    state = summed_state(state, depth)  # the same sums whether ``state`` holds 3x3 or summed 1x1 kernels

    def summed(name):
        return state[f"{name}.weight"][:, :, 0, 0], state[f"{name}.bias"]

    w_in, b_in = summed("conv_in")  # input channels: the value, 4 detail phases (zero on a constant), the level
    blocks = [(*summed(f"blocks.{i}.0"), *summed(f"blocks.{i}.1")) for i in range(int(depth))]
    return {"conv_in": np.stack([w_in[:, 0], w_in[:, -1], b_in], axis=1), "blocks": blocks,
            "conv_out": summed("conv_out")}  # fmt: skip


def _cut(lower, upper, slope, intercept):
    """Cut the intervals ``(lower, upper)`` wherever one of their affine pre-activations ``slope c + intercept``
    (intervals x channels) changes sign strictly inside: the new intervals and the index of each one's parent."""
    with np.errstate(divide="ignore", invalid="ignore"):
        root = -intercept / slope
    inside = (slope != 0) & (root > lower[:, None]) & (root < upper[:, None])
    rows = np.nonzero(inside)[0]
    if len(rows) == 0:
        return lower, upper, np.arange(len(lower))
    cuts = np.concatenate([lower, upper, root[inside]])
    owner = np.concatenate([np.arange(len(lower)), np.arange(len(lower)), rows])
    order = np.lexsort((cuts, owner))
    cuts, owner = cuts[order], owner[order]
    keep = (owner[1:] == owner[:-1]) & (cuts[1:] > cuts[:-1])  # two channels crossing at one point cut once
    return cuts[:-1][keep], cuts[1:][keep], owner[:-1][keep]


def _active(lower, upper, slope, intercept):
    """Which channels are positive on each interval (none changes sign inside it)."""
    return slope * (0.5 * (lower + upper))[:, None] + intercept > 0


def response_pieces(weights: dict, level: float, lower: float, upper: float):
    """The linear pieces of the response to constants of value ``lower`` to ``upper``, in float64.

    Parameters
    ----------
    weights : dict
        From `flat_weights`.
    level : float
        The log noise level the network is told (its ``level`` channel).
    lower, upper : float
        The range of values, network units (``lower < upper``).

    Returns
    -------
    tuple of arrays
        ``(edges, slopes, intercepts)``: ``(m + 1,)`` increasing, from ``lower`` to ``upper``; ``(m, phases)``
        each: on piece ``j`` the response is ``slopes[j] c + intercepts[j]``.

    Examples
    --------
    >>> weights = {"conv_in": np.array([[1.0, 0.0, -0.5]]), "blocks": [],
    ...            "conv_out": (np.array([[2.0]]), np.array([0.0]))}
    >>> edges, slopes, intercepts = response_pieces(weights, 0.0, 0.0, 1.0)  # 2 relu(c - 0.5)
    >>> edges.tolist(), slopes.ravel().tolist(), intercepts.ravel().tolist()
    ([0.0, 0.5, 1.0], [0.0, 2.0], [0.0, -1.0])
    """
    lower, upper = np.array([float(lower)]), np.array([float(upper)])
    w_value, w_level, bias = weights["conv_in"].T
    slope, intercept = w_value[None, :], (w_level * float(level) + bias)[None, :]
    lower, upper, parent = _cut(lower, upper, slope, intercept)
    slope, intercept = slope[parent], intercept[parent]
    on = _active(lower, upper, slope, intercept)
    slope, intercept = slope * on, intercept * on
    for w0, b0, w1, b1 in weights["blocks"]:
        hidden = slope @ w0.T, intercept @ w0.T + b0
        lower, upper, parent = _cut(lower, upper, *hidden)
        slope, intercept, hidden = slope[parent], intercept[parent], (hidden[0][parent], hidden[1][parent])
        on = _active(lower, upper, *hidden)
        slope, intercept = slope + (hidden[0] * on) @ w1.T, intercept + (hidden[1] * on) @ w1.T + b1
    w_out, b_out = weights["conv_out"]
    order = np.argsort(lower, kind="stable")
    edges = np.append(lower[order], upper[order][-1])
    return edges, (slope @ w_out.T)[order], (intercept @ w_out.T + b_out)[order]


class ConstantResponse:
    """The response to constants of a Wiener-Enhance CNN told one noise level, evaluated per pixel.

    Parameters
    ----------
    weights : dict
        From `flat_weights`.
    level : float
        The log noise level the network is told.
    odd : bool
        The network's correction is its odd part (magnetograms): so is the response, ``(r(c) - r(-c)) / 2``.
    phase_mean : bool
        Return the mean over the output phases (one channel: what 'full''s 8 passes subtract on average).

    Examples
    --------
    >>> weights = {"conv_in": np.array([[1.0, 0.0, -0.5]]), "blocks": [],
    ...            "conv_out": (np.array([[2.0], [1.0]]), np.array([0.0, 0.25]))}
    >>> response = ConstantResponse(weights, 0.0)
    >>> response(np.array([[0.25, 0.75]], np.float32))[..., 0].tolist()  # 2 relu(c - 0.5)
    [[0.0, 0.5]]
    """

    def __init__(self, weights: dict, level: float, *, odd: bool = False, phase_mean: bool = False):
        self.weights, self.level, self.odd, self.phase_mean = weights, float(level), bool(odd), bool(phase_mean)
        self.phases = 1 if self.phase_mean else len(weights["conv_out"][0])
        self.table = None  # traced on first use over the values seen; replaced whole when later values need more

    def _trace(self, lower, upper):
        if upper <= lower:  # one value: a range of width one about it
            lower, upper = lower - 0.5, upper + 0.5
        edges, slopes, intercepts = response_pieces(self.weights, self.level, lower, upper)
        if self.phase_mean:
            slopes, intercepts = slopes.mean(axis=1, keepdims=True), intercepts.mean(axis=1, keepdims=True)
        return _Table(edges, slopes, intercepts)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """The response at each value, phases last (`phase_major` with its first axis moved last, as a view).

        Parameters
        ----------
        values : array_like
            As in `phase_major`.

        Returns
        -------
        `~numpy.ndarray`
            ``phase_major(values)``, shape ``values.shape + (phases,)``.

        Examples
        --------
        >>> weights = {"conv_in": np.array([[1.0, 0.0, 0.0]]), "blocks": [],
        ...            "conv_out": (np.array([[1.0], [-1.0]]), np.array([0.0, 0.0]))}
        >>> ConstantResponse(weights, 0.0)(np.array([-2.0, 3.0])).tolist()  # relu(c), -relu(c)
        [[0.0, 0.0], [3.0, -3.0]]
        """
        return np.moveaxis(self.phase_major(values), 0, -1)

    def phase_major(self, values: np.ndarray) -> np.ndarray:
        """The response at each value, one image per phase (what the runner subtracts, phase by phase).

        Safe to call from several threads: each call reads one table, and a wider one replaces it whole.

        Parameters
        ----------
        values : array_like
            Pixel values, network units.

        Returns
        -------
        `~numpy.ndarray`
            float32 ``(phases,) + values.shape`` (one phase with ``phase_mean``); NaN where a value is NaN,
            not finite where it is infinite.

        Examples
        --------
        >>> weights = {"conv_in": np.array([[1.0, 0.0, 0.0]]), "blocks": [],
        ...            "conv_out": (np.array([[1.0]]), np.array([0.0]))}
        >>> ConstantResponse(weights, 0.0, odd=True).phase_major(np.array([-2.0, 3.0]))[0].tolist()  # relu's odd part
        [-1.0, 1.5]
        """
        values = np.asarray(values, np.float32)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return np.full((self.phases, *values.shape), np.nan, np.float32)
        lower, upper = float(finite.min()), float(finite.max())
        if self.odd:  # the table must hold -values too
            lower, upper = -max(abs(lower), abs(upper)), max(abs(lower), abs(upper))
        table = self.table
        if table is None or lower < table.lower or upper > table.upper:
            known = (lower, upper) if table is None else (table.lower, table.upper)
            table = self.table = self._trace(min(lower, known[0]), max(upper, known[1]))
        with np.errstate(invalid="ignore"):  # infinite values: inf - inf
            response = table(values)
            if self.odd:
                response -= table(-values)
                response *= np.float32(0.5)
        return response


class _Table:
    """A piecewise-linear function on a uniform table of cells: each cell holds the first piece it meets and the
    edges inside it, so that a value's piece is one lookup and a comparison per edge in its cell (a binary
    search instead where some cell holds more than `MAX_EDGES_PER_CELL`: a range made wide by a far value)."""

    def __init__(self, edges, slopes, intercepts):
        self.lower, self.upper = float(edges[0]), float(edges[-1])
        self.edges = edges[1:-1]
        cells = 1 << int(np.ceil(np.log2(CELLS_PER_PIECE * len(slopes))))
        self.scale = cells / (self.upper - self.lower)
        self.first = np.searchsorted(self.edges, self.lower + np.arange(cells) / self.scale, side="right")
        cell = self._cell(self.edges)
        count = np.bincount(cell, minlength=cells)
        self.inside = None
        if count.max(initial=0) <= MAX_EDGES_PER_CELL:
            inside = np.full((cells, max(1, int(count.max(initial=0)))), np.inf)
            inside[cell, np.arange(len(cell)) - np.searchsorted(cell, cell)] = self.edges  # sorted edges and cells
            self.inside = [column for column in inside.T if np.isfinite(column).any()]
        # (phases, pieces) each: one image per phase is a gather from a short table and a multiply-add
        self.slopes = np.ascontiguousarray(np.asarray(slopes, np.float32).T)
        self.intercepts = np.ascontiguousarray(np.asarray(intercepts, np.float32).T)

    def _cell(self, values):
        """The cell of each value, computed in float64 for the table as for the values."""
        with np.errstate(invalid="ignore"):  # NaN or infinite values: any cell, and a NaN result
            cell = ((np.asarray(values, np.float64) - self.lower) * self.scale).astype(np.intp)
        return np.clip(cell, 0, len(self.first) - 1, out=cell)

    def __call__(self, values):
        if self.inside is None:
            piece = np.searchsorted(self.edges, values, side="right")
        else:
            cell = self._cell(values)
            piece = self.first[cell]
            for column in self.inside:
                piece += values >= column[cell]
        out = np.empty((len(self.slopes), *np.shape(values)), np.float32)
        for phase, slope, intercept in zip(out, self.slopes, self.intercepts, strict=True):
            np.multiply(slope[piece], values, out=phase)
            phase += intercept[piece]
        return out
