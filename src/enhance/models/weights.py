"""Trained weights: the registry of shipped models and safetensors files.

A weights file is a safetensors file holding an `~enhance.models.network.EnhanceNet` state dict, with the
architecture (``depth``, ``width``) and the data kind in its metadata, so that it loads on its own.
The shipped models live in ``enhance/data`` and are listed in its `REGISTRY` with their sha256, parameter
count and model card; `load_weights` checks all of them before use.
"""

import hashlib
import json
from importlib import resources
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .._version import __version__
from ..checks import check_choice
from ..exceptions import ModelNotTrainedError
from ..io import atomic_write
from .network import EnhanceNet

__all__ = [
    "KINDS",
    "VARIANTS",
    "REGISTRY",
    "shipped",
    "ship",
    "save_weights",
    "load_network",
    "load_weights_file",
    "load_weights",
    "shipped_path",
    "model_card",
]

KINDS = ("intensity", "blos")
VARIANTS = ("full", "light")

#: The registry of shipped models in the package data: ``{"<kind>/<variant>": {"file", "sha256",
#: "num_params", "card"}}``. `ship` adds entries; a model appears only once its weights meet the floors
#: of the training issue, and until then asking for it raises `~enhance.exceptions.ModelNotTrainedError`.
REGISTRY = "models.json"


def package_data_dir() -> Path:
    """The package's data folder (weights, model cards, registry, sample cut-outs)."""
    return Path(str(resources.files("enhance") / "data"))


def shipped() -> dict[tuple[str, str], dict]:
    """The shipped models: ``(kind, variant) -> {"file", "sha256", "num_params", "card"}``."""
    path = package_data_dir() / REGISTRY
    if not path.is_file():
        return {}
    entries = json.loads(path.read_text())
    return {tuple(key.split("/")): value for key, value in entries.items()}


def _architecture(net: EnhanceNet) -> dict:
    return {"depth": net.depth, "width": net.width}


def save_weights(net: EnhanceNet, path, *, kind: str, metadata: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``net``'s weights and running statistics to a safetensors file, atomically.

    Parameters
    ----------
    net : `~enhance.models.network.EnhanceNet`
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


def read_metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def load_network(path, *, kind: str | None = None) -> EnhanceNet:
    """Build an `~enhance.models.network.EnhanceNet` from a weights file written by `save_weights`.

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
    """
    path = Path(path)
    if not path.is_file():
        msg = f"weights file not found: {path}"
        raise FileNotFoundError(msg)
    try:
        meta = read_metadata(path)
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
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        msg = f"{path}: its tensors do not match its metadata (depth {meta['depth']}, width {meta['width']}): {err}"
        raise ValueError(msg) from err
    return net.eval()


def load_weights_file(path, *, kind: str):
    """The network in a weights file, as ``enhance run --weights`` loads it.

    A ``.onnx`` file becomes an `~enhance.runtime.export.OnnxNetwork` (onnxruntime); anything else is read as
    safetensors weights (`load_network`). Either way the file's kind must be ``kind``.
    """
    if Path(path).suffix.lower() != ".onnx":
        return load_network(path, kind=kind)
    from ..runtime.export import load_onnx

    network = load_onnx(path)
    if network.kind is not None and network.kind != kind:
        msg = f"{path} holds a {network.kind} network, but the data are {kind}"
        raise ValueError(msg)
    return network


def shipped_path(kind: str, variant: str) -> Path:
    """Path of a shipped weights file inside the package."""
    return package_data_dir() / registry_entry(kind, variant)["file"]


def registry_entry(kind: str, variant: str) -> dict:
    check_choice(kind, KINDS, name="kind")
    check_choice(variant, VARIANTS, name="model")
    models = shipped()
    if (kind, variant) not in models:
        others = [v for k, v in sorted(models) if k == kind]
        hint = f"use model={others[0]!r} (--model {others[0]}), or pass" if others else "Pass"
        msg = (
            f"the shipped {variant!r} {kind!r} model is not trained yet: this version of solar-enhance ships no "
            f"weights for it. {hint} network= (an EnhanceNet) or --weights FILE (a safetensors file from "
            "`enhance train`) instead."
        )
        raise ModelNotTrainedError(msg)
    return models[(kind, variant)]


def file_sha256(path: Path) -> str:
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
    if net is None:
        return loaded
    if _architecture(net) != _architecture(loaded):
        msg = f"shipped weights are for {_architecture(loaded)}, but the network is {_architecture(net)}"
        raise ValueError(msg)
    net.load_state_dict(loaded.state_dict())
    return net.eval()


def model_card(kind: str, variant: str) -> dict:
    """The JSON model card of a shipped model (training data, recipe, metrics)."""
    return json.loads((package_data_dir() / registry_entry(kind, variant)["card"]).read_text())


def ship(weights, kind: str, variant: str, *, card: dict, data_dir=None) -> dict:
    """Copy trained weights into the package data with their model card, and register them.

    Parameters
    ----------
    weights : str or `~pathlib.Path`
        A safetensors file from `enhance train` (e.g. ``best.safetensors``).
    kind : {'intensity', 'blos'}
    variant : {'full', 'light'}
    card : dict
        The model card: training data, recipe, steps, validation metrics (JSON-serialisable).
    data_dir : str or `~pathlib.Path`, optional
        Where to ship; defaults to the package's data folder.

    Returns
    -------
    dict
        The registry entry (file, sha256, num_params, card).
    """
    check_choice(kind, KINDS, name="kind")
    check_choice(variant, VARIANTS, name="model")
    net = load_network(weights, kind=kind)
    expected = {"full": {"depth": 5, "width": 64}, "light": {"depth": 1, "width": 32}}[variant]
    if _architecture(net) != expected:
        msg = f"{weights} holds {_architecture(net)}, but the {variant!r} model is {expected}"
        raise ValueError(msg)
    folder = Path(data_dir) if data_dir is not None else package_data_dir()
    name = f"enhance_{kind}_{variant}"
    target = folder / f"{name}.safetensors"
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(Path(weights).read_bytes()), overwrite=True)
    card = {"name": name, "kind": kind, "variant": variant, "package_version": __version__, **card}
    atomic_write(folder / f"{name}.json", lambda tmp: Path(tmp).write_text(json.dumps(card, indent=1)), overwrite=True)
    entry = {"file": target.name, "sha256": file_sha256(target), "num_params": sum(p.numel() for p in net.parameters()),
             "card": f"{name}.json"}  # fmt: skip
    registry_path = folder / REGISTRY
    registry = json.loads(registry_path.read_text()) if registry_path.is_file() else {}
    registry[f"{kind}/{variant}"] = entry
    atomic_write(registry_path, lambda tmp: Path(tmp).write_text(json.dumps(registry, indent=1, sort_keys=True)),
                 overwrite=True)  # fmt: skip
    return entry
