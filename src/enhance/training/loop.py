"""Training: the paper's recipe as a loop that reads top to bottom and resumes exactly.

``train(cfg, train_data, val_data)`` runs, in order: seed -> data -> model -> optimizer -> resume ->
loop (lr, step, eval, log, checkpoint) -> final weights. The data are any indexable datasets of
``(input, target)`` pairs (`~enhance.training.datasets.PairDataset`, `~enhance.training.datasets.HDF5PairDataset`, ...).
Every batch is a pure function of ``(seed, step)``: batch ``step`` holds the training samples drawn
``step * batch_size ... (step + 1) * batch_size - 1``, each epoch in a permutation seeded with
``(seed, epoch)``, and the input noise of that batch comes from a generator seeded with ``(seed, step)``.
A run of N steps therefore equals k steps, a resume from the checkpoint, and N - k more steps, bit for
bit on the CPU.

No global numpy random state is used: data and noise come from generators seeded per sample and step.

Multi-process data parallel training runs under ``torchrun`` (DDP; gloo on the CPU, NCCL on CUDA):
each rank takes its share of every batch, and rank 0 alone logs and writes files.
"""

import copy
import csv
import dataclasses
import functools
import json
import math
import os
import pickle
import shutil
import time
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from tqdm.auto import tqdm

from .. import exceptions
from .._version import __version__
from ..checks import check_choice, check_integer
from ..constants import HMI_NOISE_NETWORK, KINDS
from ..io import atomic_write
from ..models.network import EnhanceNet
from ..models.weights import save_weights

__all__ = [
    "TrainConfig",
    "train",
    "lr_at",
    "evaluate",
    "get_batch",
    "sample_index",
    "save_checkpoint",
    "load_checkpoint",
    "load_config",
    "plot_history",
    "average_checkpoints",
    "check_checkpoints",
    "export_average",
    "resolve_precision",
    "native_bfloat16",
]

# Fields a resumed run must share with its checkpoint (they define the data stream and the task).
_RESUME_FIXED = ("kind", "seed", "batch_size", "shuffle", "input_noise", "l2")
# Per-kind defaults of the paper: L2 weight on the convolution kernels and Gaussian input noise.
_L2 = {"intensity": 1e-6, "blos": 1e-5}
_NOISE = HMI_NOISE_NETWORK  # I/Ic; kG


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults are the paper's recipe.

    Parameters
    ----------
    kind : str
        'intensity' (I/Ic) or 'blos' (kG)
    depth : int
        Residual blocks (paper: 5; light model: 1)
    width : int
        Channels per convolution (paper: 64; light model: 32)
    batch_size : int
        Patches per step (paper: 32)
    max_steps : int
        Optimizer steps in all.
    lr : float
        Adam learning rate (paper: 1e-4), per step
    lr_schedule : str
        'constant' or 'cosine' (decay to min_lr after warm-up)
    warmup_steps : int
        Linear warm-up from 0 to lr.
    min_lr : float
        Floor of the cosine schedule.
    l2 : float or None
        L2 weight on conv kernels; None: 1e-6 intensity, 1e-5 blos (paper)
    input_noise : float or None
        Std of Gaussian noise on inputs; None: 1e-3 I/Ic or 1e-2 kG (paper)
    shuffle : bool
        Visit the training pairs in a fresh (seed, epoch) permutation each epoch.
    eval_interval : int
        Steps between validation passes.
    eval_samples : int
        Validation patches per pass (a fixed held-out set)
    checkpoint_seconds : float
        Write the resume checkpoint at least this often.
    snapshot_interval : int
        Keep a copy of the checkpoint every this many steps (for `average_checkpoints`)
    out_dir : str
        Checkpoint, history, plots and weights go here.
    seed : int
        Seeds the data stream, the noise and the initialisation.
    device : str
        'auto', 'cpu', 'cuda', ...
    num_threads : int
        Torch CPU threads; 0 leaves PyTorch's default.
    precision : str
        'float32', 'bfloat16' autocast (fp32 master weights), or 'auto': bfloat16 where native.


    Examples
    --------
    >>> cfg = TrainConfig(kind="blos", depth=1, width=32)
    >>> cfg.noise, cfg.l2_weight, cfg.model_args
    (0.01, 1e-05, {'depth': 1, 'width': 32})
    """

    kind: str = "intensity"  # 'intensity' (I/Ic) or 'blos' (kG)
    depth: int = 5  # residual blocks (paper: 5; light model: 1)
    width: int = 64  # channels per convolution (paper: 64; light model: 32)
    batch_size: int = 32  # patches per step (paper: 32)
    max_steps: int = 30_000  # optimizer steps in all
    lr: float = 1e-4  # Adam learning rate (paper: 1e-4)
    lr_schedule: str = "cosine"  # 'constant' or 'cosine' (decay to min_lr after warm-up)
    warmup_steps: int = 200  # linear warm-up from 0 to lr
    min_lr: float = 1e-5  # floor of the cosine schedule
    l2: float | None = None  # L2 weight on conv kernels; None: 1e-6 intensity, 1e-5 blos (paper)
    input_noise: float | None = None  # std of Gaussian noise on inputs; None: 1e-3 I/Ic or 1e-2 kG (paper)
    shuffle: bool = True  # visit the training pairs in a fresh (seed, epoch) permutation each epoch
    eval_interval: int = 250  # steps between validation passes
    eval_samples: int = 512  # validation patches per pass (a fixed held-out set)
    checkpoint_seconds: float = 300.0  # write the resume checkpoint at least this often
    snapshot_interval: int = 0  # keep a copy of the checkpoint every this many steps (for `average_checkpoints`)
    out_dir: str = "runs/enhance"  # checkpoint, history, plots and weights go here
    seed: int = 0  # seeds the data stream, the noise and the initialisation
    device: str = "auto"  # 'auto', 'cpu', 'cuda', ...
    num_threads: int = 0  # torch CPU threads; 0 leaves PyTorch's default
    precision: str = "float32"  # 'float32', 'bfloat16' autocast (fp32 master weights), or 'auto': bfloat16 where native

    def __post_init__(self):
        check_choice(self.kind, KINDS, name="kind")
        check_choice(self.lr_schedule, ("constant", "cosine"), name="lr_schedule")
        check_choice(self.precision, ("float32", "bfloat16", "auto"), name="precision")
        for name in ("depth", "width", "batch_size", "max_steps", "eval_interval", "eval_samples"):
            check_integer(getattr(self, name), name=name)
        if not self.lr > 0:
            msg = f"lr must be > 0, got {self.lr!r}"
            raise ValueError(msg)
        if not 0 <= self.min_lr <= self.lr:
            msg = f"min_lr must lie in [0, lr={self.lr}], got {self.min_lr!r}"
            raise ValueError(msg)
        check_integer(self.warmup_steps, name="warmup_steps", minimum=0)
        check_integer(self.snapshot_interval, name="snapshot_interval", minimum=0)
        for name in ("l2", "input_noise"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                msg = f"{name} must be None or >= 0, got {value!r}"
                raise ValueError(msg)

    @property
    def l2_weight(self) -> float:
        """L2 weight on the convolution kernels: ``l2``, or the paper's value for the kind.

        Examples
        --------
        >>> TrainConfig(kind="intensity").l2_weight
        1e-06
        """
        return _L2[self.kind] if self.l2 is None else float(self.l2)

    @property
    def noise(self) -> float:
        """Standard deviation of the input noise, I/Ic or kG: ``input_noise``, or the paper's value.

        Examples
        --------
        >>> TrainConfig(kind="intensity").noise
        0.001
        """
        return _NOISE[self.kind] if self.input_noise is None else float(self.input_noise)

    @property
    def model_args(self) -> dict:
        """Keyword arguments of `~enhance.models.network.EnhanceNet` for this run.

        Examples
        --------
        >>> TrainConfig(depth=1, width=32).model_args
        {'depth': 1, 'width': 32}
        """
        return {"depth": self.depth, "width": self.width}


def load_config(path, **overrides) -> TrainConfig:
    r"""Build a `TrainConfig` from a TOML file (keys are the field names), then apply ``overrides``.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The TOML file.
    **overrides
        Fields set after the file's.

    Returns
    -------
    TrainConfig
        The configuration.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with open(f"{folder}/run.toml", "w") as handle:
    ...         _ = handle.write('kind = "blos"\ndepth = 1\n')
    ...     cfg = load_config(f"{folder}/run.toml", width=32)
    >>> cfg.kind, cfg.depth, cfg.width
    ('blos', 1, 32)
    """
    with open(path, "rb") as handle:
        values = tomllib.load(handle)
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        msg = f"unknown training option(s) {unknown} in {path}; known: {sorted(known)}"
        raise ValueError(msg)
    values.update({key: value for key, value in overrides.items() if value is not None})
    return TrainConfig(**values)


def native_bfloat16(device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively (CUDA with bf16, or a CPU with
    AVX512-BF16/AMX); elsewhere oneDNN emulates them, several times slower than float32.

    Parameters
    ----------
    device : `torch.device`
        The device.

    Returns
    -------
    bool
        True where bfloat16 convolutions are native.

    Examples
    --------
    >>> import torch
    >>> native_bfloat16(torch.device("cpu")) in (True, False)
    True
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN
            return False
    return False


def resolve_precision(precision: str, device) -> str:
    """The precision a run uses on ``device``: 'auto' is bfloat16 where it is native, float32 elsewhere.

    Asking for bfloat16 where it is emulated warns (`~enhance.exceptions.EnhanceUserWarning`): on a CPU
    without AVX512-BF16 a training step is several times slower than in float32.

    Parameters
    ----------
    precision : {'float32', 'bfloat16', 'float16', 'auto'}
        The precision asked for.
    device : `torch.device`
        Where the run trains.

    Returns
    -------
    str
        'float32', 'bfloat16' or 'float16'.

    Examples
    --------
    >>> import torch
    >>> resolve_precision("float32", torch.device("cpu"))
    'float32'
    """
    native = native_bfloat16(device)
    if precision == "auto":
        return "bfloat16" if native else "float32"
    if precision == "bfloat16" and not native:
        warnings.warn(
            f"bfloat16 is emulated on this {torch.device(device).type} (no native bf16 convolutions): training "
            "will be several times slower than with precision='float32'",
            exceptions.EnhanceUserWarning,
            stacklevel=3,
        )
    return precision


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step``: linear warm-up, then constant or cosine decay to ``min_lr``.

    Parameters
    ----------
    step : int
        Optimizer step, from 0.
    cfg : TrainConfig
        The run's schedule (``lr``, ``lr_schedule``, ``warmup_steps``, ``min_lr``, ``max_steps``).

    Returns
    -------
    float
        The learning rate.

    Examples
    --------
    >>> cfg = TrainConfig(lr=1e-4, warmup_steps=100, max_steps=1000, min_lr=1e-5)
    >>> round(lr_at(50, cfg), 7), lr_at(1000, cfg)
    (5.1e-05, 1e-05)
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def _stack(samples):
    """Batch tensors (B, 1, h, w) from pairs of (h, w) or (1, h, w) arrays or tensors."""

    def as_image(a):
        return np.asarray(a, dtype=np.float32).reshape(np.shape(a)[-2:])

    inputs = np.stack([as_image(x) for x, _ in samples])[:, None]
    targets = np.stack([as_image(y) for _, y in samples])[:, None]
    return torch.from_numpy(inputs), torch.from_numpy(targets)


@functools.lru_cache(maxsize=2)
def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """Order in which epoch ``epoch`` visits ``n`` samples: a permutation seeded with ``(seed, epoch)``."""
    return np.random.default_rng([seed, epoch, 0xE90C]).permutation(n)


def sample_index(k: int, cfg: TrainConfig, n: int) -> int:
    """Dataset index of the ``k``-th training sample drawn (epoch ``k // n``, shuffled when ``cfg.shuffle``).

    Parameters
    ----------
    k : int
        Position in the stream of samples, from 0.
    cfg : TrainConfig
        Gives ``seed`` and ``shuffle``.
    n : int
        Number of training pairs.

    Returns
    -------
    int
        The index, ``0 <= index < n``.

    Examples
    --------
    >>> cfg = TrainConfig(shuffle=True)
    >>> sorted(sample_index(k, cfg, 5) for k in range(5))  # each pair once per epoch
    [0, 1, 2, 3, 4]
    """
    epoch, position = divmod(k, n)
    return int(_epoch_order(cfg.seed, epoch, n)[position]) if cfg.shuffle else position


def get_batch(data, step: int, cfg: TrainConfig, *, rank: int = 0, world: int = 1):
    """This rank's share of training batch ``step``, with the input noise of that batch.

    Batch ``step`` holds the samples drawn ``step * batch_size ... (step + 1) * batch_size - 1``
    (`sample_index`); this rank takes its slice. The noise comes from a generator seeded with
    ``(seed, step)`` and is drawn for the whole batch, so it does not depend on ``world``.

    Parameters
    ----------
    data : indexable dataset
        Training pairs ``data[i] -> (input, target)``.
    step : int
        The optimizer step.
    cfg : TrainConfig
        Gives ``batch_size``, ``seed``, ``shuffle`` and the input noise.
    rank : int
        This process's rank in a data-parallel run.
    world : int
        Number of processes.

    Returns
    -------
    x : `torch.Tensor`
        Noisy inputs, ``(b, 1, h, w)``.
    y : `torch.Tensor`
        Targets, ``(b, 1, 2h, 2w)``.

    Examples
    --------
    >>> import numpy as np
    >>> pairs = [(np.zeros((8, 8), np.float32), np.zeros((16, 16), np.float32))] * 4
    >>> x, y = get_batch(pairs, 0, TrainConfig(batch_size=4))
    >>> tuple(x.shape), tuple(y.shape)
    ((4, 1, 8, 8), (4, 1, 16, 16))
    """
    share = range(rank * cfg.batch_size // world, (rank + 1) * cfg.batch_size // world)
    indices = [sample_index(step * cfg.batch_size + j, cfg, len(data)) for j in share]
    inputs, targets = _stack([data[i] for i in indices])
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, step]).generate_state(1)[0]))
    noise = torch.randn((cfg.batch_size, *inputs.shape[1:]), generator=generator)[share.start : share.stop]
    return inputs + cfg.noise * noise, targets


def _l2_penalty(model: torch.nn.Module) -> torch.Tensor:
    """Sum of squared convolution kernels (Keras ``kernel_regularizer=l2``; biases and BN excluded)."""
    kernels = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    return sum(torch.sum(w * w) for w in kernels)


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, data, cfg: TrainConfig, step: int, device, *, batches: int = 16):
    """A copy of ``model`` whose BatchNorm running statistics are the plain average over ``batches``
    training batches (those from ``step`` on), the weights unchanged.

    The running averages kept during training (momentum 0.01, Keras' 0.99) trail weights that still move
    quickly; evaluating and exporting with statistics measured on the current weights removes that lag.
    The model itself, and so the training run, is untouched.
    """
    calibrated = copy.deepcopy(model)
    norms = [m for m in calibrated.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return calibrated
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches below
    calibrated.train()
    for j in range(batches):
        inputs, _ = get_batch(data, step + j, cfg)
        calibrated(inputs.to(device, memory_format=torch.channels_last))  # float32, as at inference
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return calibrated.eval()


@torch.no_grad()
def evaluate(model: torch.nn.Module, data, cfg: TrainConfig, device) -> float:
    """Mean squared error over the first ``eval_samples`` validation pairs (as they are), in eval mode.

    Parameters
    ----------
    model : `torch.nn.Module`
        The network.
    data : indexable dataset
        Validation pairs ``data[i] -> (input, target)``, normalised (I/Ic or kG).
    cfg : TrainConfig
        Gives ``eval_samples`` and ``batch_size``.
    device : `torch.device`
        Where the model runs.

    Returns
    -------
    float
        The MSE, in the squared normalised unit.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from enhance.models.network import EnhanceNet
    >>> pairs = [(np.zeros((8, 8), np.float32), np.zeros((16, 16), np.float32))] * 2
    >>> loss = evaluate(EnhanceNet(depth=1, width=8), pairs, TrainConfig(eval_samples=2), torch.device("cpu"))
    >>> loss >= 0
    True
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    n_samples = min(cfg.eval_samples, len(data))
    for start in range(0, n_samples, cfg.batch_size):
        inputs, targets = _stack([data[i] for i in range(start, min(start + cfg.batch_size, n_samples))])
        prediction = model(inputs.to(device))
        total += F.mse_loss(prediction, targets.to(device), reduction="sum").item()
        count += targets.numel()
    model.train(was_training)
    return total / count


def save_checkpoint(path: Path, *, model, optimizer, step, cfg, best_val, history, running=None) -> None:
    """Write everything a run needs to resume exactly, atomically (temporary file + ``os.replace``).

    Parameters
    ----------
    path : `~pathlib.Path`
        The checkpoint file.
    model : `torch.nn.Module`
        The network being trained.
    optimizer : `torch.optim.Optimizer`
        Its optimizer.
    step : int
        Steps done.
    cfg : TrainConfig
        The run's settings.
    best_val : float
        Best validation MSE so far.
    history : list of dict
        Loss history rows.
    running : dict, optional
        Running averages of the training loss.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from enhance.models.network import EnhanceNet
    >>> net = EnhanceNet(depth=1, width=8)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "checkpoint.pt"
    ...     save_checkpoint(path, model=net, optimizer=torch.optim.Adam(net.parameters()), step=5,
    ...                     cfg=TrainConfig(depth=1, width=8), best_val=1.0, history=[])
    ...     print(load_checkpoint(path)["step"])
    5
    """
    state = {
        "model": model.state_dict(),
        "model_args": cfg.model_args,
        "optimizer": optimizer.state_dict(),
        "step": step,
        "config": dataclasses.asdict(cfg),
        "best_val": best_val,
        "history": history,
        "running_loss": running,
        "torch_rng": torch.get_rng_state(),
        "package_version": __version__,
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp), overwrite=True)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by `save_checkpoint`, safely.

    Only tensors and plain data (dicts, lists, numbers, strings) are unpickled (``weights_only=True``):
    a file whose pickle asks for anything else, such as a function to call, is refused with a
    `ValueError` naming it, and nothing in it runs.

    Parameters
    ----------
    path : `~pathlib.Path`
        The checkpoint file.

    Returns
    -------
    dict
        ``step``, ``model``, ``optimizer``, ``config``, ``best_val``, ``history`` and the run's
        running state.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from enhance.models.network import EnhanceNet
    >>> net = EnhanceNet(depth=1, width=8)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "checkpoint.pt"
    ...     save_checkpoint(path, model=net, optimizer=torch.optim.Adam(net.parameters()), step=7,
    ...                     cfg=TrainConfig(depth=1, width=8), best_val=1.0, history=[])
    ...     print(load_checkpoint(path)["step"])
    7
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = str(err).strip().splitlines()[-1][:200] if str(err).strip() else type(err).__name__
        msg = (f"{path} is not a checkpoint of `enhance train` that loads safely: it holds objects other than "
               f"tensors and plain data, so it was not loaded ({detail})")  # fmt: skip
        raise ValueError(msg) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        msg = f"{path} is not a readable checkpoint of `enhance train`: {str(err).splitlines()[0][:200]}"
        raise ValueError(msg) from None


def _write_history(out_dir: Path, history: list[dict]) -> None:
    with (out_dir / "history.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "lr", "train_loss", "val_loss", "seconds"])
        writer.writeheader()
        writer.writerows(history)
    (out_dir / "history.json").write_text(json.dumps(history, indent=1))


def plot_history(history: list[dict], path) -> None:
    """Plot training and validation loss against step (log scale) to a PNG.

    Parameters
    ----------
    history : list of dict
        Rows with ``step`` and the losses, as `train` records them.
    path : str or `~pathlib.Path`
        The PNG file.

    Examples
    --------
    >>> import tempfile, os
    >>> rows = [{"step": 1, "train_loss": 1.0, "val_loss": 1.2}, {"step": 2, "train_loss": 0.5, "val_loss": 0.7}]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_history(rows, f"{folder}/history.png")
    ...     print(os.path.exists(f"{folder}/history.png"))
    True
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    steps = [row["step"] for row in history]
    ax.semilogy(steps, [row["train_loss"] for row in history], label="training (running mean)")
    val = [(row["step"], row["val_loss"]) for row in history if row["val_loss"] not in (None, "")]
    if val:
        ax.semilogy(*zip(*val, strict=True), "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE")
    ax.legend()
    fig.savefig(path, dpi=100)


def train(cfg: TrainConfig, train_data, val_data, *, resume: bool = True, progress: bool = True) -> dict:
    """Train an `~enhance.models.network.EnhanceNet` on pairs from ``train_data``, validating on ``val_data``.

    Parameters
    ----------
    cfg : `TrainConfig`
        The run's settings.
    train_data, val_data : indexable datasets
        ``data[i] -> (input, target)``, each a pure function of ``i``: arrays or tensors of shape
        (h, w) or (1, h, w), the target twice the input's size, normalised (I/Ic or kG) and without
        noise (the input noise of the recipe is added here, fresh at every step). ``val_data`` must
        hold data never used for training. Pairs that already hold input noise (an
        `~enhance.training.datasets.HDF5PairDataset` with a positive ``noise`` attribute) get none added
        when ``cfg.input_noise`` is None
        (`~enhance.training.datasets.input_noise_for`).
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` if it exists. Its architecture must match ``cfg``.
    progress : bool
        Show a progress bar with the running loss (rank 0).

    Returns
    -------
    dict
        ``step``, ``best_val``, ``history``, ``files`` (the paths written) and the trained ``model``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> rng = np.random.default_rng(0)
    >>> pairs = [(rng.random((8, 8), np.float32), rng.random((16, 16), np.float32)) for _ in range(4)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cfg = TrainConfig(depth=1, width=8, batch_size=2, max_steps=3, eval_interval=3, eval_samples=2,
    ...                       warmup_steps=1, out_dir=folder, device="cpu")
    ...     result = train(cfg, pairs, pairs, progress=False)  # doctest: +ELLIPSIS
    step 3: train ...
    >>> result["step"]
    3
    """
    from .datasets import input_noise_for

    noise = input_noise_for(train_data, cfg.input_noise)
    if noise != cfg.input_noise:  # the pairs hold HMI's noise already: never add it twice
        cfg = dataclasses.replace(cfg, input_noise=noise)
    world, rank, device = _processes(cfg)
    precision = resolve_precision(cfg.precision, device)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out_dir / "checkpoint.pt"
    state = _resume_state(checkpoint_path, cfg) if resume and checkpoint_path.exists() else None
    model, optimizer, run = _model_and_optimizer(cfg, device, state)
    trainer = _data_parallel(model, device, world)

    bar = tqdm(total=cfg.max_steps, initial=run.step, desc="training", disable=not progress or rank != 0)
    run.last_save = run.start = time.monotonic()
    while run.step < cfg.max_steps:
        lr = lr_at(run.step, cfg)
        batch = get_batch(train_data, run.step, cfg, rank=rank, world=world)
        mse = _train_step(model, trainer, optimizer, batch, lr=lr, cfg=cfg, device=device, precision=precision)
        run.step += 1
        run.running = mse if run.running is None else 0.98 * run.running + 0.02 * mse
        bar.update()
        bar.set_postfix(loss=f"{run.running:.3e}", lr=f"{lr:.1e}")
        evaluate_now = run.step % cfg.eval_interval == 0 or run.step == cfg.max_steps
        if rank == 0 and evaluate_now:
            _evaluate_and_log(model, train_data, val_data, cfg, device, run, lr=lr, out_dir=out_dir, bar=bar)
        if rank == 0:
            _checkpoint_if_due(checkpoint_path, model, optimizer, cfg, run, evaluate_now=evaluate_now)
    bar.close()

    files = {"checkpoint": checkpoint_path}
    if rank == 0:
        files.update(_final_weights(model, train_data, cfg, device, run, out_dir))
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return {"step": run.step, "best_val": run.best_val, "history": run.history, "files": files, "model": model}


@dataclass
class _Run:
    """Where a run stands: what a checkpoint saves besides the model and the optimizer, and two clocks."""

    step: int = 0
    best_val: float = float("inf")
    history: list = dataclasses.field(default_factory=list)
    running: float | None = None  # running mean of the training MSE
    start: float = 0.0
    last_save: float = 0.0


def _processes(cfg: TrainConfig):
    """``(world, rank, device)``: this process's place in a torchrun job (DDP group joined) and its device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if cfg.batch_size % world:
        msg = f"batch_size ({cfg.batch_size}) must be divisible by the number of processes ({world})"
        raise ValueError(msg)
    from ..runtime.graph import resolve_device

    device = resolve_device(cfg.device)
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world, rank, device


def _resume_state(checkpoint_path: Path, cfg: TrainConfig) -> dict:
    """The checkpoint to resume from, checked to continue the same run (architecture, data stream, task)."""
    state = load_checkpoint(checkpoint_path)
    if state["model_args"] != cfg.model_args:
        msg = (
            f"checkpoint {checkpoint_path} holds a network with {state['model_args']}, but the configuration "
            f"asks for {cfg.model_args}; use another out_dir or matching depth/width"
        )
        raise ValueError(msg)
    for name in _RESUME_FIXED:
        saved, asked = state["config"].get(name), getattr(cfg, name)
        if saved != asked:
            msg = (f"checkpoint {checkpoint_path} was trained with {name}={saved!r}, but the configuration asks "
                   f"for {name}={asked!r}: resuming would not continue the same run")  # fmt: skip
            raise ValueError(msg)
    return state


def _model_and_optimizer(cfg: TrainConfig, device, state):
    """A fresh model (seeded) and Adam, or both restored from ``state`` with the run's place and RNG."""
    # Channels-last activations are what oneDNN's (and cuDNN's) fastest convolutions want.
    model = EnhanceNet(**cfg.model_args).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    run = _Run()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        run = _Run(step=state["step"], best_val=state["best_val"], history=state["history"],
                   running=state["running_loss"])  # fmt: skip
        torch.set_rng_state(state["torch_rng"])
    model.train()
    return model, optimizer, run


def _data_parallel(model, device, world):
    """The module that runs the forward pass: ``model`` itself, or its DDP wrapper under torchrun."""
    if world == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def _train_step(model, trainer, optimizer, batch, *, lr, cfg, device, precision) -> float:
    """One optimizer step at learning rate ``lr`` on ``batch``; returns the batch's MSE."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    inputs, targets = batch
    inputs = inputs.to(device, memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        prediction = trainer(inputs)
    mse = F.mse_loss(prediction.float(), targets.to(device))
    loss = mse + cfg.l2_weight * _l2_penalty(model)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return mse.item()


def _evaluate_and_log(model, train_data, val_data, cfg, device, run: _Run, *, lr, out_dir: Path, bar) -> None:
    """Validate with recalibrated BatchNorm statistics, keep the best weights, and write the history."""
    calibrated = recalibrate_batchnorm(model, train_data, cfg, run.step, device)
    val = evaluate(calibrated, val_data, cfg, device)
    run.history.append({"step": run.step, "lr": lr, "train_loss": run.running, "val_loss": val,
                        "seconds": round(time.monotonic() - run.start, 2)})  # fmt: skip
    if val < run.best_val:
        run.best_val = val
        _export(calibrated, out_dir / "best.safetensors", cfg, run.step, val)
    _write_history(out_dir, run.history)
    bar.write(f"step {run.step}: train {run.running:.4e}  validation {val:.4e}  (best {run.best_val:.4e})")


def _checkpoint_if_due(checkpoint_path: Path, model, optimizer, cfg, run: _Run, *, evaluate_now: bool) -> None:
    """Write the resume checkpoint after an evaluation, at a snapshot step, or when it is older than allowed."""
    snapshot_now = cfg.snapshot_interval > 0 and run.step % cfg.snapshot_interval == 0
    if not (evaluate_now or snapshot_now or time.monotonic() - run.last_save > cfg.checkpoint_seconds):
        return
    save_checkpoint(checkpoint_path, model=model, optimizer=optimizer, step=run.step, cfg=cfg,
                    best_val=run.best_val, history=run.history, running=run.running)  # fmt: skip
    run.last_save = time.monotonic()
    if snapshot_now:
        (checkpoint_path.parent / "snapshots").mkdir(exist_ok=True)
        shutil.copyfile(checkpoint_path, checkpoint_path.parent / "snapshots" / f"step_{run.step:07d}.pt")


def _final_weights(model, train_data, cfg, device, run: _Run, out_dir: Path) -> dict:
    """Export the final network (recalibrated), plot the history; the paths written."""
    val = run.history[-1]["val_loss"] if run.history else None
    final = recalibrate_batchnorm(model, train_data, cfg, run.step, device)
    files = {"final": _export(final, out_dir / "final.safetensors", cfg, run.step, val),
             "best": out_dir / "best.safetensors"}  # fmt: skip
    if run.history:
        plot_history(run.history, out_dir / "history.png")
        files["history"] = out_dir / "history.csv"
    return files


def check_checkpoints(paths) -> list[Path]:
    """The checkpoints of `average_checkpoints`, checked before any work: each must be a file.

    Parameters
    ----------
    paths : sequence of str or `~pathlib.Path`
        Resume checkpoints of one run.

    Returns
    -------
    list of `~pathlib.Path`
        ``paths``.

    Raises
    ------
    FileNotFoundError
        Naming the first checkpoint that is not a file.

    Examples
    --------
    >>> check_checkpoints(["runs/none/step_1.pt"])
    Traceback (most recent call last):
    ...
    FileNotFoundError: checkpoint not found: runs/none/step_1.pt
    """
    paths = [Path(path) for path in paths]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        msg = f"checkpoint not found: {missing[0]}"
        raise FileNotFoundError(msg)
    return paths


def average_checkpoints(paths, train_data, val_data=None, *, device="cpu") -> tuple[EnhanceNet, dict]:
    """Stochastic weight averaging: one network whose weights are the mean of a run's checkpoints.

    Late in training at a small learning rate the weights wander about a minimum; outputs that the
    loss barely constrains (the darkest umbrae are well under 1 % of the training pixels) then drift
    from one checkpoint to the next. Their uniform average sits nearer the middle of that wander
    (Izmailov et al. 2018, "Averaging weights leads to wider optima and better generalization").

    Parameters
    ----------
    paths : sequence of str or `~pathlib.Path`
        Resume checkpoints (`save_checkpoint`) of one run: same architecture and kind.
    train_data : indexable dataset
        The run's training pairs: the BatchNorm statistics of the averaged weights are measured on
        them (``recalibrate_batchnorm``, batches from the last checkpoint's step on).
    val_data : indexable dataset, optional
        Validation pairs; when given, the averaged network's validation MSE is returned.
    device : str or `torch.device`
        Where the statistics and the validation are computed.

    Returns
    -------
    network : `~enhance.models.network.EnhanceNet`
        The averaged network, in eval mode.
    info : dict
        ``steps`` (of the checkpoints, sorted), ``val_loss`` (or None) and ``config`` (the last
        checkpoint's `TrainConfig`).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> rng = np.random.default_rng(0)
    >>> pairs = [(rng.random((8, 8), np.float32), rng.random((16, 16), np.float32)) for _ in range(4)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cfg = TrainConfig(depth=1, width=8, batch_size=2, max_steps=2, eval_interval=2, eval_samples=2,
    ...                       warmup_steps=1, snapshot_interval=1, out_dir=folder, device="cpu")
    ...     _ = train(cfg, pairs, pairs, progress=False)  # doctest: +ELLIPSIS
    ...     snapshots = sorted(pathlib.Path(folder).rglob("step_*.pt"))
    ...     net, info = average_checkpoints(snapshots, pairs, pairs)
    step 2: train ...
    >>> info["steps"]
    [1, 2]
    """
    states = sorted((load_checkpoint(path) for path in check_checkpoints(paths)), key=lambda state: state["step"])
    if not states:
        msg = "average_checkpoints needs at least one checkpoint"
        raise ValueError(msg)
    first = states[0]
    for state in states[1:]:
        if state["model_args"] != first["model_args"] or state["config"]["kind"] != first["config"]["kind"]:
            msg = (f"checkpoints of different networks cannot be averaged: {first['model_args']} "
                   f"({first['config']['kind']}) and {state['model_args']} ({state['config']['kind']})")  # fmt: skip
            raise ValueError(msg)
    averaged = {}
    for name, value in first["model"].items():
        if value.is_floating_point():
            averaged[name] = (sum(state["model"][name].double() for state in states) / len(states)).to(value.dtype)
        else:  # BatchNorm's batch counters: measured anew below
            averaged[name] = states[-1]["model"][name]
    cfg = TrainConfig(**states[-1]["config"])
    device = torch.device(device)
    model = EnhanceNet(**first["model_args"]).to(device, memory_format=torch.channels_last)
    model.load_state_dict(averaged)
    network = recalibrate_batchnorm(model, train_data, cfg, states[-1]["step"], device)
    val = evaluate(network, val_data, cfg, device) if val_data is not None else None
    return network, {"steps": [state["step"] for state in states], "val_loss": val, "config": cfg}


def export_average(paths, out, train_data, val_data=None, *, device="cpu", overwrite=False) -> Path:
    """`average_checkpoints`, written as a safetensors file like a run's ``best.safetensors``.

    Its metadata holds the last step (``step``), the validation MSE, the configuration and the steps
    averaged (``averaged_steps``).

    Parameters
    ----------
    paths : sequence of str or `~pathlib.Path`
        Resume checkpoints of one run.
    out : str or `~pathlib.Path`
        The safetensors file to write.
    train_data : indexable dataset
        The run's training pairs (for the BatchNorm statistics).
    val_data : indexable dataset, optional
        Validation pairs, for the MSE recorded.
    device : str or `torch.device`
        Where the statistics and the validation are computed.
    overwrite : bool
        Replace an existing ``out``.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> rng = np.random.default_rng(0)
    >>> pairs = [(rng.random((8, 8), np.float32), rng.random((16, 16), np.float32)) for _ in range(4)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cfg = TrainConfig(depth=1, width=8, batch_size=2, max_steps=2, eval_interval=2, eval_samples=2,
    ...                       warmup_steps=1, snapshot_interval=1, out_dir=folder, device="cpu")
    ...     _ = train(cfg, pairs, pairs, progress=False)  # doctest: +ELLIPSIS
    ...     snapshots = sorted(pathlib.Path(folder).rglob("step_*.pt"))
    ...     print(export_average(snapshots, f"{folder}/swa.safetensors", pairs).name)
    step 2: train ...
    swa.safetensors
    """
    network, info = average_checkpoints(paths, train_data, val_data, device=device)
    meta = {"step": info["steps"][-1], "val_loss": info["val_loss"], "averaged_steps": json.dumps(info["steps"]),
            "config": json.dumps(dataclasses.asdict(info["config"]))}  # fmt: skip
    return save_weights(network, out, kind=info["config"].kind, metadata=meta, overwrite=overwrite)


def _export(model, path: Path, cfg: TrainConfig, step: int, val_loss) -> Path:
    meta = {"step": step, "val_loss": val_loss, "config": json.dumps(dataclasses.asdict(cfg))}
    return save_weights(model, path, kind=cfg.kind, metadata=meta, overwrite=True)
