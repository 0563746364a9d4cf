"""Trained weights: the registry of shipped models and safetensors files.

A weights file is a safetensors file holding an `~enhance.network.EnhanceNet` state dict, with the
architecture (``depth``, ``width``) and the data kind in its metadata, so that it loads on its own.
The shipped models live in ``enhance/data`` and are listed in `SHIPPED` with their sha256, parameter
count and model card; `load_weights` checks all of them before use.
"""

import hashlib
import json
from importlib import resources
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ._validation import check_choice
from ._version import __version__
from .exceptions import ModelNotTrainedError
from .io import atomic_write
from .network import EnhanceNet

__all__ = [
    "KINDS",
    "VARIANTS",
    "SHIPPED",
    "save_weights",
    "load_network",
    "load_weights_file",
    "load_weights",
    "shipped_path",
    "model_card",
]

KINDS = ("intensity", "blos")
VARIANTS = ("full", "light")

#: Shipped models: ``(kind, variant) -> {"file", "sha256", "num_params", "card"}``. A model appears
#: here only once its weights meet the floors of the training issue; until then asking for it raises
#: `~enhance.exceptions.ModelNotTrainedError`.
SHIPPED: dict[tuple[str, str], dict] = {}


def _architecture(net: EnhanceNet) -> dict:
    return {"depth": net.depth, "width": net.width}


def save_weights(net: EnhanceNet, path, *, kind: str, metadata: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``net``'s weights and running statistics to a safetensors file, atomically.

    Parameters
    ----------
    net : `~enhance.network.EnhanceNet`
        The network.
    path : str or `~pathlib.Path`
        Destination file.
    kind : {'intensity', 'blos'}
        What the network enhances; stored in the metadata.
    metadata : dict, optional
        Extra string-valued metadata (training recipe, metrics, ...).
    overwrite : bool
        Replace an existing file; without it an existing file raises `FileExistsError`.
    """
    check_choice(kind, KINDS, name="kind")
    meta = {key: str(value) for key, value in (metadata or {}).items()}
    meta.update({key: str(value) for key, value in _architecture(net).items()})
    meta.update({"kind": kind, "format": "enhance-weights-1", "package_version": __version__})
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in net.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta), overwrite=overwrite)


def _read_metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def load_network(path, *, kind: str | None = None) -> EnhanceNet:
    """Build an `~enhance.network.EnhanceNet` from a weights file written by `save_weights`.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A safetensors weights file.
    kind : {'intensity', 'blos'}, optional
        If given, the file's ``kind`` must match it.

    Returns
    -------
    `~enhance.network.EnhanceNet`
        The network, in eval mode, on the CPU.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"weights file not found: {path}"
        raise FileNotFoundError(msg)
    try:
        meta = _read_metadata(path)
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        msg = f"{path} is not a safetensors weights file: {err}"
        raise ValueError(msg) from err
    missing = [key for key in ("depth", "width", "kind") if key not in meta]
    if missing:
        msg = f"{path} lacks the metadata {missing} that says which network it holds"
        raise ValueError(msg)
    if kind is not None and meta["kind"] != kind:
        msg = f"{path} holds a {meta['kind']!r} network, but kind={kind!r} was asked for"
        raise ValueError(msg)
    net = EnhanceNet(depth=int(meta["depth"]), width=int(meta["width"]))
    net.load_state_dict(state, strict=True)
    return net.eval()


def load_weights_file(path, *, kind: str):
    """The network in a weights file, as ``enhance run --weights`` loads it.

    A ``.onnx`` file becomes an `~enhance.export.OnnxNetwork` (onnxruntime); anything else is read as
    safetensors weights (`load_network`). Either way the file's kind must be ``kind``.
    """
    if Path(path).suffix.lower() != ".onnx":
        return load_network(path, kind=kind)
    from .export import load_onnx

    network = load_onnx(path)
    if network.kind is not None and network.kind != kind:
        msg = f"{path} holds a {network.kind} network, but the data are {kind}"
        raise ValueError(msg)
    return network


def shipped_path(kind: str, variant: str) -> Path:
    """Path of a shipped weights file inside the package."""
    entry = _entry(kind, variant)
    return Path(str(resources.files("enhance") / "data" / entry["file"]))


def _entry(kind: str, variant: str) -> dict:
    check_choice(kind, KINDS, name="kind")
    check_choice(variant, VARIANTS, name="model")
    if (kind, variant) not in SHIPPED:
        msg = (
            f"the shipped {variant!r} {kind!r} model is not trained yet: this version of solar-enhance ships no "
            "weights for it. Pass network= (an EnhanceNet) or --weights FILE (a safetensors file from "
            "`enhance train`) instead."
        )
        raise ModelNotTrainedError(msg)
    return SHIPPED[(kind, variant)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_weights(kind: str, variant: str, *, net: EnhanceNet | None = None) -> EnhanceNet:
    """Load a shipped model, checking its file's sha256, architecture and parameter count.

    Raises
    ------
    `~enhance.exceptions.ModelNotTrainedError`
        If the package ships no trained weights for this model.
    """
    entry = _entry(kind, variant)
    path = shipped_path(kind, variant)
    digest = _sha256(path)
    if digest != entry["sha256"]:
        msg = f"shipped weights {path} are corrupt: sha256 {digest}, expected {entry['sha256']}"
        raise ValueError(msg)
    loaded = load_network(path, kind=kind)
    n_params = sum(p.numel() for p in loaded.parameters())
    if n_params != entry["num_params"]:
        msg = f"shipped weights {path} hold {n_params} parameters, expected {entry['num_params']}"
        raise ValueError(msg)
    if net is None:
        return loaded
    if _architecture(net) != _architecture(loaded):
        msg = f"shipped weights are for {_architecture(loaded)}, but the network is {_architecture(net)}"
        raise ValueError(msg)
    net.load_state_dict(loaded.state_dict())
    return net.eval()


def model_card(kind: str, variant: str) -> dict:
    """The JSON model card of a shipped model (training data, recipe, metrics)."""
    entry = _entry(kind, variant)
    return json.loads((resources.files("enhance") / "data" / entry["card"]).read_text())
