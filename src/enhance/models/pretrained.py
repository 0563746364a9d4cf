"""Networks with weights: built from a safetensors file, or the shipped models of the registry.

`~enhance.models.network` defines the architecture and `~enhance.models.weights` the file format and
the registry; this module joins the two: `load_network` builds an `~enhance.models.network.EnhanceNet`
from a weights file, `load_weights` and `full`/`light` give the shipped models, `ship` registers new ones.
"""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .._version import __version__
from ..checks import check_choice
from ..constants import GAUSS_PER_KG, HMI_NOISE, MODEL_SIZES, WIENER_SIZE, WIENER_SYMMETRIC
from ..io import atomic_write
from . import weights as weight_files
from .architecture import WIENER_ENHANCE, check_weights_metadata
from .hybrid import WienerEnhanceNet
from .network import EnhanceNet
from .weights import KINDS, REGISTRY, VARIANTS, file_sha256, read_metadata, registry_entry, shipped_path

__all__ = ["load_network", "load_weights", "ship", "full", "light", "paper", "paper_light", "FACTORIES"]


def _architecture(net) -> dict:
    if isinstance(net, WienerEnhanceNet):
        return {"depth": net.depth, "width": net.width, "taps": net.taps}
    return {"depth": net.depth, "width": net.width}


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


def load_weights(kind: str, variant: str, *, net=None):
    """Load a shipped model, checking its file's sha256, architecture and parameter count.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram model.
    variant : {'full', 'light', 'paper', 'paper-light'}
        Wiener-Enhance averaged over the 8 rotations and flips, or one pass of it; or the paper's network
        (depth 5, width 64) or its light version (depth 1, width 32).
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
    entry = registry_entry(kind, variant)
    path = shipped_path(kind, variant)
    digest = file_sha256(path)
    if digest != entry["sha256"]:
        msg = f"shipped weights {path} are corrupt: sha256 {digest}, expected {entry['sha256']}"
        raise ValueError(msg)
    loaded = load_network(path, kind=kind)
    n_params = sum(p.numel() for p in loaded.parameters())
    if n_params != entry["num_params"]:
        msg = f"shipped weights {path} hold {n_params} parameters, expected {entry['num_params']}"
        raise ValueError(msg)
    if isinstance(loaded, WienerEnhanceNet):
        loaded.symmetric = bool(entry.get("symmetric", False))
    if net is None:
        return loaded
    if type(net) is not type(loaded) or _architecture(net) != _architecture(loaded):
        msg = f"shipped weights are for {_architecture(loaded)}, but the network is {_architecture(net)}"
        raise ValueError(msg)
    net.load_state_dict(loaded.state_dict())
    if isinstance(net, WienerEnhanceNet):  # the options the weights were trained with, and the registry's symmetry
        net.symmetric, net.exact_constants, net.odd = loaded.symmetric, loaded.exact_constants, loaded.odd
    return net.eval()


def _check_variant_network(net, weights, variant):
    """The network in ``weights`` must be the architecture the ``variant`` ships."""
    if variant in WIENER_SYMMETRIC:
        expected, ok = WIENER_SIZE, isinstance(net, WienerEnhanceNet) and _architecture(net) == WIENER_SIZE
    else:
        expected = MODEL_SIZES[variant]
        ok = isinstance(net, EnhanceNet) and _architecture(net) == expected
    if not ok:
        msg = f"{weights} holds {type(net).__name__} {_architecture(net)}, but the {variant!r} model is {expected}"
        raise ValueError(msg)


def ship(weights, kind: str, variant: str, *, card: dict, data_dir=None) -> dict:
    """Copy trained weights into the package data with their model card, and register them.

    Parameters
    ----------
    weights : str or `~pathlib.Path`
        A safetensors file (from ``enhance train``: ``--config`` for the default models, ``--data`` for
        the paper's networks).
    kind : {'intensity', 'blos'}
    variant : {'full', 'light', 'paper', 'paper-light'}
    card : dict
        The model card: training data, recipe, steps, validation metrics (JSON-serialisable).
    data_dir : str or `~pathlib.Path`, optional
        Where to ship; defaults to the package's data folder.

    Returns
    -------
    dict
        The registry entry (file, sha256, num_params, card; ``symmetric`` for 'full' and 'light', which
        share one file).

    Examples
    --------
    >>> import tempfile
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.models.weights import save_weights
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save_weights(EnhanceNet(depth=1, width=32), f"{folder}/light.safetensors", kind="blos")
    ...     entry = ship(path, "blos", "paper-light", card={"steps": 0}, data_dir=folder)
    >>> entry["num_params"]
    37537
    """
    check_choice(kind, KINDS, name="kind")
    check_choice(variant, VARIANTS, name="model")
    net = load_network(weights, kind=kind)
    _check_variant_network(net, weights, variant)
    folder = Path(data_dir) if data_dir is not None else weight_files.package_data_dir()
    name = f"enhance_{kind}_{variant}"
    stem = f"enhance_{kind}_wiener" if variant in WIENER_SYMMETRIC else name
    target = folder / f"{stem}.safetensors"
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(Path(weights).read_bytes()), overwrite=True)
    card = {"name": name, "kind": kind, "variant": variant, "package_version": __version__, **card}
    atomic_write(folder / f"{name}.json", lambda tmp: Path(tmp).write_text(json.dumps(card, indent=1)), overwrite=True)
    entry = {"file": target.name, "sha256": file_sha256(target), "num_params": sum(p.numel() for p in net.parameters()),
             "card": f"{name}.json"}  # fmt: skip
    if variant in WIENER_SYMMETRIC:
        entry["symmetric"] = WIENER_SYMMETRIC[variant]
    registry_path = folder / REGISTRY
    registry = json.loads(registry_path.read_text()) if registry_path.is_file() else {}
    registry[f"{kind}/{variant}"] = entry
    atomic_write(registry_path, lambda tmp: Path(tmp).write_text(json.dumps(registry, indent=1, sort_keys=True)),
                 overwrite=True)  # fmt: skip
    return entry


def _shipped(kind: str, variant: str, weights: str | None):
    if variant in WIENER_SYMMETRIC:
        net = WienerEnhanceNet(**WIENER_SIZE, noise_unit=HMI_NOISE[kind] / (GAUSS_PER_KG if kind == "blos" else 1.0),
                               symmetric=WIENER_SYMMETRIC[variant])  # fmt: skip
    else:
        net = EnhanceNet(**MODEL_SIZES[variant])
    if weights is None:
        return net
    if weights != "default":
        msg = f"weights must be None or 'default', got {weights!r}"
        raise ValueError(msg)
    return load_weights(kind, variant, net=net)


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
    return _shipped(kind, "full", weights)


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
    return _shipped(kind, "light", weights)


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
    return _shipped(kind, "paper", weights)


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
    return _shipped(kind, "paper-light", weights)


#: The constructor of each shipped variant.
FACTORIES = {"full": full, "light": light, "paper": paper, "paper-light": paper_light}
