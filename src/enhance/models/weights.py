"""Trained weights: the registry of shipped models and safetensors files.

A weights file is a safetensors file holding an `~enhance.models.network.EnhanceNet` state dict, with the
architecture (``depth``, ``width``) and the data kind in its metadata, so that it loads on its own.
The shipped models live in ``enhance/data`` and are listed in its `REGISTRY` with their sha256, parameter
count and model card; `~enhance.models.pretrained.load_weights` checks all of them before use.
"""

import hashlib
import json
from pathlib import Path

from safetensors import safe_open

from .._version import __version__
from ..checks import check_choice
from ..constants import KINDS, VARIANTS
from ..data import data_dir
from ..exceptions import ModelNotTrainedError
from ..io import atomic_write
from .architecture import WIENER_ENHANCE

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


#: The registry of shipped models in the package data: ``{"<kind>/<variant>": {"file", "sha256",
#: "num_params", "card"}}``. `~enhance.models.pretrained.ship` adds entries; a model appears only once
#: its weights meet the floors of the training issue, and until then asking for it raises
#: `~enhance.exceptions.ModelNotTrainedError`.
REGISTRY = "models.json"


def package_data_dir() -> Path:
    """The package's data folder (weights, model cards, registry, sample cut-outs): `enhance.data.data_dir`.

    The registry functions look the folder up through this name, so that tests can point them elsewhere.

    Returns
    -------
    pathlib.Path
        The folder inside the installed package.

    Examples
    --------
    >>> (package_data_dir() / "models.json").is_file()
    True
    """
    return data_dir()


def shipped() -> dict[tuple[str, str], dict]:
    """The shipped models, from the package's registry.

    Returns
    -------
    dict
        ``(kind, variant) -> {"file", "sha256", "num_params", "card"}``.

    Examples
    --------
    >>> sorted(variant for kind, variant in shipped() if kind == "blos")
    ['full', 'light', 'paper', 'paper-light']
    """
    path = package_data_dir() / REGISTRY
    if not path.is_file():
        return {}
    entries = json.loads(path.read_text())
    return {tuple(key.split("/")): value for key, value in entries.items()}


def save_weights(net, path, *, kind: str, metadata: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``net``'s weights and running statistics to a safetensors file, atomically.

    Parameters
    ----------
    net : `~enhance.models.network.EnhanceNet` or `~enhance.models.hybrid.WienerEnhanceNet`
        The network.
    path : str or `~pathlib.Path`
        Destination file.
    kind : {'intensity', 'blos'}
        What the network enhances; stored in the metadata.
    metadata : dict, optional
        Extra string-valued metadata (training recipe, metrics, ...).
    overwrite : bool
        Replace an existing file; without it an existing file raises `FileExistsError`.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile
    >>> from enhance.models.network import EnhanceNet
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save_weights(EnhanceNet(depth=1, width=8), f"{folder}/tiny.safetensors", kind="intensity")
    ...     print(path.name, read_metadata(path)["kind"])
    tiny.safetensors intensity
    """
    check_choice(kind, KINDS, name="kind")
    meta = {key: str(value) for key, value in (metadata or {}).items()}
    meta.update({"depth": str(net.depth), "width": str(net.width)})
    if hasattr(net, "taps"):  # a WienerEnhanceNet: the linear stage's size and noise levels too
        meta.update({"architecture": WIENER_ENHANCE, "taps": str(net.taps), "noise_unit": repr(net.noise_unit),
                     "noise_nodes": json.dumps(list(net.noise_nodes)),
                     "exact_constants": str(net.exact_constants), "odd": str(net.odd)})  # fmt: skip
    meta.update({"kind": kind, "format": "enhance-weights-1", "package_version": __version__})
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in net.state_dict().items()}
    from safetensors.torch import save_file  # writing needs PyTorch; reading the registry does not

    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta), overwrite=overwrite)


def read_metadata(path: Path) -> dict:
    """The string metadata of a safetensors weights file (kind, architecture, training notes).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The weights file.

    Returns
    -------
    dict
        ``{key: str}``; empty when the file carries none.

    Examples
    --------
    >>> read_metadata(shipped_path("blos", "paper-light"))["kind"]
    'blos'
    """
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def shipped_path(kind: str, variant: str) -> Path:
    """Path of a shipped weights file inside the package.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram model.
    variant : {'full', 'light', 'paper', 'paper-light'}
        Which network.

    Returns
    -------
    pathlib.Path
        The safetensors file.

    Examples
    --------
    >>> shipped_path("intensity", "light").name, shipped_path("intensity", "paper-light").name
    ('enhance_intensity_wiener.safetensors', 'enhance_intensity_paper-light.safetensors')
    """
    return package_data_dir() / registry_entry(kind, variant)["file"]


def registry_entry(kind: str, variant: str) -> dict:
    """The registry entry of a shipped model, or an error that names the shipped alternative.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram model.
    variant : {'full', 'light', 'paper', 'paper-light'}
        Which network.

    Returns
    -------
    dict
        ``{"file", "sha256", "num_params", "card"}``.

    Raises
    ------
    `~enhance.exceptions.ModelNotTrainedError`
        If the package ships no weights for this model.

    Examples
    --------
    >>> registry_entry("blos", "paper-light")["num_params"]
    37537
    """
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
    """SHA-256 of a file's contents, read in 1 MiB blocks.

    Parameters
    ----------
    path : `~pathlib.Path`
        The file.

    Returns
    -------
    str
        The hexadecimal digest.

    Examples
    --------
    >>> file_sha256(shipped_path("blos", "paper-light")) == registry_entry("blos", "paper-light")["sha256"]
    True
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_card(kind: str, variant: str) -> dict:
    """The JSON model card of a shipped model (training data, recipe, metrics).

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram model.
    variant : {'full', 'light', 'paper', 'paper-light'}
        Which network.

    Returns
    -------
    dict
        The card: training data, observation model, recipe, history, validation metrics, behaviour on
        the real HMI sample, known deviations, package version.

    Examples
    --------
    >>> card = model_card("intensity", "full")
    >>> isinstance(card, dict) and len(card) > 0
    True
    """
    return json.loads((package_data_dir() / registry_entry(kind, variant)["card"]).read_text())
