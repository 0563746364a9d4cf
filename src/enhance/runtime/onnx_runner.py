"""The onnxruntime runner of an exported network, and what every exported file records besides its graph.

`OnnxNetwork` runs an ONNX file or its bytes with onnxruntime (the optional ``onnx`` extra) on numpy arrays;
it never imports PyTorch. `inference_metadata` is what an exported file carries so that onnxruntime alone
reproduces ``enhance run``: the kind, the units, the normalisation rule, the handling of missing pixels, the
pixel scales and the model card. `~enhance.runtime.export` builds and writes the graphs,
`~enhance.runtime.wiener_onnx` those of the default models.
"""

import json
from pathlib import Path

import numpy as np

from ..cores import cpu_cores
from ..models.architecture import receptive_margin
from ..models.runner import Dihedral
from .onnx_checks import WIENER_FORMAT, check_onnx_model, check_probe
from .ort_blocked import blocked_session

__all__ = ["OPSET", "OnnxNetwork", "inference_metadata", "open_session"]

#: ONNX opset of the exported graphs.
OPSET = 17

_INSTALL = "install it with: pip install 'solar-enhance[onnx]'"

#: What a caller does around the graph to reproduce ``enhance run``, per kind (kept in every exported file).
_RULES = {
    "intensity": {
        "units": "input and output in units of the quiet-Sun continuum level (I/Ic), float32, shape (n, 1, ny, nx)",
        "normalisation": "divide the image by its quiet-Sun level before the graph and multiply the output by it "
        "(enhance.observation.quiet_sun.estimate_qs_level: iterated mean of the pixels within 15 % of the level; "
        "near the limb enhance uses a fitted surface, fit_qs_surface); then set output pixels to 0 where they are "
        "negative and their input pixel is not",
    },
    "blos": {
        "units": "input and output in kG (line-of-sight field in gauss / 1000), float32, shape (n, 1, ny, nx)",
        "normalisation": "divide gauss by 1000 before the graph and multiply the output by 1000",
    },
}
_COMMON_RULES = {
    "missing_pixels": "fill NaN with the value of the nearest finite pixel (scipy.ndimage.distance_transform_edt) "
    "before the graph; NaN again at their 2x2 output pixels",
    "pixel_scale": "input 0.504 arcsec/pixel (SDO/HMI), output 0.252 arcsec/pixel; output pixel k is centred on "
    "input pixel (k + 0.5) / 2 - 0.5 (CRPIX' = 2 CRPIX - 0.5, CDELT' = CDELT / 2)",
    "reference": "Diaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5",
}


def inference_metadata(kind: str | None, *, card: dict | None = None) -> dict:
    """The metadata an exported file carries so that onnxruntime alone reproduces ``enhance run``.

    Parameters
    ----------
    kind : {'intensity', 'blos'} or None
        What the network enhances; None records only the rules common to both kinds.
    card : dict, optional
        The model card (training data, recipe, metrics) of a shipped model, stored as JSON.

    Returns
    -------
    dict of str
        ``units``, ``normalisation``, ``missing_pixels``, ``pixel_scale``, ``reference`` and ``model_card``.

    Examples
    --------
    >>> inference_metadata("blos")["normalisation"]
    'divide gauss by 1000 before the graph and multiply the output by 1000'
    """
    metadata = dict(_RULES.get(kind, {}))
    metadata.update(_COMMON_RULES)
    if card is not None:
        metadata["model_card"] = json.dumps(card, sort_keys=True)
    return metadata


def open_session(data: bytes, *, threads: int | None = None, blocked: bool | bytes = True, probe: dict | None = None,
                 name: str = "the ONNX bytes"):  # fmt: skip
    """An onnxruntime session of a serialised graph on the CPU, and its layout.

    Parameters
    ----------
    data : bytes
        The serialised graph.
    threads : int, optional
        Intra-op threads; None: onnxruntime's default (every core).
    blocked : bool or bytes
        Use `~enhance.runtime.ort_blocked.blocked_session` where it reproduces the plain graph on ``probe``;
        bytes: the blocked graph it rewrote earlier on this machine (a cache), probed the same way.
    probe : dict of str to `~numpy.ndarray`, optional
        The inputs of that check; None: an image as the first input.
    name : str
        The file, for the messages.

    Returns
    -------
    tuple
        ``(session, layout, rewritten)``: layout 'blocked' or 'plain', and the serialised blocked graph
        (None where the plain graph runs).

    Raises
    ------
    ImportError
        Without onnxruntime.
    ValueError
        Where onnxruntime cannot read the graph.

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.runtime.export import onnx_model
    >>> session, layout, _ = open_session(onnx_model(EnhanceNet(depth=1, width=8)).SerializeToString(), threads=1)
    >>> layout in ("blocked", "plain"), session.get_inputs()[0].name
    (True, 'image')
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        msg = f"onnxruntime is needed to run an ONNX network; {_INSTALL}"
        raise ImportError(msg) from err

    def options():
        options = ort.SessionOptions()
        # Memory patterns are planned and kept per input shape: tiles of a few shapes made a 4096x4096
        # run grow past 9 GB. Without them memory stays flat at the same speed (the arena is kept: it
        # is the fast allocator).
        options.enable_mem_pattern = False
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        return options

    try:
        session = ort.InferenceSession(data, sess_options=options(), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for unreadable models
        msg = f"{name} is not a readable ONNX model: {err}"
        raise ValueError(msg) from err
    kept = blocked if isinstance(blocked, bytes) else None
    faster = blocked_session(data, options(), reference=session, probe=probe, rewritten=kept) if blocked else None
    return (session, "plain", None) if faster is None else (faster[0], "blocked", faster[1])


def _probe_feeds(checked) -> dict:
    """A random image (and HMI's noise level) for a Wiener-Enhance graph: its inputs in `blocked_session`."""
    pad = 2 * checked["margin"]
    image = np.random.default_rng(0).uniform(0.2, 1.2, (1, 1, 37 + pad, 29 + pad)).astype(np.float32)
    return {"image": image, "noise": np.array([checked["noise_unit"]], np.float32)}


class OnnxNetwork:
    """An exported network run by onnxruntime on the CPU, on float32 numpy arrays.

    Parameters
    ----------
    model : str, `~pathlib.Path` or bytes
        An ONNX file written by `~enhance.runtime.export.export_onnx`, or its serialised bytes.
    threads : int, optional
        onnxruntime's intra-op threads; None lets it use every core
        (`~enhance.cores.cpu_cores`). A Wiener-Enhance graph
        (the default models) runs single-threaded calls instead, ``threads`` of them at once (``workers``:
        bands, tiles or the 8 passes of `~enhance.runtime.wiener_onnx.WienerOnnxNetwork`).
    blocked : bool or bytes
        Run onnxruntime's graph for this CPU with padding, crops and residual sums kept in its
        blocked layout (`~enhance.runtime.ort_blocked`), 10 to 15 % faster, where it reproduces the plain graph
        on a probe image; False runs the graph as written; bytes: that blocked graph as rewritten earlier on
        this machine (``rewritten``, kept in a cache), probed the same way but opened without the ``onnx``
        package.
    checked : dict, optional
        What `~enhance.runtime.onnx_checks.check_onnx_model` found in these very bytes, kept with a shipped
        model's graph in the cache of `~enhance.runtime.onnx_cache` (verified by its sha256); None (default)
        checks the file.

    Attributes
    ----------
    depth, width : int
        The architecture, from the file's metadata (checked against the graph).
    layout : {'blocked', 'plain'}
        Which graph runs (see ``blocked``).
    rewritten : bytes or None
        The serialised blocked graph that runs, valid on this machine only; None where the plain one runs.
    workers : int
        Calls that may run at once: 1, or ``threads`` (every core by default) for a Wiener-Enhance graph.
    kind : str or None
        'intensity' or 'blos' when the export recorded it.
    margin : int
        Input pixels on each side that an output pixel depends on.
    metadata : dict of str
        The file's metadata: architecture, kind, units, normalisation rule and model card
        (`inference_metadata`).

    Notes
    -----
    The file is checked before it runs (`~enhance.runtime.onnx_checks`): every metadata key against its bounds
    and the graph, only the operators this package writes, finite weights, and a probe image must come back on
    its x2 grid; a file of another origin is refused. Calling the object maps an ``(n, 1, ny, nx)`` float32
    array to ``(n, 1, 2 ny, 2 nx)``: it is a `~enhance.models.runner.Runner` of the paper's network on
    onnxruntime, and `~enhance.inference.api.enhance` takes it where it takes a PyTorch network.

    Examples
    --------
    >>> import numpy as np
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.runtime.export import onnx_model
    >>> runner = OnnxNetwork(onnx_model(EnhanceNet(depth=1, width=8)).SerializeToString(), threads=1)
    >>> runner(np.zeros((1, 1, 8, 8), np.float32)).shape
    (1, 1, 16, 16)
    """

    #: The model family (`~enhance.models.runner.family_of`).
    family = "paper"
    #: The runner protocol's facts of a network not told the noise level, that runs once.
    needs_noise = False
    noise_unit = None
    noise_nodes = ()
    noise = None
    symmetric = False
    #: No linear stage, so no propagated noise (`~enhance.inference.uncertainty.filter_bank`).
    filter_bank = None
    #: ``(kind, model, sha256)`` of a shipped model (its uncertainty calibration), set where it is loaded.
    registry_key = None

    def __init__(self, model, *, threads: int | None = None, blocked: bool = True, checked: dict | None = None) -> None:
        name = "the ONNX bytes" if isinstance(model, bytes) else str(model)
        data = model if isinstance(model, bytes) else Path(model).read_bytes()
        # every metadata key against its bounds and the graph (a verified cache entry: when it was written)
        self.checked = check_onnx_model(data, name) if checked is None else dict(checked)
        self.name, self.graph = name, data
        wiener = self.checked["format"] == WIENER_FORMAT
        self.workers = (int(threads) if threads else cpu_cores()) if wiener else 1
        probe = _probe_feeds(self.checked) if wiener else None
        self.session, self.layout, self.rewritten = open_session(data, threads=1 if wiener else threads,
                                                                 blocked=blocked, probe=probe, name=name)  # fmt: skip
        meta = self.session.get_modelmeta().custom_metadata_map
        self.depth, self.width, self.kind = self.checked["depth"], self.checked["width"], self.checked["kind"]
        self.margin = receptive_margin(self.depth)
        self.metadata = dict(meta)  # units, normalisation rule, model card (`inference_metadata`)
        self._input = self.session.get_inputs()[0].name
        if self.metadata.get("architecture") != "wiener-enhance":  # a Wiener-Enhance runner probes once bound
            check_probe(self, name)  # the x2 grid of a probe, before any image

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        array = np.ascontiguousarray(batch, dtype=np.float32)
        if array.ndim != 4 or array.shape[1] != 1:
            msg = f"batch must have shape (n, 1, ny, nx), got {array.shape}"
            raise ValueError(msg)
        return self.session.run(None, {self._input: array})[0]

    def bind(self, noise: float | None) -> "OnnxNetwork":
        """This runner: the paper's network is not told the noise level (`~enhance.models.runner.Runner`).

        Parameters
        ----------
        noise : float or None
            Standard deviation of the noise per input pixel, network units (ignored).

        Returns
        -------
        OnnxNetwork
            This runner.

        Examples
        --------
        >>> from enhance.models.network import EnhanceNet
        >>> from enhance.runtime.export import onnx_model
        >>> runner = OnnxNetwork(onnx_model(EnhanceNet(depth=1, width=8)).SerializeToString(), threads=1)
        >>> runner.needs_noise, runner.bind(2e-3) is runner
        (False, True)
        """
        return self

    def averaged(self):
        """This runner averaged over the 8 rotations and flips (`~enhance.models.runner.Dihedral`).

        Returns
        -------
        `~enhance.models.runner.Dihedral`
            This runner, wrapped: each call runs the session 8 times.

        Examples
        --------
        >>> from enhance.models.network import EnhanceNet
        >>> from enhance.runtime.export import onnx_model
        >>> runner = OnnxNetwork(onnx_model(EnhanceNet(depth=1, width=8)).SerializeToString(), threads=1)
        >>> averaged = runner.averaged()
        >>> averaged.symmetric, averaged.margin == runner.margin
        (True, True)
        """
        return Dihedral(self)

    def one_pass(self) -> "OnnxNetwork":
        """This runner: it runs once.

        Returns
        -------
        OnnxNetwork
            This runner.

        Examples
        --------
        >>> from enhance.models.network import EnhanceNet
        >>> from enhance.runtime.export import onnx_model
        >>> runner = OnnxNetwork(onnx_model(EnhanceNet(depth=1, width=8)).SerializeToString(), threads=1)
        >>> runner.one_pass() is runner, runner.averaged().one_pass() is runner
        (True, True)
        """
        return self

    def export(self) -> bytes:
        """The ONNX graph this runner was opened from.

        Returns
        -------
        bytes
            The file's bytes, unchanged (its metadata included).

        Examples
        --------
        >>> from enhance.models.network import EnhanceNet
        >>> from enhance.runtime.export import onnx_model
        >>> graph = onnx_model(EnhanceNet(depth=1, width=8)).SerializeToString()
        >>> OnnxNetwork(graph, threads=1).export() == graph
        True
        """
        return self.graph

    def __repr__(self) -> str:
        return f"OnnxNetwork(depth={self.depth}, width={self.width}, kind={self.kind!r})"
