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

from safetensors.torch import save_file

from .._version import __version__
from ..checks import check_choice
from ..exceptions import ModelNotTrainedError
from ..io import atomic_write

__all__ = [
    "KINDS",
    "VARIANTS",
    "REGISTRY",
    "shipped",
    "save_weights",
    "read_metadata",
    "shipped_path",
    "registry_entry",
    "file_sha256",
    "package_data_dir",
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


def save_weights(net, path, *, kind: str, metadata: dict | None = None, overwrite: bool = False) -> Path:
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
    meta.update({"depth": str(net.depth), "width": str(net.width)})
    meta.update({"kind": kind, "format": "enhance-weights-1", "package_version": __version__})
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in net.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta), overwrite=overwrite)


def read_metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


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


def model_card(kind: str, variant: str) -> dict:
    """The JSON model card of a shipped model (training data, recipe, metrics)."""
    return json.loads((package_data_dir() / registry_entry(kind, variant)["card"]).read_text())
