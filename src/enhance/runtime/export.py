"""ONNX export of an `~enhance.models.network.EnhanceNet`, and an onnxruntime runner that needs no PyTorch.

`export_onnx` writes the network as a plain ONNX graph (opset 17) of ``Pad``, ``Conv``, ``Relu``,
``Add``, ``Slice`` and ``DepthToSpace`` nodes, built node by node from the BatchNorm-folded weights, so
the file holds no framework-specific operators and loads in any ONNX runtime. Its inputs and outputs
are ``image`` ``(n, 1, ny, nx)`` and ``enhanced`` ``(n, 1, 2 ny, 2 nx)``, float32, any size of at least
2x2 pixels. The architecture (``depth``, ``width``) and the data kind are kept in the model's metadata.

`OnnxNetwork` runs such a file with onnxruntime (the optional ``onnx`` extra) on numpy arrays; this
module imports neither torch nor onnxruntime until they are needed, and the runner never imports torch.
Pass an `OnnxNetwork` as ``network=`` to `~enhance.inference.api.enhance` (or ``backend='onnx'``): the
result agrees with the PyTorch path within 1e-4.

Every exported file carries what a caller needs besides the graph (`inference_metadata`): the kind, the
units, the normalisation rule, the handling of missing pixels, the pixel scales and the model card.
With them, onnxruntime alone reproduces ``enhance run`` (to 1e-5 on the shipped cut-outs; tested in
``tests/test_notorch.py``)::

    import numpy as np, onnxruntime as ort
    from astropy.io import fits
    from enhance.data import sample_path
    from enhance.observation.quiet_sun import estimate_qs_level

    session = ort.InferenceSession("enhance_light_intensity.onnx")  # from `enhance export`
    meta = session.get_modelmeta().custom_metadata_map  # kind, units, normalisation rule, model card
    image = fits.getdata(sample_path("intensity")).astype(np.float32)
    level = estimate_qs_level(image)  # meta["normalisation"]: divide by the quiet-Sun level, multiply back
    out = session.run(None, {"image": (image / level).astype(np.float32)[None, None]})[0][0, 0] * np.float32(level)
    out[(out < 0) & (np.repeat(np.repeat(image, 2, 0), 2, 1) >= 0)] = 0  # continuum is never negative

For a magnetogram in gauss the rule is ``out = session.run(None, {"image": (field / 1000)[None, None]})[0][0, 0]
* 1000``. Without PyTorch the shipped models and weights files become such graphs with numpy
(`shipped_onnx_network`, `onnx_from_weights`, `~enhance.runtime.folding`).
"""

import importlib.util
from pathlib import Path

import numpy as np

from .._version import __version__
from ..checks import check_choice
from ..constants import KINDS
from ..io import atomic_write
from ..models.architecture import WIENER_ENHANCE
from ..models.registry import NOISE_MODELS, file_sha256, model_card, registry_entry, shipped_path
from ..models.runner import family_of
from .folding import folded_arrays, read_weights
from .onnx_cache import (
    decode_arrays,
    decode_bank,
    encode_arrays,
    encode_bank,
    graph_key,
    keep_layout,
    open_in_kept_layout,
    read_graph,
    write_graph,
)
from .onnx_checks import WIENER_FORMAT
from .onnx_runner import OPSET, OnnxNetwork, inference_metadata
from .wiener_onnx import (
    WienerOnnxNetwork,
    is_wiener_file,
    wiener_graph_from_network,
    wiener_graph_from_weights,
)

__all__ = [
    "OPSET",
    "export_onnx",
    "onnx_model",
    "onnx_graph",
    "onnx_network",
    "load_onnx",
    "load_weights_file",
    "onnx_from_weights",
    "shipped_onnx_network",
    "export_shipped",
    "export_weights",
    "inference_metadata",
    "torch_available",
    "OnnxNetwork",
    "GRAPHS",
]

_FORMAT = "enhance-onnx-1"
_INSTALL = "install it with: pip install 'solar-enhance[onnx]'"


def torch_available() -> bool:
    """Whether PyTorch can be imported here (without it the shipped models run on onnxruntime).

    Returns
    -------
    bool
        True when ``import torch`` works.

    Examples
    --------
    >>> torch_available() in (True, False)
    True
    """
    return importlib.util.find_spec("torch") is not None


def onnx_model(network, *, kind: str | None = None, metadata: dict | None = None):
    """Build the ONNX graph of an `~enhance.models.network.EnhanceNet` (BatchNorm folded, float32).

    Parameters
    ----------
    network : `~enhance.models.network.EnhanceNet`
        The network (trained or not); it is not modified.
    kind : {'intensity', 'blos'}, optional
        What the network enhances, recorded in the metadata.
    metadata : dict, optional
        More metadata to record (`inference_metadata`).

    Returns
    -------
    `onnx.ModelProto`
        A checked model with input ``image`` and output ``enhanced``.

    Notes
    -----
    The layers are those of ``fold_batchnorm(network)``: reflection ``Pad`` and a valid ``Conv`` for
    each 3x3 convolution, ``Relu`` and ``Add`` as in the paper. The nearest-neighbour x2 up-sampling
    and the 3x3 convolution after it are four 2x2 ``Conv`` (one per output phase) on the
    edge-padded low-resolution grid (`~enhance.runtime.graph.phase_kernels`), each followed by its ReLU
    and 1x1 output ``Conv`` and cropped by a ``Slice``; ``DepthToSpace`` interleaves the four. The
    values are the same, computed without the x2 feature map, and one phase's features are held at
    a time (a 1024x1024 image needs about 2 GB).

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> model = onnx_model(EnhanceNet(depth=1, width=8), kind="intensity")
    >>> [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    (['image'], ['enhanced'])
    """
    if kind is not None:
        check_choice(kind, KINDS, name="kind")
    build = GRAPHS.get(family_of(network))
    if build is None:
        msg = f"network must be an EnhanceNet or a WienerEnhanceNet, got {type(network).__name__}"
        raise TypeError(msg)
    return build(network, kind=kind, metadata=metadata)


def _paper_graph(network, *, kind, metadata):
    """`onnx_graph` of an `~enhance.models.network.EnhanceNet`'s BatchNorm-folded weights."""
    import torch

    from ..models.network import fold_batchnorm
    from .graph import phase_kernels

    folded = fold_batchnorm(network)
    arrays = {name: value.detach().cpu().to(torch.float32).numpy() for name, value in folded.state_dict().items()}
    arrays["conv_up.phases"] = phase_kernels(folded.conv_up.weight).detach().cpu().to(torch.float32).numpy()
    return onnx_graph(arrays, depth=folded.depth, width=folded.width, kind=kind, metadata=metadata)


#: How each model family (`~enhance.models.runner.family_of`) becomes an ONNX graph.
GRAPHS = {"paper": _paper_graph, WIENER_ENHANCE: wiener_graph_from_network}


class _GraphBuilder:
    """Nodes and initialisers of an ONNX graph, added layer by layer."""

    def __init__(self, arrays):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.arrays = arrays
        self.nodes, self.initializers = [], []
        self.reflect = self.constant("pads_1", np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64))

    def node(self, op, inputs, outputs, **attributes):
        self.nodes.append(self.helper.make_node(op, inputs, outputs, **attributes))
        return outputs[0]

    def constant(self, name, array):
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name=name))
        return name

    def weights(self, name):
        """The initialisers of layer ``name``'s weight and bias."""
        return [self.constant(f"{name}.{part}", self.arrays[f"{name}.{part}"]) for part in ("weight", "bias")]

    def conv3x3(self, name, source):
        padded = self.node("Pad", [source, self.reflect], [f"{name}_padded"], mode="reflect", name=f"{name}_pad")
        return self.node("Conv", [padded, *self.weights(name)], [name], kernel_shape=[3, 3], name=name)

    def relu(self, source):
        return self.node("Relu", [source], [f"{source}_relu"], name=f"{source}_relu")

    def add(self, name, a, b):
        return self.node("Add", [a, b], [name], name=name)

    def upsample(self, trunk, width):
        """Up-sampling and conv_up as four phases on the low-resolution grid (one branch each, so that only
        one phase's features are held at a time), then the 1x1 conv_out of each phase, cropped and
        interleaved."""
        edge = self.node("Pad", [trunk, self.reflect], ["trunk_edge"], mode="edge", name="trunk_edge")
        kernels = self.arrays["conv_up.phases"].reshape(4, width, width, 2, 2)
        up_bias = self.constant("conv_up.bias", self.arrays["conv_up.bias"])
        out_weight, out_bias = self.weights("conv_out")
        axes = self.constant("slice_axes", np.array([2, 3], dtype=np.int64))
        end = {0: -1, 1: 2**62}  # phase 0 drops the last row (column) of the (ny + 1, nx + 1) grid, phase 1 the first
        crops = []
        for a in (0, 1):
            for b in (0, 1):
                p = 2 * a + b  # phase (a, b) at (y, x) is read at (y + a, x + b) of the (ny + 1, nx + 1) grid
                weight = self.constant(f"conv_up.phase{p}.weight", kernels[p])
                up = self.node("Conv", [edge, weight, up_bias], [f"conv_up.phase{p}"], kernel_shape=[2, 2],
                               name=f"conv_up.phase{p}")  # fmt: skip
                out = self.node("Conv", [self.relu(up), out_weight, out_bias], [f"conv_out.phase{p}"],
                                kernel_shape=[1, 1])  # fmt: skip
                starts = self.constant(f"phase{p}_starts", np.array([a, b], dtype=np.int64))
                ends = self.constant(f"phase{p}_ends", np.array([end[a], end[b]], dtype=np.int64))
                crops.append(self.node("Slice", [out, starts, ends, axes], [f"phase{p}"], name=f"phase{p}"))
        cropped = self.node("Concat", crops, ["phases_cropped"], axis=1, name="concat")
        return self.node("DepthToSpace", [cropped], ["enhanced"], blocksize=2, mode="CRD")


def onnx_graph(arrays, *, depth: int, width: int, kind: str | None = None, metadata: dict | None = None):
    """Build the ONNX graph of an Enhance network from its BatchNorm-folded weights, with numpy only.

    Parameters
    ----------
    arrays : mapping of str to `~numpy.ndarray`
        float32 weights and biases by layer name (``conv_in``, ``blocks.{i}.conv1``, ``blocks.{i}.conv2``,
        ``conv_skip``, ``conv_up``, ``conv_out``; e.g. ``"conv_in.weight"``), with every BatchNorm folded
        into its convolution, and ``"conv_up.phases"``: the four 2x2 phase kernels of ``conv_up``
        (`~enhance.runtime.graph.phase_kernels`).
    depth : int
        Number of residual blocks.
    width : int
        Number of feature channels.
    kind : {'intensity', 'blos'}, optional
        What the network enhances, recorded in the metadata.
    metadata : dict, optional
        More metadata to record (e.g. `inference_metadata`: units, normalisation rule, model card).

    Returns
    -------
    `onnx.ModelProto`
        A checked model with input ``image`` and output ``enhanced`` (see `onnx_model`).

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> model = onnx_model(EnhanceNet(depth=1, width=8))
    >>> [node.op_type for node in model.graph.node][:3]
    ['Pad', 'Conv', 'Relu']
    """
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as err:
        msg = f"the onnx package is needed to export a network; {_INSTALL}"
        raise ImportError(msg) from err

    graph = _GraphBuilder(arrays)
    head = graph.relu(graph.conv3x3("conv_in", "image"))
    current = head
    for i in range(depth):
        hidden = graph.relu(graph.conv3x3(f"blocks.{i}.conv1", current))
        current = graph.add(f"blocks.{i}.sum", graph.conv3x3(f"blocks.{i}.conv2", hidden), current)
    trunk = graph.add("skip_sum", graph.conv3x3("conv_skip", current), head)
    graph.upsample(trunk, width)

    onnx_graph_proto = helper.make_graph(
        graph.nodes,
        f"EnhanceNet_depth{depth}_width{width}",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, "ny", "nx"])],
        [helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, ["n", 1, "ny2", "nx2"])],
        initializer=graph.initializers,
    )
    model = helper.make_model(
        onnx_graph_proto, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="solar-enhance"
    )

    model.producer_version = __version__
    props = {**(metadata or {}), "format": _FORMAT, "depth": depth, "width": width, "kind": kind or ""}
    helper.set_model_props(model, {key: str(value) for key, value in props.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(network, path, *, kind: str | None = None, overwrite: bool = False, card: dict | None = None) -> Path:
    """Write an `~enhance.models.network.EnhanceNet` to an ONNX file, atomically.

    Parameters
    ----------
    network : `~enhance.models.network.EnhanceNet`
        The network to export.
    path : str or `~pathlib.Path`
        Destination ``.onnx`` file.
    kind : {'intensity', 'blos'}, optional
        What the network enhances, recorded in the file.
    overwrite : bool
        Replace an existing file; without it an existing file raises `FileExistsError`.
    card : dict, optional
        The model card to record.

    Returns
    -------
    `~pathlib.Path`
        ``path``; the file's metadata holds the kind, the units, the normalisation rule and the model
        card (`inference_metadata`), everything onnxruntime needs to reproduce ``enhance run``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from enhance.models.network import EnhanceNet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.onnx"
    >>> export_onnx(EnhanceNet(depth=1, width=4), path).name
    'tiny.onnx'
    """
    data = onnx_model(network, kind=kind, metadata=inference_metadata(kind, card=card)).SerializeToString()
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)


def onnx_network(
    network, *, kind: str | None = None, threads: int | None = None, blocked: bool = True
) -> "OnnxNetwork":
    """Export ``network`` in memory and open it with onnxruntime (see `export_onnx` and `OnnxNetwork`).

    Parameters
    ----------
    network : `~enhance.models.network.EnhanceNet`
        The network (trained or not); it is not modified.
    kind : {'intensity', 'blos'}, optional
        What the network enhances, recorded in the metadata.
    threads : int, optional
        onnxruntime's intra-op threads; None lets it use every core.
    blocked : bool
        Keep padding, crops and residual sums in onnxruntime's blocked layout where that reproduces the plain
        graph (see `OnnxNetwork`), as the shipped graphs run.

    Returns
    -------
    OnnxNetwork
        The runner, called on float32 arrays of shape ``(n, 1, ny, nx)``.

    Examples
    --------
    >>> import numpy as np
    >>> from enhance.models.network import EnhanceNet
    >>> runner = onnx_network(EnhanceNet(depth=1, width=8), threads=1)
    >>> runner(np.zeros((1, 1, 10, 12), np.float32)).shape
    (1, 1, 20, 24)
    """
    return _runner(onnx_model(network, kind=kind).SerializeToString(), threads=threads, blocked=blocked)


def load_onnx(path) -> "OnnxNetwork":
    """Open an ONNX file written by `export_onnx` with onnxruntime; PyTorch is not needed.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The ONNX file.

    Returns
    -------
    OnnxNetwork
        The runner, called on float32 arrays of shape ``(n, 1, ny, nx)``.

    Examples
    --------
    >>> import tempfile
    >>> from enhance.models.network import EnhanceNet
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = export_onnx(EnhanceNet(depth=1, width=8), f"{folder}/tiny.onnx", kind="blos")
    ...     runner = load_onnx(path)
    >>> runner.kind, runner.depth, runner.width
    ('blos', 1, 8)
    """
    path = Path(path)
    if not path.is_file():
        msg = f"ONNX file not found: {path}"
        raise FileNotFoundError(msg)
    return _runner(path)


def load_weights_file(path, *, kind: str):
    """The network in a weights file, as ``enhance run --weights`` loads it.

    A ``.onnx`` file becomes an `~enhance.runtime.export.OnnxNetwork` (onnxruntime); anything else is
    read as safetensors weights (`~enhance.models.pretrained.load_network`). Either way the file's kind
    must be ``kind``.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A ``.onnx`` or safetensors file.
    kind : {'intensity', 'blos'}
        What the network must enhance.

    Returns
    -------
    `~enhance.models.network.EnhanceNet` or OnnxNetwork
        The network, ready for `~enhance.inference.api.enhance`.

    Examples
    --------
    >>> from enhance.models.registry import shipped_path
    >>> load_weights_file(shipped_path("blos", "paper-light"), kind="blos").width
    32
    """
    if Path(path).suffix.lower() != ".onnx":
        if not torch_available():  # without PyTorch the weights run as an ONNX graph built with numpy
            graph = onnx_from_weights(path, kind=kind).SerializeToString()
            return _runner(graph)
        from ..models.pretrained import load_network

        return load_network(path, kind=kind)
    network = load_onnx(path)
    if network.kind is not None and network.kind != kind:
        msg = f"{path} holds a {network.kind} network, but the data are {kind}"
        raise ValueError(msg)
    return network


def onnx_from_weights(path, *, kind: str | None = None, card: dict | None = None, symmetric: bool = False):
    """The ONNX graph of a safetensors weights file, built with numpy only (no PyTorch).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A weights file (`~enhance.models.weights.save_weights`, or a shipped one).
    kind : {'intensity', 'blos'}, optional
        If given, the file's kind must be this one.
    card : dict, optional
        A model card to record.
    symmetric : bool
        For a Wiener-Enhance file: record that the model averages over the 8 rotations and flips.

    Returns
    -------
    `onnx.ModelProto`
        The graph of `onnx_graph`, from the BatchNorm-folded weights (`~enhance.runtime.folding`), with the
        metadata of `inference_metadata`. It agrees with the PyTorch export to float32 rounding.

    Examples
    --------
    >>> from enhance.models.registry import shipped_path
    >>> model = onnx_from_weights(shipped_path("blos", "paper-light"), kind="blos")
    >>> {p.key: p.value for p in model.metadata_props}["kind"]
    'blos'
    """
    if is_wiener_file(read_weights(path, tensors=False)[1]):  # the header only: the builder reads the tensors
        return wiener_graph_from_weights(path, kind=kind, card=card, symmetric=symmetric)
    arrays, depth, width, metadata = folded_arrays(path)
    found = metadata.get("kind")
    if kind is not None and found not in (None, kind):
        msg = f"{path} holds a {found!r} network, but kind={kind!r}"
        raise ValueError(msg)
    kind = kind or found
    return onnx_graph(arrays, depth=depth, width=width, kind=kind, metadata=inference_metadata(kind, card=card))


def shipped_onnx_network(kind: str, model: str = "full", *, threads: int | None = None) -> "OnnxNetwork":
    """The shipped ``model`` for ``kind`` as an onnxruntime runner, built from its weights without PyTorch.

    The weights file is checked against the registry's sha256 first. The graph is built, checked and probed
    once and kept in the user's cache (`~enhance.runtime.onnx_cache`); later calls read it back, verified by
    its sha256, and need neither the ``onnx`` package nor the build.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram.
    model : {'full', 'light', 'paper', 'paper-light'}
        Which shipped network.
    threads : int, optional
        onnxruntime's intra-op threads; None lets it use every core.

    Returns
    -------
    OnnxNetwork
        The runner.

    Examples
    --------
    >>> shipped_onnx_network("blos", "paper-light").width, shipped_onnx_network("blos", "light").symmetric
    (32, False)
    """
    entry = registry_entry(kind, model)  # ModelNotTrainedError for a model this version does not ship
    path = shipped_path(kind, model)
    digest = file_sha256(path)
    if digest != entry.sha256:
        msg = f"{path} has sha256 {digest}, but the registry lists {entry.sha256}: the file is damaged"
        raise ValueError(msg)
    symmetric, card = entry.symmetric, model_card(kind, model)
    key = graph_key(kind, model, weights_sha256=digest, symmetric=symmetric, card=card)
    cached = read_graph(key)
    if cached is not None:
        return _cached_runner(*cached, key=key, threads=threads)
    data = onnx_from_weights(path, kind=kind, card=card, symmetric=symmetric).SerializeToString()
    # checked and probed, in the blocked layout where it reproduces the graph; 'full''s other graphs kept under key
    runner = _runner(data, threads=threads, cache_key=key)
    bank, constant_state = getattr(runner, "filter_bank", None), getattr(runner, "constant_state", None)
    write_graph(
        key,
        data,
        {
            "checked": runner.checked,
            "filter_bank": None if bank is None else encode_bank(bank),
            "constant_state": None if constant_state is None else encode_arrays(constant_state),
        },
    )
    keep_layout(key, runner.layout, runner.rewritten)  # so that later runs give the same bits, without onnx
    return runner


def _cached_runner(data, record, *, key, threads=None):
    """`_runner` for a graph from the verified cache of a shipped model: what its checks found is read back.

    The graph runs in the layout found for this machine the first time (`~enhance.runtime.onnx_cache.layout_key`):
    the blocked graph kept then, or the plain one; where none was kept yet, it is rewritten once (with the
    ``onnx`` package, 0.6 s to import) and kept.
    """

    def open_with(blocked):  # the probe runs again
        network = OnnxNetwork(data, threads=threads, checked=record["checked"], blocked=blocked)
        return network, network.layout, network.rewritten

    network = open_in_kept_layout(key, open_with)
    if record["checked"]["format"] != WIENER_FORMAT:
        return network
    constant_state = record.get("constant_state")  # None without exact constants
    constant_state = None if constant_state is None else decode_arrays(constant_state)
    return WienerOnnxNetwork.from_network(network, filter_bank=decode_bank(record["filter_bank"]), cache_key=key,
                                          constant_state=constant_state)  # fmt: skip


def _runner(model, *, threads=None, symmetric=None, blocked=True, cache_key=None):
    """`OnnxNetwork` for an Enhance graph, `~enhance.runtime.wiener_onnx.WienerOnnxNetwork` for a Wiener-Enhance one.

    ``model`` is a file or its bytes; one session is opened either way."""
    network = OnnxNetwork(model, threads=threads, blocked=blocked)
    if network.metadata.get("architecture") == "wiener-enhance":
        # its linear stage read from the graph
        return WienerOnnxNetwork.from_network(network, symmetric=symmetric, cache_key=cache_key)
    averaged = network.metadata.get("symmetric") == "True" if symmetric is None else symmetric  # exported averaged
    return network.averaged() if averaged else network


def export_weights(weights, path, *, overwrite: bool = False) -> Path:
    """Write a safetensors weights file as an ONNX file, with its kind and the inference metadata.

    With PyTorch the network is built and exported (`export_onnx`); without it the graph is built with
    numpy (`onnx_from_weights`). The two agree to float32 rounding.

    Parameters
    ----------
    weights : str or `~pathlib.Path`
        The weights file.
    path : str or `~pathlib.Path`
        The ONNX file to write, or an existing directory for ``<weights name>.onnx``.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    `~pathlib.Path`
        The file written.

    Examples
    --------
    >>> import tempfile
    >>> from enhance.models.registry import shipped_path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     print(export_weights(shipped_path("intensity", "paper-light"), folder).suffix)
    .onnx
    """
    path = Path(path)
    if path.is_dir():
        path = path / f"{Path(weights).name.split('.')[0]}.onnx"

    card = read_weights(weights, tensors=False)[1]  # the file's own record: kind, architecture, training config
    if torch_available():
        from ..models.pretrained import load_network

        return export_onnx(load_network(weights), path, kind=card.get("kind"), overwrite=overwrite, card=card)
    data = onnx_from_weights(weights, card=card).SerializeToString()
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)


def export_shipped(out_dir, *, kinds=KINDS, models=NOISE_MODELS, overwrite: bool = False):
    """Write shipped models as ``out_dir/enhance_<model>_<kind>.onnx``, with their model cards in the metadata.

    Uses PyTorch when it is installed and numpy otherwise (the two graphs agree to float32 rounding).

    Parameters
    ----------
    out_dir : str or `~pathlib.Path`
        An existing directory.
    kinds, models : sequence of str
        Which shipped models.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    list of (str, str, `~pathlib.Path` or Exception)
        ``(model, kind, path)`` for each file written, or ``(model, kind, error)`` for each that was not
        (`~enhance.exceptions.ModelNotTrainedError` for a model this version does not ship).

    Raises
    ------
    FileNotFoundError
        If ``out_dir`` is not a directory.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     written = export_shipped(folder, kinds=("blos",), models=("light",))
    ...     print([(model, kind, path.name) for model, kind, path in written])
    [('light', 'blos', 'enhance_light_blos.onnx')]
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        msg = f"out_dir must be an existing directory (one file per model), got {out_dir}"
        raise FileNotFoundError(msg)
    results = []
    for kind in kinds:
        for model in models:
            target = out_dir / f"enhance_{model}_{kind}.onnx"
            try:
                card = model_card(kind, model)
                if torch_available():
                    from ..models.pretrained import FACTORIES

                    network = FACTORIES[model](kind, weights="default")
                    path = export_onnx(network, target, kind=kind, overwrite=overwrite, card=card)
                else:
                    symmetric = registry_entry(kind, model).symmetric
                    graph = onnx_from_weights(shipped_path(kind, model), kind=kind, card=card, symmetric=symmetric)
                    data = graph.SerializeToString()
                    path = atomic_write(target, lambda tmp, data=data: Path(tmp).write_bytes(data), overwrite=overwrite)
            except (OSError, ValueError, LookupError) as err:  # LookupError: ModelNotTrainedError
                results.append((model, kind, err))
                continue
            results.append((model, kind, path))
    return results
