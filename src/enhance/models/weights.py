"""Weights files: the safetensors format that holds a trained network.

A weights file is a safetensors file holding the state dict of an `~enhance.models.network.EnhanceNet` or a
`~enhance.models.hybrid.WienerEnhanceNet`, with the architecture and the data kind in its metadata, so that it
loads on its own (`~enhance.models.pretrained.load_network`). The shipped models and their files are the
model registry's, `enhance.models.registry`.
"""

import warnings
from pathlib import Path

from safetensors import safe_open

from .._version import __version__
from ..checks import check_choice
from ..constants import KINDS
from ..io import atomic_write
from . import registry

__all__ = ["save_weights", "read_metadata"]


def _manifest_rows() -> dict:
    return {key: entry.manifest_row() for key, entry in registry.shipped().items()}


def _row(kind: str, variant: str) -> dict:
    return registry.registry_entry(kind, variant).manifest_row()


#: Names of 0.4.0 that moved to the model registry (`enhance.models.registry`), where they go in 0.6.0. The
#: functions that returned dicts still do (`~enhance.models.registry.ModelEntry.manifest_row`).
_MOVED = {
    "REGISTRY": ("MANIFEST", lambda: registry.MANIFEST),
    "KINDS": ("enhance.constants.KINDS", lambda: KINDS),
    "VARIANTS": ("MODELS", lambda: tuple(registry.MODELS)),
    "shipped": ("shipped", lambda: _manifest_rows),
    "registry_entry": ("registry_entry", lambda: _row),
    "shipped_path": ("shipped_path", lambda: registry.shipped_path),
    "model_card": ("model_card", lambda: registry.model_card),
    "file_sha256": ("file_sha256", lambda: registry.file_sha256),
    "package_data_dir": ("package_data_dir", lambda: registry.package_data_dir),
}


def __getattr__(name):
    if name in _MOVED:
        new, value = _MOVED[name]
        where = new if new.startswith("enhance.") else f"enhance.models.registry.{new}"
        msg = f"enhance.models.weights.{name} is deprecated and goes in 0.6.0: use {where}"
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        return value()
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


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
    meta.update(net.file_metadata())
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
    >>> from enhance.models.registry import shipped_path
    >>> read_metadata(shipped_path("blos", "paper-light"))["kind"]
    'blos'
    """
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})
