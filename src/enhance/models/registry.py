"""The registry of shipped models: one entry per model and kind, in the spirit of torchvision's ``WeightsEnum``.

Every fact about a shipped model is stated here once: its name, its family (which network class), its
architecture, whether it averages over the 8 rotations and flips, whether it is told the image's noise
level, its weights file and model card, and a one-line summary. The package data's manifest,
``models.json``, adds what shipping measured: each file's sha256 and parameter count. `registry_entry` joins
the two into a `ModelEntry`, which builds (`ModelEntry.build`) or loads (`ModelEntry.load`) the network.

`~enhance.models.pretrained.ship` writes the manifest from these entries; the CLI's ``--model`` choices and
help, and the documentation's model table (`model_table`), are generated from them. A new model is one more
`ModelSpec` in `MODELS`; a new family of networks one more `Family` in `FAMILIES` (with the function that
builds it) and its runner.

No PyTorch is imported here (only inside `ModelEntry.build` and `ModelEntry.load`): the onnxruntime path and
``enhance --help`` read the registry without it.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import safe_open

from ..checks import check_choice
from ..constants import HMI_NOISE_NETWORK, KINDS
from ..data import data_dir
from ..exceptions import ModelNotTrainedError
from .architecture import FAMILY_OF_ARCHITECTURE, PAPER, WIENER_ENHANCE, check_weights_metadata

__all__ = [
    "NOISE_MODELS",
    "Family",
    "ModelSpec",
    "ModelEntry",
    "FAMILIES",
    "MODELS",
    "MANIFEST",
    "package_data_dir",
    "file_sha256",
    "shipped",
    "registry_entry",
    "shipped_path",
    "model_card",
    "model_help",
    "model_table",
]

#: The manifest of the shipped weights in the package data: ``{"<kind>/<model>": row}``, each row
#: `ModelEntry.manifest_row` as `~enhance.models.pretrained.ship` wrote it. A model appears there only once its
#: weights meet the floors of the training issue; until then asking for it raises
#: `~enhance.exceptions.ModelNotTrainedError`.
MANIFEST = "models.json"


def _build_wiener_enhance(kind: str, architecture: dict, *, symmetric: bool, **file_options):
    from .hybrid import WienerEnhanceNet

    return WienerEnhanceNet(**architecture, noise_unit=HMI_NOISE_NETWORK[kind], symmetric=symmetric, **file_options)


def _build_enhance(kind: str, architecture: dict, *, symmetric: bool, **file_options):
    from .network import EnhanceNet

    return EnhanceNet(**architecture)


@dataclass(frozen=True)
class Family:
    """A family of networks: one class, built one way, run by one runner.

    Parameters
    ----------
    name : str
        The family's name, the network class's ``family``
        (``enhance.models.architecture.FAMILY_OF_ARCHITECTURE`` maps a weights file's metadata to it).
    network : str
        The class, ``module.Class`` under `enhance.models`.
    needs_noise : bool
        Whether its networks are told the image's noise level.
    description : str
        One line for the documentation.
    build : callable
        ``build(kind, architecture, *, symmetric, **file_options)``: an untrained network.
    file_options : tuple of str
        Constructor options its weights files record for themselves (read from their metadata on loading).

    Examples
    --------
    >>> FAMILIES["wiener-enhance"].needs_noise, FAMILIES["paper"].network
    (True, 'network.EnhanceNet')
    """

    name: str
    network: str
    needs_noise: bool
    description: str
    build: Callable = field(repr=False)
    file_options: tuple = ()


#: The families of networks, by name.
FAMILIES = {
    WIENER_ENHANCE: Family(
        WIENER_ENHANCE, "hybrid.WienerEnhanceNet", needs_noise=True,
        description="a Wiener filter with the exact observation model and a residual CNN, told the noise level",
        build=_build_wiener_enhance, file_options=("noise_nodes", "exact_constants", "odd"),
    ),
    PAPER: Family(
        PAPER, "network.EnhanceNet", needs_noise=False,
        description="the residual CNN of Díaz Baso & Asensio Ramos (2018)", build=_build_enhance,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """A shipped model, before a kind is chosen: what is the same for continuum images and magnetograms.

    Parameters
    ----------
    name : str
        The name users give (``model=``, ``--model``).
    family : str
        A key of `FAMILIES`.
    architecture : dict
        The network's constructor arguments that define its size: ``depth``, ``width`` (and ``taps``).
    symmetric : bool
        Whether the output is averaged over the 8 rotations and flips of the input.
    weights : str
        The stem of its weights file, ``enhance_<kind>_<weights>.safetensors``; models that differ only in
        how they run share one.
    summary : str
        One line for ``--help`` and the documentation.

    Examples
    --------
    >>> MODELS["paper"].architecture, MODELS["full"].file("blos")
    ({'depth': 5, 'width': 64}, 'enhance_blos_wiener.safetensors')
    """

    name: str
    family: str
    architecture: dict
    symmetric: bool
    weights: str
    summary: str

    def file(self, kind: str) -> str:
        """The name of its weights file for ``kind`` in the package data.

        Parameters
        ----------
        kind : {'intensity', 'blos'}
            Continuum or line-of-sight magnetogram model.

        Returns
        -------
        str
            ``enhance_<kind>_<weights>.safetensors``.

        Examples
        --------
        >>> MODELS["light"].file("intensity")
        'enhance_intensity_wiener.safetensors'
        """
        return f"enhance_{kind}_{self.weights}.safetensors"

    def card(self, kind: str) -> str:
        """The name of its JSON model card for ``kind`` in the package data.

        Parameters
        ----------
        kind : {'intensity', 'blos'}
            Continuum or line-of-sight magnetogram model.

        Returns
        -------
        str
            ``enhance_<kind>_<name>.json``.

        Examples
        --------
        >>> MODELS["light"].card("intensity")
        'enhance_intensity_light.json'
        """
        return f"enhance_{kind}_{self.name}.json"

    def build(self, kind: str, **file_options):
        """An untrained network of this model for ``kind`` (imports PyTorch).

        Parameters
        ----------
        kind : {'intensity', 'blos'}
            Continuum or line-of-sight magnetogram network.
        **file_options
            The family's ``file_options`` (`Family`), as a weights file records them.

        Returns
        -------
        `~enhance.models.hybrid.WienerEnhanceNet` or `~enhance.models.network.EnhanceNet`
            The network, in training mode, on the CPU.

        Examples
        --------
        >>> net = MODELS["full"].build("blos")
        >>> net.symmetric, net.noise_unit
        (True, 0.01)
        """
        check_choice(kind, KINDS, name="kind")
        family = FAMILIES[self.family]
        return family.build(kind, dict(self.architecture), symmetric=self.symmetric, **file_options)

    def entry(self, kind: str, *, sha256: str, num_params: int) -> "ModelEntry":
        """The registry entry of this model for ``kind``, with what shipping measured of its file.

        Parameters
        ----------
        kind : {'intensity', 'blos'}
            Continuum or line-of-sight magnetogram model.
        sha256 : str
            The weights file's SHA-256.
        num_params : int
            The network's trainable parameters.

        Returns
        -------
        ModelEntry
            The entry.

        Examples
        --------
        >>> MODELS["paper"].entry("blos", sha256="0" * 64, num_params=445249).file
        'enhance_blos_paper.safetensors'
        """
        family = FAMILIES[self.family]
        return ModelEntry(name=self.name, family=self.family, kind=kind, architecture=dict(self.architecture),
                          symmetric=self.symmetric, needs_noise=family.needs_noise, file=self.file(kind),
                          card=self.card(kind), sha256=sha256, num_params=int(num_params),
                          summary=self.summary)  # fmt: skip


_WIENER_SIZE = {"depth": 3, "width": 32, "taps": 21}

#: The shipped models, by name, in the order the CLI and the documentation list them.
MODELS = {
    spec.name: spec
    for spec in (
        ModelSpec("full", WIENER_ENHANCE, _WIENER_SIZE, symmetric=True, weights="wiener",
                  summary="the default: Wiener-Enhance averaged over the 8 rotations and flips"),
        ModelSpec("light", WIENER_ENHANCE, _WIENER_SIZE, symmetric=False, weights="wiener",
                  summary="one pass of Wiener-Enhance, 8 times faster"),
        ModelSpec("paper", PAPER, {"depth": 5, "width": 64}, symmetric=False, weights="paper",
                  summary="the 2018 paper's network"),
        ModelSpec("paper-light", PAPER, {"depth": 1, "width": 32}, symmetric=False, weights="paper-light",
                  summary="the 2018 paper's light network"),
    )
}  # fmt: skip

#: The models told the noise level: those with a per-pixel uncertainty and a noise map.
NOISE_MODELS = tuple(name for name, spec in MODELS.items() if FAMILIES[spec.family].needs_noise)


@dataclass(frozen=True)
class ModelEntry:
    """One shipped model of one kind: the registry's facts and its file's checksum.

    Parameters
    ----------
    name : str
        The model (a key of `MODELS`).
    family : str
        Its family (a key of `FAMILIES`).
    kind : {'intensity', 'blos'}
        What it enhances.
    architecture : dict
        ``depth``, ``width`` (and ``taps``).
    symmetric : bool
        Whether the output is averaged over the 8 rotations and flips of the input.
    needs_noise : bool
        Whether the network is told the image's noise level.
    file : str
        Its safetensors weights file in the package data.
    card : str
        Its JSON model card in the package data.
    sha256 : str
        The weights file's SHA-256, checked before every load.
    num_params : int
        Trainable parameters, checked on every load.
    summary : str
        One line for ``--help`` and the documentation.

    Examples
    --------
    >>> entry = registry_entry("blos", "paper-light")
    >>> entry.family, entry.architecture, entry.num_params
    ('paper', {'depth': 1, 'width': 32}, 37537)
    """

    name: str
    family: str
    kind: str
    architecture: dict
    symmetric: bool
    needs_noise: bool
    file: str
    card: str
    sha256: str
    num_params: int
    summary: str

    @property
    def path(self) -> Path:
        """The weights file in the package data (`pathlib.Path`).

        Examples
        --------
        >>> registry_entry("blos", "light").path.name
        'enhance_blos_wiener.safetensors'
        """
        return package_data_dir() / self.file

    def model_card(self) -> dict:
        """The JSON model card: training data, recipe, history, validation metrics, known deviations.

        Returns
        -------
        dict
            The card, as `~enhance.models.pretrained.ship` wrote it.

        Examples
        --------
        >>> registry_entry("blos", "light").model_card()["symmetric"]
        False
        """
        return json.loads((package_data_dir() / self.card).read_text())

    def metrics(self) -> dict:
        """The headline metrics of the card: dB above RL+target and above Wiener at HMI's noise, per field.

        Returns
        -------
        dict
            ``{"psnr_minus_rl_target_best_db": {field: dB}, "psnr_minus_wiener_db": {field: dB}}`` at 1 x HMI's
            noise, for the fields at the simulation's own contrast; empty where the card has no physics
            validation.

        Examples
        --------
        >>> registry_entry("blos", "full").metrics()["psnr_minus_wiener_db"]["synthetic plage"]
        2.82
        """
        found = self.model_card().get("physics_validation", {}).get("model", {})
        return {
            name: {where: values["1 x noise"] for where, values in found[name].items() if ", I^" not in where}
            for name in ("psnr_minus_rl_target_best_db", "psnr_minus_wiener_db")
            if name in found
        }

    def build(self):
        """The untrained network of this model (imports PyTorch); see `ModelSpec.build`.

        Returns
        -------
        `~enhance.models.hybrid.WienerEnhanceNet` or `~enhance.models.network.EnhanceNet`
            The network, in training mode, on the CPU.

        Examples
        --------
        >>> type(registry_entry("blos", "paper").build()).__name__
        'EnhanceNet'
        """
        return MODELS[self.name].build(self.kind)

    def load(self):
        """The trained network: its file's sha256, metadata and parameter count checked against the registry.

        Returns
        -------
        `~enhance.models.hybrid.WienerEnhanceNet` or `~enhance.models.network.EnhanceNet`
            The network, in eval mode, on the CPU.

        Raises
        ------
        ValueError
            If the file's checksum, architecture or parameter count differ from the registry's.

        Examples
        --------
        >>> net = registry_entry("intensity", "light").load()
        >>> net.symmetric, net.training
        (False, False)
        """
        path = self.path
        digest = file_sha256(path)
        if digest != self.sha256:
            msg = f"shipped weights {path} are corrupt: sha256 {digest}, expected {self.sha256}"
            raise ValueError(msg)
        found = _file_architecture(path)
        expected = {"kind": self.kind, **self.architecture}
        found = {**found, "family": FAMILY_OF_ARCHITECTURE[found["architecture"]]}
        if {key: found.get(key) for key in (*expected, "family")} != {**expected, "family": self.family}:
            msg = f"shipped weights {path} hold {found}, but the registry's {self.kind}/{self.name} is {expected}"
            raise ValueError(msg)
        net = MODELS[self.name].build(self.kind, **{key: found[key] for key in FAMILIES[self.family].file_options})
        if FAMILIES[self.family].needs_noise and net.noise_unit != found["noise_unit"]:
            msg = f"shipped weights {path} have noise_unit {found['noise_unit']}, expected {net.noise_unit}"
            raise ValueError(msg)
        from safetensors.torch import load_file  # PyTorch only to load the tensors

        net.load_state_dict(load_file(str(path)), strict=True)
        n_params = sum(p.numel() for p in net.parameters())
        if n_params != self.num_params:
            msg = f"shipped weights {path} hold {n_params} parameters, expected {self.num_params}"
            raise ValueError(msg)
        return net.eval()

    def manifest_row(self) -> dict:
        """The entry as the manifest (`MANIFEST`) records it: every field but the name, kind and summary.

        Returns
        -------
        dict
            ``family``, ``architecture``, ``symmetric``, ``needs_noise``, ``file``, ``card``, ``sha256``,
            ``num_params``.

        Examples
        --------
        >>> registry_entry("blos", "full").manifest_row()["file"]
        'enhance_blos_wiener.safetensors'
        """
        return {"family": self.family, "architecture": dict(self.architecture), "symmetric": self.symmetric,
                "needs_noise": self.needs_noise, "file": self.file, "card": self.card, "sha256": self.sha256,
                "num_params": self.num_params}  # fmt: skip


def _file_architecture(path: Path) -> dict:
    """The architecture a safetensors weights file declares, checked against its tensors' shapes."""
    with safe_open(str(path), framework="numpy") as handle:
        meta = dict(handle.metadata() or {})
        shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    return check_weights_metadata(path, meta, shapes)


def package_data_dir() -> Path:
    """The package's data folder (weights, model cards, manifest, sample cut-outs): `enhance.data.data_dir`.

    The registry looks the folder up through this name, so that tests can point it elsewhere.

    Returns
    -------
    pathlib.Path
        The folder inside the installed package.

    Examples
    --------
    >>> (package_data_dir() / MANIFEST).is_file()
    True
    """
    return data_dir()


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
    >>> file_sha256(shipped_path("blos", "paper-light")) == registry_entry("blos", "paper-light").sha256
    True
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shipped() -> dict[tuple[str, str], ModelEntry]:
    """The shipped models: the registry's entries that the package data's manifest lists.

    Returns
    -------
    dict
        ``(kind, model) -> ModelEntry``.

    Examples
    --------
    >>> sorted(model for kind, model in shipped() if kind == "blos")
    ['full', 'light', 'paper', 'paper-light']
    """
    path = package_data_dir() / MANIFEST
    if not path.is_file():
        return {}
    entries = {}
    for key, row in json.loads(path.read_text()).items():
        kind, model = key.split("/")
        if kind in KINDS and model in MODELS:  # a row of a model this version does not know is not shipped
            entries[(kind, model)] = MODELS[model].entry(kind, sha256=row["sha256"], num_params=row["num_params"])
    return entries


def registry_entry(kind: str, model: str) -> ModelEntry:
    """The registry entry of a shipped model, or an error that names the shipped alternative.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram model.
    model : {'full', 'light', 'paper', 'paper-light'}
        Which model (`MODELS`).

    Returns
    -------
    ModelEntry
        Its facts, file and checksum.

    Raises
    ------
    ValueError
        If ``kind`` or ``model`` is not one the registry knows.
    `~enhance.exceptions.ModelNotTrainedError`
        If the package ships no weights for this model.

    Examples
    --------
    >>> registry_entry("blos", "paper-light").num_params
    37537
    """
    check_choice(kind, KINDS, name="kind")
    check_choice(model, tuple(MODELS), name="model")
    models = shipped()
    if (kind, model) not in models:
        others = [name for k, name in sorted(models) if k == kind]
        hint = f"use model={others[0]!r} (--model {others[0]}), or pass" if others else "Pass"
        msg = (
            f"the shipped {model!r} {kind!r} model is not trained yet: this version of solar-enhance ships no "
            f"weights for it. {hint} network= (an EnhanceNet) or --weights FILE (a safetensors file from "
            "`enhance train`) instead."
        )
        raise ModelNotTrainedError(msg)
    return models[(kind, model)]


def shipped_path(kind: str, model: str) -> Path:
    """Path of a shipped weights file inside the package.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram model.
    model : {'full', 'light', 'paper', 'paper-light'}
        Which model.

    Returns
    -------
    pathlib.Path
        The safetensors file.

    Examples
    --------
    >>> shipped_path("intensity", "light").name, shipped_path("intensity", "paper-light").name
    ('enhance_intensity_wiener.safetensors', 'enhance_intensity_paper-light.safetensors')
    """
    return registry_entry(kind, model).path


def model_card(kind: str, model: str) -> dict:
    """The JSON model card of a shipped model (training data, recipe, metrics).

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram model.
    model : {'full', 'light', 'paper', 'paper-light'}
        Which model.

    Returns
    -------
    dict
        The card: training data, observation model, recipe, history, validation metrics, behaviour on
        the real HMI sample, known deviations, package version.

    Examples
    --------
    >>> model_card("intensity", "full")["kind"]
    'intensity'
    """
    return registry_entry(kind, model).model_card()


def model_help() -> str:
    """The help of the CLI's ``--model`` option: every model with its summary.

    Returns
    -------
    str
        One line.

    Examples
    --------
    >>> model_help().startswith("shipped model: full (the default: Wiener-Enhance averaged")
    True
    """
    return "shipped model: " + ", ".join(f"{spec.name} ({spec.summary})" for spec in MODELS.values())


def _architecture_text(architecture: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in architecture.items())


def _worst(entry: ModelEntry | None, name: str) -> str:
    values = entry.metrics().get(name, {}) if entry is not None else {}
    return f"{min(values.values()):+.2f}" if values else "-"


def model_table() -> str:
    """The documentation's table of the shipped models (reStructuredText), from the registry and the cards.

    ``docs/guide/models_table.inc`` holds it; ``tests/test_registry.py`` checks that it matches.

    Returns
    -------
    str
        A simple table: model, family, architecture, parameters, symmetric, noise level, and the worst field's
        dB above RL+target at HMI's noise for continuum images and magnetograms (from the model cards).

    Examples
    --------
    >>> [line for line in model_table().splitlines() if line.startswith("``paper-light``")][0].split()[:3]
    ['``paper-light``', 'paper', 'depth']
    """
    entries = shipped()
    header = ("model", "family", "architecture", "parameters", "averaged over 8", "told the noise",
              "vs RL+target, continuum (dB)", "vs RL+target, magnetogram (dB)")  # fmt: skip
    rows = []
    for name, spec in MODELS.items():
        first = entries.get(("intensity", name)) or entries.get(("blos", name))
        rows.append((f"``{name}``", spec.family, _architecture_text(spec.architecture),
                     f"{first.num_params:,}" if first else "-", "yes" if spec.symmetric else "no",
                     "yes" if FAMILIES[spec.family].needs_noise else "no",
                     _worst(entries.get(("intensity", name)), "psnr_minus_rl_target_best_db"),
                     _worst(entries.get(("blos", name)), "psnr_minus_rl_target_best_db")))  # fmt: skip
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    rule = "  ".join("=" * width for width in widths)
    lines = [rule, "  ".join(text.ljust(width) for text, width in zip(header, widths, strict=True)).rstrip(), rule]
    lines += ["  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join([*lines, rule]) + "\n"
