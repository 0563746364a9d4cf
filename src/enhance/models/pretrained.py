"""Networks with weights: built from a safetensors file, or the shipped models of the registry.

`~enhance.models.network` and `~enhance.models.hybrid` define the architectures, `~enhance.models.weights` the
file format and `~enhance.models.registry` the shipped models; this module joins them: `load_network` builds a
network from a weights file, `load_weights`, `shipped_model` and the factories `full`, `light`, `paper` and
`paper_light` give the shipped models, `ship` adds new ones to the package data.
"""

import functools
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .._version import __version__
from ..checks import check_choice
from ..constants import KINDS
from ..io import atomic_write
from . import registry
from .architecture import FAMILY_OF_ARCHITECTURE, WIENER_ENHANCE, check_weights_metadata
from .hybrid import WienerEnhanceNet
from .network import EnhanceNet
from .registry import MANIFEST, MODELS, file_sha256, registry_entry
from .weights import read_metadata

__all__ = ["load_network", "load_weights", "ship", "shipped_model", "full", "light", "paper", "paper_light",
           "FACTORIES"]  # fmt: skip


def load_network(path, *, kind: str | None = None) -> EnhanceNet:
    """Build an `~enhance.models.network.EnhanceNet` from a weights file.

    The file is one written by `~enhance.models.weights.save_weights`.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A safetensors weights file.
    kind : {'intensity', 'blos'}, optional
        If given, the file's ``kind`` must match it.

    Returns
    -------
    `~enhance.models.network.EnhanceNet`
        The network, in eval mode, on the CPU.

    Examples
    --------
    >>> import tempfile
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.models.weights import save_weights
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save_weights(EnhanceNet(depth=1, width=8), f"{folder}/tiny.safetensors", kind="blos")
    ...     net = load_network(path, kind="blos")
    >>> net.depth, net.width
    (1, 8)
    """
    path = Path(path)
    if not path.exists():
        msg = f"weights file not found: {path}"
        raise FileNotFoundError(msg)
    if not path.is_file():
        msg = f"weights file {path} is not a regular file (a directory or a FIFO?)"
        raise ValueError(msg)
    try:
        meta, shapes = read_metadata(path), _tensor_shapes(path)
    except (SafetensorError, OSError, ValueError) as err:
        msg = f"{path} is not a safetensors weights file: {err}"
        raise ValueError(msg) from err
    # Checked before anything is built or read, as the numpy path (`~enhance.runtime.folding`) checks them:
    found = check_weights_metadata(path, meta, shapes)
    if kind is not None and found["kind"] != kind:
        msg = f"{path} holds a {found['kind']!r} network, but kind={kind!r} was asked for"
        raise ValueError(msg)
    arguments = {key: value for key, value in found.items() if key not in ("architecture", "kind")}
    net = (WienerEnhanceNet if found["architecture"] == WIENER_ENHANCE else EnhanceNet)(**arguments)
    depth, width = net.depth, net.width
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        msg = f"{path} is not a safetensors weights file: {err}"
        raise ValueError(msg) from err
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            msg = f"weights file {path}: tensor {name} holds {bad} NaN or infinite values; the network would give NaN"
            raise ValueError(msg)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:  # e.g. a dtype torch cannot copy: one line, not torch's list
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        msg = f"{path}: its tensors do not match its metadata (depth {depth}, width {width}): {first}"
        raise ValueError(msg) from None
    return net.eval()


def _tensor_shapes(path: Path) -> dict:
    """``{name: shape}`` of the tensors in a safetensors file, read from its header (no tensor data)."""
    with safe_open(str(path), framework="pt") as handle:
        return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118


def load_weights(kind: str, model: str, *, net=None):
    """Load a shipped model, checking its file's sha256, architecture and parameter count.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram model.
    model : {'full', 'light', 'paper', 'paper-light'}
        Which model of the registry (`~enhance.models.registry.MODELS`).
    net : `~enhance.models.network.EnhanceNet` or `~enhance.models.hybrid.WienerEnhanceNet`, optional
        A network of the right architecture to load into; a new one by default.

    Returns
    -------
    `~enhance.models.network.EnhanceNet` or `~enhance.models.hybrid.WienerEnhanceNet`
        The trained network, in eval mode, on the CPU.

    Raises
    ------
    `~enhance.exceptions.ModelNotTrainedError`
        If the package ships no trained weights for this model.

    Examples
    --------
    >>> net = load_weights("intensity", "paper-light")
    >>> net.depth, net.width, net.training
    (1, 32, False)
    """
    loaded = registry_entry(kind, model).load()
    if net is None:
        return loaded
    if type(net) is not type(loaded) or net.architecture != loaded.architecture:
        msg = f"shipped weights are for {loaded.architecture}, but the network is {net.architecture}"
        raise ValueError(msg)
    net.load_state_dict(loaded.state_dict())
    for name in loaded.run_settings:  # the options the weights were trained with, and the registry's symmetry
        setattr(net, name, getattr(loaded, name))
    return net.eval()


def _check_model_network(net, weights, model):
    """The network in ``weights`` must be of the family and architecture the registry gives ``model``."""
    spec = MODELS[model]
    family = FAMILY_OF_ARCHITECTURE[read_metadata(weights).get("architecture", "enhance")]  # as `load_network` read it
    if family != spec.family or net.architecture != spec.architecture:
        msg = (f"{weights} holds {type(net).__name__} {net.architecture}, but the {model!r} model is "
               f"{spec.family} {spec.architecture}")  # fmt: skip
        raise ValueError(msg)


def ship(weights, kind: str, model: str, *, card: dict, data_dir=None) -> registry.ModelEntry:
    """Copy trained weights into the package data with their model card, and add them to the manifest.

    The weights file, the card's file and the manifest's row are the registry's
    (`~enhance.models.registry.ModelEntry.manifest_row`); only the sha256 and the parameter count are
    measured here.

    Parameters
    ----------
    weights : str or `~pathlib.Path`
        A safetensors file (from ``enhance train``: ``--config`` for the default models, ``--data`` for
        the paper's networks).
    kind : {'intensity', 'blos'}
    model : {'full', 'light', 'paper', 'paper-light'}
    card : dict
        The model card: training data, recipe, steps, validation metrics (JSON-serialisable).
    data_dir : str or `~pathlib.Path`, optional
        Where to ship; defaults to the package's data folder.

    Returns
    -------
    `~enhance.models.registry.ModelEntry`
        The registry entry ('full' and 'light' share one weights file).

    Examples
    --------
    >>> import tempfile
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.models.weights import save_weights
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save_weights(EnhanceNet(depth=1, width=32), f"{folder}/light.safetensors", kind="blos")
    ...     entry = ship(path, "blos", "paper-light", card={"steps": 0}, data_dir=folder)
    >>> entry.num_params, entry.file
    (37537, 'enhance_blos_paper-light.safetensors')
    """
    check_choice(kind, KINDS, name="kind")
    check_choice(model, tuple(MODELS), name="model")
    net = load_network(weights, kind=kind)
    _check_model_network(net, weights, model)
    spec = MODELS[model]
    folder = Path(data_dir) if data_dir is not None else registry.package_data_dir()
    target = folder / spec.file(kind)
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(Path(weights).read_bytes()), overwrite=True)
    card = {"name": Path(spec.card(kind)).stem, "kind": kind, "variant": model, "package_version": __version__,
            **card}  # fmt: skip
    _write_json(folder / spec.card(kind), card)
    entry = spec.entry(kind, sha256=file_sha256(target), num_params=sum(p.numel() for p in net.parameters()))
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    _write_json(manifest_path, manifest | {f"{kind}/{model}": entry.manifest_row()}, sort_keys=True)
    return entry


def _write_json(path: Path, data: dict, *, sort_keys: bool = False) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=sort_keys)),
                 overwrite=True)  # fmt: skip


def shipped_model(kind: str = "intensity", *, model: str, weights: str | None = None):
    """A model of the registry: untrained, or with its shipped weights.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram network.
    model : {'full', 'light', 'paper', 'paper-light'}
        Which model (`~enhance.models.registry.MODELS`).
    weights : {None, 'default'}
        None for an untrained network, 'default' for the shipped weights.

    Returns
    -------
    `~enhance.models.hybrid.WienerEnhanceNet` or `~enhance.models.network.EnhanceNet`
        The network; with the shipped weights, in eval mode.

    Examples
    --------
    >>> type(shipped_model("blos", model="paper-light")).__name__
    'EnhanceNet'
    """
    check_choice(model, tuple(MODELS), name="model")
    if weights is None:
        return MODELS[model].build(kind)
    if weights != "default":
        msg = f"weights must be None or 'default', got {weights!r}"
        raise ValueError(msg)
    return load_weights(kind, model)


def full(kind: str = "intensity", *, weights: str | None = None) -> WienerEnhanceNet:
    """The default model: Wiener-Enhance, averaged over the 8 rotations and flips of the input.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram network.
    weights : {None, 'default'}
        None for an untrained network (the linear stage at zero), 'default' for the shipped weights.

    Returns
    -------
    `~enhance.models.hybrid.WienerEnhanceNet`
        The network (``symmetric=True``); with the shipped weights, in eval mode.

    Examples
    --------
    >>> net = full("blos")
    >>> net.symmetric, net.margin
    (True, 18)
    """
    return shipped_model(kind, model="full", weights=weights)


def light(kind: str = "intensity", *, weights: str | None = None) -> WienerEnhanceNet:
    """One pass of the default model (`full` without the average over rotations and flips), 8 times faster.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram network.
    weights : {None, 'default'}
        None for an untrained network, 'default' for the shipped weights.

    Returns
    -------
    `~enhance.models.hybrid.WienerEnhanceNet`
        The network (``symmetric=False``); with the shipped weights, in eval mode.

    Examples
    --------
    >>> light("intensity").symmetric
    False
    """
    return shipped_model(kind, model="light", weights=weights)


def paper(kind: str = "intensity", *, weights: str | None = None) -> EnhanceNet:
    """The paper's network, ``EnhanceNet(depth=5, width=64)``, as Díaz Baso & Asensio Ramos (2018) built it.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram network.
    weights : {None, 'default'}
        None for an untrained (initialised) network, 'default' for the shipped weights.

    Returns
    -------
    `~enhance.models.network.EnhanceNet`
        The network; with the shipped weights, in eval mode.

    Examples
    --------
    >>> net = paper("blos", weights="default")
    >>> sum(p.numel() for p in net.parameters())
    445249
    """
    return shipped_model(kind, model="paper", weights=weights)


def paper_light(kind: str = "intensity", *, weights: str | None = None) -> EnhanceNet:
    """The paper's light network, ``EnhanceNet(depth=1, width=32)``, about six times faster than `paper`.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram network.
    weights : {None, 'default'}
        None for an untrained (initialised) network, 'default' for the shipped weights.

    Returns
    -------
    `~enhance.models.network.EnhanceNet`
        The network; with the shipped weights, in eval mode.

    Examples
    --------
    >>> net = paper_light("intensity", weights="default")
    >>> sum(p.numel() for p in net.parameters())
    37537
    """
    return shipped_model(kind, model="paper-light", weights=weights)


#: The constructor of each model of the registry: ``FACTORIES[model](kind, weights=None)``, `shipped_model`.
FACTORIES = {name: functools.partial(shipped_model, model=name) for name in MODELS}
