"""Train a Wiener-Enhance network (the default models) from a TOML configuration.

``enhance train --config FILE.toml`` with ``family = "wiener-enhance"`` runs `train_hybrid`. It reads top
to bottom: the configuration, the noise-free training pairs (cached in the run folder), the linear
stage in closed form from the nominal-PSF pairs (`enhance.training.linear_stage`), then the CNN with the
linear stage fixed, each sample with Gaussian noise of a level drawn log-uniformly over the filter
bank's range and told to the network, the loss on the pixels whose receptive field lies inside the
patch. Batch ``k`` is a pure function of ``(seed, k)``, so a run stopped anywhere resumes exactly from
``checkpoint.pt``. The result, ``final.safetensors``, is a weights file that the registry and
``enhance run --weights`` load.

A configuration (every key but ``kind`` has a default; see `HybridConfig`)::

    family = "wiener-enhance"
    kind = "intensity"
    out_dir = "runs/intensity"

    [model]
    depth = 3
    width = 32
    taps = 21
    exact_constants = true     # a constant image comes back constant
    odd = false                # f(-x) = -f(x); the default for 'blos'

    [data]
    pairs = 3072
    contrast_power = [0.6, 1.6]    # continuum I -> I**p per frame (the Wien law over wavelengths)
    blur_arcsec = [0.0, 0.1]       # FWHM of a Gaussian blur per frame (the scenes' own resolution)
    [[data.sources]]
    type = "synthetic"             # enhance.scenes.synth scenes
    scene = "mixed"
    frames = 24
    [[data.sources]]
    type = "file"                  # a simulation or observation (FITS, .npy, HDF5)
    name = "muram"                 # its path: --source muram=PATH (or path = "...")
    pixel_scale_arcsec = 0.0662
    rows = "train"                 # the first 75 % of its rows (the rest is held out)
    weight = 4
    optional = true                # skipped, with a message, when no path is given

    [train]
    steps = 6000
    lr = 1e-3
    flicker_weight = 0.0           # > 0: also penalise f(S x) - S f(x), S a half-pixel shift (`flicker_loss`)
    teacher = "full"               # with teacher_weight > 0: also stay near this network's output
    teacher_weight = 0.0
"""

import dataclasses
import hashlib
import json
import math
import time
import tomllib
from pathlib import Path

import astropy.units as u
import numpy as np
import torch
from tqdm import tqdm

from ..checks import check_choice, check_integer
from ..constants import HMI_NOISE_NETWORK, KINDS
from ..models.hybrid import NOISE_NODES, WienerEnhanceNet
from ..models.pretrained import load_network
from ..models.registry import NOISE_MODELS, shipped_path
from ..models.weights import save_weights
from ..observation.psf import WACHTER_2012, WIDE_RADIUS
from ..scenes.sources import SyntheticSource, VariedSource, from_array, open_source
from .datasets import PairDataset, split_rows
from .linear_stage import mmse_filters, patch_statistics

__all__ = ["PSF_VARIANTS", "HybridConfig", "ConfigError", "config_family", "load_hybrid_config", "training_sources",
           "training_pairs", "train_hybrid", "flicker_loss", "half_pixel_shift", "HALF_PIXEL_TAPS"]  # fmt: skip

#: The PSF variants a configuration mixes: keyword arguments of `~enhance.training.datasets.PairDataset`.
#: 'nominal' is the configuration's own PSF (``data.hmi_params``, ``data.radius_arcsec``; the Enhance values
#: by default), 'wachter_2012' the original parameters of Wachter et al. (2012), 'wide' the nominal PSF
#: with its far wing sampled out to 16 arcsec.
PSF_VARIANTS = {"nominal": {}, "wachter_2012": {"hmi_params": WACHTER_2012}, "wide": {"radius": WIDE_RADIUS}}


class ConfigError(ValueError):
    """A training configuration that cannot be run: a wrong key, value or missing source.

    Examples
    --------
    >>> HybridConfig(kind="intensity", model={"depht": 3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    enhance.training.hybrid_loop.ConfigError: [model] has unknown keys ['depht']; known: ['depth', ...]
    """


@dataclasses.dataclass(frozen=True)
class HybridConfig:
    """What `train_hybrid` does: the network, its training pairs and the optimisation.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum (I/Ic) or line-of-sight field (trained in kG).
    out_dir : str
        Run folder: pairs cache, linear stage, ``checkpoint.pt``, ``history.json``, ``final.safetensors``.
    model : dict
        ``depth`` (3), ``width`` (32), ``taps`` (21), ``exact_constants`` (True), ``odd`` (True for
        'blos'), ``init`` (a weights file, or a shipped model's name, to start the CNN from; None starts
        from the linear stage), ``init_filters`` (False; True keeps ``init``'s linear stage instead of fitting
        one to these pairs: a fine-tune that changes the CNN only).
    data : dict
        ``pairs`` (3072), ``patch`` (50 input pixels), ``seed`` (11), ``psf`` (fractions of the pairs
        per `PSF_VARIANTS`: nominal 0.75, wachter_2012 0.125, wide 0.125), ``hmi_params`` (the nominal
        PSF's ``w``, ``W``, ``epsilon``, ``k``: `~enhance.observation.psf.hmi_psf`; None: the Enhance
        values), ``radius_arcsec`` (its kernels' half-width; None: 4.37), ``contrast_power`` ([1, 1]),
        ``vary_fraction`` (share of the frames seen at another contrast and resolution; 1),
        ``blur_arcsec`` ([0, 0]), ``sources`` (a list of tables, see the module's docstring).
    train : dict
        ``steps`` (6000), ``batch`` (16), ``lr`` (1e-3, cosine to ``lr_min`` 1e-5), ``seed`` (11),
        ``threads`` (1), ``eval_every`` (250 steps: validation and checkpoint), ``flicker_weight`` (0: the
        weight of `flicker_loss` beside the mean square error; each step then runs the batch twice),
        ``teacher`` (None; a weights file or a shipped model's name) and ``teacher_weight`` (0: the weight of
        the mean square difference from the teacher's output on the same noisy batch, which keeps a
        fine-tune near the validated behaviour of the network it replaces).

    Examples
    --------
    Missing keys take their defaults:

    >>> cfg = HybridConfig(kind="blos", model={"depth": 1, "width": 8})
    >>> cfg.model["depth"], cfg.model["taps"], cfg.model["odd"], cfg.train["steps"]
    (1, 21, True, 6000)
    """

    kind: str
    out_dir: str = "runs/hybrid"
    model: dict = dataclasses.field(default_factory=dict)
    data: dict = dataclasses.field(default_factory=dict)
    train: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check_choice(self.kind, KINDS, name="kind")
        for section, defaults in (("model", _MODEL), ("data", _DATA), ("train", _TRAIN)):
            given = getattr(self, section)
            unknown = sorted(set(given) - set(defaults))
            if unknown:
                msg = f"[{section}] has unknown keys {unknown}; known: {sorted(defaults)}"
                raise ConfigError(msg)
            merged = {**defaults, **given}
            if section == "model" and merged["odd"] is None:
                merged["odd"] = self.kind == "blos"
            object.__setattr__(self, section, merged)
        for name in ("depth", "width", "taps"):
            check_integer(self.model[name], name=f"model.{name}")
        if self.model["init_filters"] and not self.model["init"]:
            msg = "model.init_filters needs model.init: the network whose linear stage to keep"
            raise ConfigError(msg)
        for name in ("pairs", "patch", "seed"):
            check_integer(self.data[name], name=f"data.{name}", minimum=1 if name != "seed" else 0)
        for name in ("steps", "batch", "threads", "eval_every", "seed"):
            check_integer(self.train[name], name=f"train.{name}", minimum=1 if name != "seed" else 0)
        for name in ("flicker_weight", "teacher_weight"):
            if isinstance(self.train[name], bool) or not isinstance(self.train[name], int | float) or not (
                    self.train[name] >= 0):  # fmt: skip
                msg = f"train.{name} must be 0 or more, got {self.train[name]}"
                raise ConfigError(msg)
        if self.train["teacher_weight"] > 0 and not self.train["teacher"]:
            msg = "train.teacher_weight needs train.teacher: a weights file or a shipped model's name"
            raise ConfigError(msg)
        psf = self.data["psf"]
        if set(psf) - set(PSF_VARIANTS) or not math.isclose(sum(psf.values()), 1.0) or min(psf.values()) < 0:
            msg = f"data.psf must give fractions of {sorted(PSF_VARIANTS)} summing to 1, got {psf}"
            raise ConfigError(msg)
        if not self.data["sources"]:
            msg = "data.sources is empty: give at least one [[data.sources]] table"
            raise ConfigError(msg)
        self.data["sources"] = [_checked_source(spec) for spec in self.data["sources"]]

    @property
    def noise_unit(self) -> float:
        """HMI's noise in the network's units (I/Ic, kG).

        Examples
        --------
        >>> HybridConfig(kind="blos").noise_unit
        0.01
        """
        return HMI_NOISE_NETWORK[self.kind]


_MODEL = {
    "depth": 3,
    "width": 32,
    "taps": 21,
    "exact_constants": True,
    "odd": None,
    "init": None,
    "init_filters": False,
}
_DATA = {
    "pairs": 3072,
    "patch": 50,
    "seed": 11,
    "psf": {"nominal": 0.75, "wachter_2012": 0.125, "wide": 0.125},
    "hmi_params": None,
    "radius_arcsec": None,
    "contrast_power": [1.0, 1.0],
    "blur_arcsec": [0.0, 0.0],
    "vary_fraction": 1.0,
    "sources": [{"type": "synthetic", "scene": "mixed", "frames": 24}],
}
_TRAIN = {"steps": 6000, "batch": 16, "lr": 1e-3, "lr_min": 1e-5, "seed": 11, "threads": 1, "eval_every": 250,
          "flicker_weight": 0.0, "teacher": None, "teacher_weight": 0.0}  # fmt: skip
_SOURCE = {
    "type": None,
    "name": None,
    "path": None,
    "scene": "mixed",
    "frames": 24,
    "shape": [600, 600],
    "seed": 11,
    "pixel_scale_arcsec": None,
    "dataset": None,
    "normalise": "auto",
    "unit": None,
    "periodic": False,
    "rows": "all",
    "weight": 1,
    "optional": False,
}


def config_family(path) -> str:
    """The model family a training configuration trains: its ``family`` key, 'paper' by default.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A TOML configuration: 'wiener-enhance' ones are run by `train_hybrid`, the others by
        `~enhance.training.loop.train`.

    Returns
    -------
    str
        The family; 'paper' also for a file that cannot be read or parsed (whose loader then says why).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = Path(folder, "run.toml").write_text('family = "wiener-enhance"\\n')
    ...     config_family(Path(folder, "run.toml")), config_family(Path(folder, "missing.toml"))
    ('wiener-enhance', 'paper')
    """
    try:
        return str(tomllib.loads(Path(path).read_text()).get("family", "paper"))
    except (OSError, tomllib.TOMLDecodeError):
        return "paper"


def load_hybrid_config(path, *, sources: dict | None = None, **overrides) -> HybridConfig:
    """Read a TOML configuration of `train_hybrid`.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The TOML file.
    sources : dict, optional
        ``{name: path}`` of the ``type = "file"`` sources whose path is given on the command line.
    **overrides
        Top-level keys to replace (e.g. ``out_dir``).

    Returns
    -------
    HybridConfig
        The configuration, with its sources' paths filled in.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = Path(folder, "run.toml").write_text('family = "wiener-enhance"\\nkind = "blos"\\n')
    ...     cfg = load_hybrid_config(Path(folder, "run.toml"), out_dir="runs/x")
    >>> cfg.model["odd"], cfg.out_dir
    (True, 'runs/x')
    """
    try:
        values = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        msg = f"cannot read the configuration {path}: {err}"
        raise ConfigError(msg) from None
    family = values.pop("family", "wiener-enhance")
    if family != "wiener-enhance":
        msg = f"{path}: family {family!r} is not trained by this loop (expected 'wiener-enhance')"
        raise ConfigError(msg)
    values.update(overrides)
    data = dict(values.get("data", {}))
    given = dict(sources or {})
    data["sources"] = [dict(spec) for spec in data.get("sources", _DATA["sources"])]
    for spec in data["sources"]:
        if spec.get("type") == "file" and spec.get("name") in given:
            spec["path"] = str(given.pop(spec["name"]))
    unused = sorted(given)
    if unused:
        msg = f"--source names {unused} match no [[data.sources]] of {path}"
        raise ConfigError(msg)
    values["data"] = data
    try:
        return HybridConfig(**values)
    except (TypeError, ValueError) as err:
        msg = f"{path}: {err}"
        raise ConfigError(msg) from None


def _checked_source(spec):
    unknown = sorted(set(spec) - set(_SOURCE))
    if unknown:
        msg = f"a [[data.sources]] table has unknown keys {unknown}; known: {sorted(_SOURCE)}"
        raise ConfigError(msg)
    spec = {**_SOURCE, **spec}
    if spec["type"] not in ("synthetic", "file"):
        msg = f"source type must be 'synthetic' or 'file', got {spec['type']!r}"
        raise ConfigError(msg)
    return spec


def training_sources(cfg: HybridConfig, *, log=print) -> list:
    """The sources of a configuration, each repeated ``weight`` times and varied in contrast and blur.

    Parameters
    ----------
    cfg : HybridConfig
        The configuration.
    log : callable
        Where messages about skipped optional sources go.

    Returns
    -------
    list of `~enhance.scenes.sources.Source`
        Each source varied in contrast and blur (the same object ``weight`` times); optional sources without
        a file are left out.

    Examples
    --------
    >>> cfg = HybridConfig(kind="blos", data={"sources": [{"type": "synthetic", "frames": 2, "shape": [64, 64]}]})
    >>> [len(s) for s in training_sources(cfg)]
    [2]
    """
    out = []
    power, blur = cfg.data["contrast_power"], cfg.data["blur_arcsec"] * u.arcsec
    for index, spec in enumerate(cfg.data["sources"]):
        if spec["type"] == "synthetic":
            source = SyntheticSource(tuple(spec["shape"]), kind=cfg.kind, scene=spec["scene"],
                                     n_frames=spec["frames"], seed=spec["seed"])  # fmt: skip
        elif spec["path"] is None or not Path(spec["path"]).exists():
            if spec["optional"]:
                log(f"source {spec['name'] or index} skipped: no file given (--source {spec['name']}=PATH)")
                continue
            msg = f"source {spec['name'] or index} needs a file: --source {spec['name']}=PATH (got {spec['path']!r})"
            raise ConfigError(msg)
        else:
            source = _file_source(spec, cfg.kind)
        varied = VariedSource(source, power=power, blur=blur, seed=cfg.data["seed"] + index,
                              fraction=cfg.data["vary_fraction"])  # fmt: skip
        out += [varied] * int(spec["weight"])
    if not out:
        msg = "no training source is left: give the files of the configuration's sources"
        raise ConfigError(msg)
    return out


def _file_source(spec, kind):
    scale = spec["pixel_scale_arcsec"]
    source = open_source(spec["path"], kind=kind, pixel_scale=None if scale is None else scale * u.arcsec,
                         dataset=spec["dataset"], normalise=spec["normalise"], unit=spec["unit"],
                         periodic=spec["periodic"])  # fmt: skip
    if spec["rows"] == "all":
        return source
    if spec["rows"] != "train":
        msg = f"source {spec['name']}: rows must be 'all' or 'train' (the first 75 %), got {spec['rows']!r}"
        raise ConfigError(msg)
    frames = np.stack([split_rows(frame)[0] for frame in source])
    return from_array(frames, source.pixel_scale, kind=kind, normalise="none", unit=None,
                      name=f"{Path(spec['path']).name} (training rows)")  # fmt: skip


def training_pairs(cfg: HybridConfig, *, log=print) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The noise-free training pairs of a configuration, cached in its run folder.

    Parameters
    ----------
    cfg : HybridConfig
        The configuration.
    log : callable
        Progress messages.

    Returns
    -------
    inputs, targets : `torch.Tensor`
        ``(n, 1, patch, patch)`` and ``(n, 1, 2 patch, 2 patch)``, network units (I/Ic, kG).
    nominal : `torch.Tensor`
        ``(n,)`` bool: pairs degraded with the nominal PSF (the linear stage's statistics).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cfg = HybridConfig(kind="blos", out_dir=folder, data={"pairs": 8, "patch": 12,
    ...                        "sources": [{"type": "synthetic", "frames": 1, "shape": [200, 200]}]})
    ...     x, y, nominal = training_pairs(cfg, log=lambda m: None)
    >>> tuple(x.shape), tuple(y.shape), int(nominal.sum())
    ((8, 1, 12, 12), (8, 1, 24, 24), 6)
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / f"pairs_{_data_digest(cfg)}.pt"
    if cache.exists():
        saved = torch.load(cache, weights_only=True)
        return saved["x"], saved["y"], saved["nominal"]
    start = time.perf_counter()
    sources = training_sources(cfg, log=log)
    n, xs, ys, flags = cfg.data["pairs"], [], [], []
    counts = {name: int(round(n * fraction)) for name, fraction in cfg.data["psf"].items()}
    counts[max(counts, key=counts.get)] += n - sum(counts.values())
    for index, (name, count) in enumerate(counts.items()):
        if count == 0:
            continue
        data = PairDataset(sources, n_samples=count, seed=cfg.data["seed"] + index, noise=0.0,
                           patch=cfg.data["patch"], patches_per_frame=32, **_psf_options(cfg, name))  # fmt: skip
        for i in range(count):
            x, y = data[i]
            xs.append(x)
            ys.append(y)
            flags.append(name == "nominal")
    x, y, nominal = torch.stack(xs), torch.stack(ys), torch.tensor(flags)
    torch.save({"x": x, "y": y, "nominal": nominal}, cache)
    log(f"{n} training pairs in {time.perf_counter() - start:.0f} s -> {cache}")
    return x, y, nominal


def _data_digest(cfg) -> str:
    """A name for the pairs of a configuration: the same kind and data give the same pairs."""
    return hashlib.sha256(json.dumps([cfg.kind, cfg.data], sort_keys=True).encode()).hexdigest()[:16]


def _psf_options(cfg, name):
    """PairDataset's PSF keywords of one variant: the configuration's PSF, changed as the variant says."""
    options = {}
    if cfg.data["hmi_params"] is not None:
        options["hmi_params"] = dict(cfg.data["hmi_params"])
    if cfg.data["radius_arcsec"] is not None:
        options["radius"] = float(cfg.data["radius_arcsec"]) * u.arcsec
    return {**options, **PSF_VARIANTS[name]}


def _named_network(kind, name):
    """The network of ``model.init`` or ``train.teacher``: a shipped model's name ('full', 'light') or a file."""
    return load_network(shipped_path(kind, name) if name in NOISE_MODELS else name, kind=kind)


def _build_network(cfg: HybridConfig, x, y, nominal, *, log) -> WienerEnhanceNet:
    m = cfg.model
    torch.manual_seed(cfg.train["seed"])  # the CNN's initial weights
    net = WienerEnhanceNet(m["depth"], m["width"], m["taps"], noise_unit=cfg.noise_unit,
                           exact_constants=m["exact_constants"], odd=m["odd"])  # fmt: skip
    if m["init"]:
        start = _named_network(cfg.kind, m["init"])
        if not isinstance(start, WienerEnhanceNet) or (start.depth, start.width) != (m["depth"], m["width"]):
            msg = f"model.init {m['init']} is not a Wiener-Enhance network of depth {m['depth']}, width {m['width']}"
            raise ConfigError(msg)
        cnn = {k: v for k, v in start.state_dict().items() if k.startswith(("conv_in", "blocks", "conv_out"))}
        net.load_state_dict(cnn, strict=False)
        if m["init_filters"]:
            if start.taps != m["taps"]:
                msg = f"model.init_filters: {m['init']} has {start.taps}-tap filters, the configuration {m['taps']}"
                raise ConfigError(msg)
            net.filters.copy_(start.filters)
            return net
    stage = Path(cfg.out_dir) / f"linear_stage_{_data_digest(cfg)}_{m['taps']}.npy"  # of these pairs
    if not stage.exists():
        begin = time.perf_counter()
        stats = patch_statistics(x[nominal][:, 0].numpy(), y[nominal][:, 0].numpy(), taps=m["taps"])
        np.save(stage, mmse_filters(stats, [f * cfg.noise_unit for f in NOISE_NODES]))
        log(f"linear stage in {time.perf_counter() - begin:.0f} s")
    net.filters.copy_(torch.from_numpy(np.load(stage)))
    return net


def _teacher(cfg) -> WienerEnhanceNet:
    """``train.teacher``: a Wiener-Enhance network that reads the same patches as the one trained (same margin),
    frozen."""
    name, m = cfg.train["teacher"], cfg.model
    margin = WienerEnhanceNet(m["depth"], 1, m["taps"]).margin
    teacher = _named_network(cfg.kind, name)
    if not isinstance(teacher, WienerEnhanceNet) or teacher.margin != margin:
        msg = f"train.teacher {name} is not a Wiener-Enhance network with the margin of this one ({margin})"
        raise ConfigError(msg)
    teacher.symmetric = False  # the batch is one pass, as the student's
    return teacher.eval().requires_grad_(False)


def _batch(cfg, net, x_all, y_all, step):
    """Batch ``step``: samples, one of the 8 rotations and flips, noise of a log-uniform level per sample."""
    rng = np.random.default_rng([cfg.train["seed"], step])
    batch = cfg.train["batch"]
    index = torch.from_numpy(rng.integers(0, len(x_all), batch))
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))
    x, y = x_all[index].rot90(turns, (2, 3)), y_all[index].rot90(turns, (2, 3))
    if flip:
        x, y = x.transpose(2, 3), y.transpose(2, 3)
    nodes = np.log(np.array(NOISE_NODES))
    sigma = torch.from_numpy(np.exp(rng.uniform(nodes[0], nodes[-1], batch)).astype(np.float32)) * net.noise_unit
    x = x + sigma[:, None, None, None] * torch.from_numpy(rng.standard_normal(tuple(x.shape)).astype(np.float32))
    m = net.margin
    return x.contiguous(), sigma, y[:, :, 2 * m : y.shape[2] - 2 * m, 2 * m : y.shape[3] - 2 * m]


#: Cubic convolution (Keys, a = -1/2) at half a pixel: the image between its samples, exact for quadratics.
HALF_PIXEL_TAPS = (-1 / 16, 9 / 16, 9 / 16, -1 / 16)


def half_pixel_shift(x: torch.Tensor, axis: int) -> torch.Tensor:
    """``x`` moved by half a pixel towards higher indices along ``axis`` (2 or 3), edges replicated.

    Parameters
    ----------
    x : `torch.Tensor`
        ``(batch, 1, ny, nx)``.
    axis : {2, 3}
        Rows or columns.

    Returns
    -------
    `torch.Tensor`
        The same shape: ``out[..., j] = x(j - 1/2)``, by `HALF_PIXEL_TAPS`.

    Examples
    --------
    >>> ramp = torch.arange(8.0).reshape(1, 1, 1, 8) ** 2
    >>> half_pixel_shift(ramp, 3)[0, 0, 0, 2:7].tolist()  # (j - 1/2)**2, exactly, away from the edges
    [2.25, 6.25, 12.25, 20.25, 30.25]
    """
    kernel = torch.tensor(HALF_PIXEL_TAPS, dtype=x.dtype, device=x.device)
    if axis == 2:
        padded = torch.nn.functional.pad(x, (0, 0, 2, 1), mode="replicate")
        return torch.nn.functional.conv2d(padded, kernel.reshape(1, 1, 4, 1))
    padded = torch.nn.functional.pad(x, (2, 1, 0, 0), mode="replicate")
    return torch.nn.functional.conv2d(padded, kernel.reshape(1, 1, 1, 4))


def flicker_loss(net, x: torch.Tensor, sigma: torch.Tensor, output: torch.Tensor, *, axis: int) -> torch.Tensor:
    """Mean square of ``f(S x) - S' f(x)``: the change of the output when the input moves by half a pixel.

    ``S`` moves the input by half a pixel (`half_pixel_shift`), ``S'`` the output by the one output pixel that
    is, in the direction of the physics validation's `~enhance.analysis.validate.flicker`; pixels that the
    replicated edges reach are left out. The validation moves its input with a cubic B-spline, this term
    with cubic convolution, which damps high frequencies more (0.10 against 0.02 of a cosine's amplitude
    at 1.5 radians per pixel) and lowers white noise's variance to 0.64 of its value: the term asks for a
    little more smoothing than the validation's flicker alone would. Minimising it with the mean square
    error trades some sharpness beyond the cut-off for outputs that move with the Sun rather than with
    the pixel grid.

    Parameters
    ----------
    net : `~enhance.models.hybrid.WienerEnhanceNet`
        The network being trained.
    x, sigma : `torch.Tensor`
        The batch's inputs ``(batch, 1, ny, nx)`` and noise levels, as ``net.core`` takes them.
    output : `torch.Tensor`
        ``net.core(x, sigma)``.
    axis : {2, 3}
        The axis of the shift.

    Returns
    -------
    `torch.Tensor`
        A scalar, the output's units squared.

    Examples
    --------
    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> net = WienerEnhanceNet(depth=1, width=4, taps=5)
    >>> x, sigma = torch.ones(2, 1, 24, 24), torch.full((2,), 1e-3)
    >>> float(flicker_loss(net, x, sigma, net.core(x, sigma), axis=3).detach())  # a flat image does not move
    0.0
    """
    moved = net.core(half_pixel_shift(x, axis), sigma)
    edge = 2 * 3  # output pixels that read the replicated edge beyond the receptive margin's crop
    inner = [slice(None)] * 4
    inner[axis] = slice(edge + 1, output.shape[axis] - edge)
    before = [slice(None)] * 4
    before[axis] = slice(edge, output.shape[axis] - edge - 1)
    return torch.mean((moved[tuple(inner)] - output[tuple(before)]) ** 2)


def _validation(cfg, net, x_all, y_all):
    """A fixed validation set: held-out pairs at 1 and 10 x HMI's noise (the last 1/16 of the pairs)."""
    count = max(8, len(x_all) // 16)
    rng = np.random.default_rng([cfg.train["seed"], 1_000_003])
    x, y = x_all[-count:], y_all[-count:]
    m, cases = net.margin, []
    for factor in (1.0, 10.0):
        sigma = torch.full((count,), factor * net.noise_unit)
        noisy = x + sigma[:, None, None, None] * torch.from_numpy(
            rng.standard_normal(tuple(x.shape)).astype(np.float32)
        )
        cases.append((factor, noisy, sigma, y[:, :, 2 * m : y.shape[2] - 2 * m, 2 * m : y.shape[3] - 2 * m]))
    return cases


def _gains(net, cases):
    """The validation error of the network relative to its linear stage alone, dB (positive: better)."""
    out = []
    with torch.no_grad():
        for factor, noisy, sigma, target in cases:
            cut = net.cnn_margin
            inner = noisy[:, :, cut : noisy.shape[2] - cut, cut : noisy.shape[3] - cut]
            linear = torch.nn.functional.pixel_shuffle(net.linear(inner, sigma), 2)
            full = net.core(noisy, sigma)
            gain = 10 * math.log10(float(((linear - target) ** 2).mean()) / float(((full - target) ** 2).mean()))
            out.append((factor, gain))
    return out


def train_hybrid(cfg: HybridConfig, *, resume: bool = True, progress: bool = True, log=print,
                 until: int | None = None) -> Path | None:  # fmt: skip
    """Train a Wiener-Enhance network as ``cfg`` says; resumes from the run folder's checkpoint.

    Parameters
    ----------
    cfg : HybridConfig
        The configuration.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` if it exists (exactly: batch ``k`` depends only on ``k``).
    progress : bool
        A progress bar.
    log : callable
        Progress messages.
    until : int, optional
        Stop after this step with a checkpoint (the learning-rate schedule still spans all ``steps``).

    Returns
    -------
    pathlib.Path or None
        ``out_dir/final.safetensors``, loadable with ``enhance run --weights``; None if stopped by ``until``.

    Examples
    --------
    Two steps of a tiny network on one small scene (not a useful model):

    >>> import tempfile
    >>> cfg = HybridConfig(kind="intensity", out_dir=tempfile.mkdtemp(), model={"depth": 1, "width": 4, "taps": 5},
    ...                    data={"pairs": 16, "patch": 16, "psf": {"nominal": 1.0},
    ...                          "sources": [{"type": "synthetic", "frames": 1, "shape": [160, 160]}]},
    ...                    train={"steps": 2, "batch": 4, "eval_every": 2})
    >>> train_hybrid(cfg, progress=False, log=lambda line: None).name
    'final.safetensors'
    """
    torch.set_num_threads(cfg.train["threads"])
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
    teacher = _teacher(cfg) if cfg.train["teacher_weight"] > 0 else None  # before the pairs: a wrong name fails at once
    x_all, y_all, nominal = training_pairs(cfg, log=log)
    net = _build_network(cfg, x_all, y_all, nominal, log=log)
    cases = _validation(cfg, net, x_all, y_all)
    train_x, train_y = x_all[: len(x_all) - len(cases[0][1])], y_all[: len(y_all) - len(cases[0][1])]
    optimiser = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.train["lr"])
    step, history, checkpoint = 0, [], out / "checkpoint.pt"
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        if state["config"] != json.dumps(dataclasses.asdict(cfg), sort_keys=True):
            msg = f"{checkpoint} was written by another configuration; use another out_dir or resume=False"
            raise ConfigError(msg)
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, history = state["step"], json.loads(state["history"])
        log(f"resumed at step {step}")
    steps, lr_max, lr_min = cfg.train["steps"], cfg.train["lr"], cfg.train["lr_min"]
    bar = tqdm(total=steps, initial=step, disable=not progress, desc=f"train {cfg.kind}", unit="step")
    running = []
    while step < min(steps, until or steps):
        lr = lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * step / steps))
        for group in optimiser.param_groups:
            group["lr"] = lr
        x, sigma, target = _batch(cfg, net, train_x, train_y, step)
        output = net.core(x, sigma)
        loss = torch.nn.functional.mse_loss(output, target)
        if cfg.train["flicker_weight"] > 0:  # the axis of the half-pixel shift alternates with the step
            loss = loss + cfg.train["flicker_weight"] * flicker_loss(net, x, sigma, output, axis=2 + step % 2)
        if teacher is not None:
            with torch.no_grad():
                taught = teacher.core(x, sigma)
            loss = loss + cfg.train["teacher_weight"] * torch.nn.functional.mse_loss(output, taught)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        running.append(loss.item())
        step += 1
        bar.update(1)
        if step % cfg.train["eval_every"] == 0 or step in (steps, until):
            net.eval()
            gains = _gains(net, cases)
            net.train()
            history.append({"step": step, "lr": lr, "loss": float(np.mean(running)),
                            "gain_vs_linear_db": [[f, g] for f, g in gains]})  # fmt: skip
            running = []
            torch.save({"model": net.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                        "history": json.dumps(history),
                        "config": json.dumps(dataclasses.asdict(cfg), sort_keys=True)}, checkpoint)  # fmt: skip
            bar.set_postfix_str(" ".join(f"{f:g}x {g:+.2f} dB" for f, g in gains))
    bar.close()
    if step < steps:
        return None
    (out / "history.json").write_text(json.dumps(history, indent=1))
    meta = {"recipe": json.dumps(dataclasses.asdict(cfg)), "step": str(step), "history": json.dumps(history[-1:])}
    return save_weights(net.eval(), out / "final.safetensors", kind=cfg.kind, metadata=meta, overwrite=True)
