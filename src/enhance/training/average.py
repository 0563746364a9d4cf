"""Average the weights of several Wiener-Enhance runs that start from one network (a "model soup").

``enhance train --config FILE.toml`` with ``family = "wiener-enhance-average"`` trains each member run
(`~enhance.training.hybrid_loop.train_hybrid`, resuming where a member stopped) and writes the weighted
mean of their weights. Fine-tunes of one network stay in one basin of the loss, so their mean is a
network too; each member can trade one validation row for another, and their mean keeps the gains of
each. A configuration::

    family = "wiener-enhance-average"
    kind = "intensity"
    out_dir = "runs/intensity_average"

    [[members]]
    config = "intensity_held.toml"      # a wiener-enhance configuration, relative to this file
    weight = 2
    [[members]]
    config = "intensity_held_lowc.toml"
    weight = 1
"""

import dataclasses
import json
import math
import tomllib
from pathlib import Path

from ..models.pretrained import load_network
from ..models.weights import read_metadata, save_weights
from .hybrid_loop import ConfigError, load_hybrid_config, train_hybrid

__all__ = ["FAMILY", "AverageConfig", "load_average_config", "average_weights", "train_average"]

#: The ``family`` of an average's configuration.
FAMILY = "wiener-enhance-average"


@dataclasses.dataclass(frozen=True)
class AverageConfig:
    """What `train_average` does: the member runs and their weights.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        What every member enhances.
    out_dir : str
        Folder of the average's ``final.safetensors``.
    members : tuple of tuple
        ``(configuration path, weight)`` of each member; weights are positive and need not sum to one.

    Examples
    --------
    >>> AverageConfig(kind="intensity", out_dir="runs/a", members=(("a.toml", 1.0),))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    enhance.training.hybrid_loop.ConfigError: an average needs at least two members, got 1
    """

    kind: str
    out_dir: str
    members: tuple

    def __post_init__(self):
        if len(self.members) < 2:
            msg = f"an average needs at least two members, got {len(self.members)}"
            raise ConfigError(msg)
        for path, weight in self.members:
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < math.inf:
                msg = f"member {path}: weight must be a positive number (finite), got {weight!r}"
                raise ConfigError(msg)
        if len({str(path) for path, _ in self.members}) < len(self.members):
            msg = "an average names the same member configuration twice"
            raise ConfigError(msg)


def load_average_config(path) -> AverageConfig:
    """Read a TOML configuration of `train_average`.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The TOML file; its members' paths are relative to its folder.

    Returns
    -------
    AverageConfig
        With the members' paths resolved.

    Raises
    ------
    ConfigError
        Where the file cannot be read, is not of `FAMILY`, or a key or member is wrong or missing.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     members = '[[members]]\\nconfig = "a.toml"\\n[[members]]\\nconfig = "b.toml"\\nweight = 3\\n'
    ...     head = 'family = "wiener-enhance-average"\\nkind = "blos"\\nout_dir = "runs/avg"\\n'
    ...     _ = Path(folder, "avg.toml").write_text(head + members)
    ...     cfg = load_average_config(Path(folder, "avg.toml"))
    ...     [(Path(p).name, w) for p, w in cfg.members]
    [('a.toml', 1.0), ('b.toml', 3.0)]
    """
    try:
        values = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        msg = f"cannot read the configuration {path}: {err}"
        raise ConfigError(msg) from None
    if values.get("family") != FAMILY:
        msg = f"{path}: family {values.get('family')!r} is not an average (expected {FAMILY!r})"
        raise ConfigError(msg)
    unknown = sorted(set(values) - {"family", "kind", "out_dir", "members"})
    if unknown or "kind" not in values or "out_dir" not in values:
        msg = f"{path}: an average takes family, kind, out_dir and [[members]]; unknown {unknown}, or no kind, out_dir"
        raise ConfigError(msg)
    members = []
    for spec in values.get("members", []):
        if not isinstance(spec, dict) or set(spec) - {"config", "weight"} or "config" not in spec:
            msg = f"{path}: each [[members]] takes config (a path) and weight, got {spec!r}"
            raise ConfigError(msg)
        weight = spec.get("weight", 1.0)
        weight = float(weight) if type(weight) in (int, float) else weight  # a bool or string is refused below
        members.append((str(Path(path).parent / spec["config"]), weight))
    return AverageConfig(kind=values["kind"], out_dir=str(values["out_dir"]), members=tuple(members))


def average_weights(files, weights, out, *, kind: str, recipe: dict | None = None) -> Path:
    """Write the weighted mean of Wiener-Enhance weights files of one architecture.

    Parameters
    ----------
    files : sequence of str or `~pathlib.Path`
        Weights files (``final.safetensors`` of `~enhance.training.hybrid_loop.train_hybrid`).
    weights : sequence of float
        Positive, one per file; normalised to sum to one.
    out : str or `~pathlib.Path`
        The file to write (replaced if it exists: it is the run folder's result).
    kind : {'intensity', 'blos'}
        What the networks enhance.
    recipe : dict, optional
        Stored as the ``recipe`` metadata (JSON); the members' own recipes and last validations are
        stored as ``members``.

    Returns
    -------
    pathlib.Path
        The file written; its tensors are the float64 weighted means, rounded to float32.

    Raises
    ------
    ConfigError
        Where the files differ in architecture (depth, width, taps, noise nodes, options) or kind, or a
        weight is not a positive finite number.

    Examples
    --------
    >>> import tempfile, torch
    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     files = []
    ...     for value in (1.0, 4.0):
    ...         net = WienerEnhanceNet(depth=1, width=4, taps=3)
    ...         _ = torch.nn.init.constant_(net.conv_out.bias, value)
    ...         files.append(save_weights(net, f"{folder}/{value}.safetensors", kind="intensity"))
    ...     mean = average_weights(files, [2, 1], f"{folder}/mean.safetensors", kind="intensity")
    ...     load_network(mean, kind="intensity").conv_out.bias.tolist()
    [2.0, 2.0, 2.0, 2.0]
    """
    files, weights = [Path(file) for file in files], [float(weight) for weight in weights]
    if len(files) != len(weights) or not files or not all(0 < weight < math.inf for weight in weights):
        msg = (
            f"average_weights needs one positive finite number per file as weight, got {weights} for {len(files)} files"
        )
        raise ConfigError(msg)
    nets = [load_network(file, kind=kind) for file in files]
    shape = [(type(net), net.file_metadata()) for net in nets]
    if any(other != shape[0] for other in shape[1:]):
        msg = f"cannot average {', '.join(map(str, files))}: not one architecture ({[meta for _, meta in shape]})"
        raise ConfigError(msg)
    total = sum(weights)
    states = [net.state_dict() for net in nets]
    mean = {name: sum(w / total * state[name].double() for w, state in zip(weights, states, strict=True))
            for name in states[0]}  # fmt: skip
    net = nets[0]
    net.load_state_dict({name: value.to(states[0][name].dtype) for name, value in mean.items()})
    members = []
    for file, weight in zip(files, weights, strict=True):
        meta = read_metadata(file)
        members.append({"file": str(file), "weight": weight / total, "recipe": json.loads(meta.get("recipe", "null")),
                        "history": json.loads(meta.get("history", "[]"))})  # fmt: skip
    # The mean has no validation of its own: ``members`` holds each member's last one.
    metadata = {"recipe": json.dumps(recipe or {"family": FAMILY}), "members": json.dumps(members), "history": "[]"}
    return save_weights(net.eval(), out, kind=kind, metadata=metadata, overwrite=True)


def train_average(cfg: AverageConfig, *, sources: dict | None = None, resume: bool = True, progress: bool = True,
                  log=print) -> Path:  # fmt: skip
    """Train every member of ``cfg`` (resuming each) and write their weighted mean.

    Parameters
    ----------
    cfg : AverageConfig
        The average.
    sources : dict, optional
        ``{name: path}`` of file sources: each member is given the ones its configuration names.
    resume : bool
        Resume each member from its checkpoint (a finished member is not trained again).
    progress : bool
        Progress bars.
    log : callable
        Progress messages.

    Returns
    -------
    pathlib.Path
        ``out_dir/final.safetensors``.

    Raises
    ------
    ConfigError
        Where a member's configuration is wrong, of another kind, or a source name matches no member.

    Examples
    --------
    The mean of two runs of two steps of a tiny network that differ in their seed (not a useful model):

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for seed in (1, 2):
    ...     _ = Path(folder, f"m{seed}.toml").write_text(
    ...         f'kind = "intensity"\\nout_dir = "{folder}/m{seed}"\\n[model]\\ndepth = 1\\nwidth = 4\\ntaps = 5\\n'
    ...         '[data]\\npairs = 16\\npatch = 16\\npsf = {nominal = 1.0}\\n[[data.sources]]\\ntype = "synthetic"\\n'
    ...       f'frames = 1\\nshape = [160, 160]\\n[train]\\nsteps = 2\\nbatch = 4\\neval_every = 2\\nseed = {seed}\\n')
    >>> cfg = AverageConfig(kind="intensity", out_dir=str(folder / "mean"),
    ...                     members=((str(folder / "m1.toml"), 1.0), (str(folder / "m2.toml"), 1.0)))
    >>> train_average(cfg, progress=False, log=lambda line: None).name
    'final.safetensors'
    """
    given = dict(sources or {})
    members, used = [], set()
    for path, _ in cfg.members:  # every member's configuration is checked before any training
        names = {spec.get("name") for spec in _member_sources(path)}
        mine = {name: value for name, value in given.items() if name in names}
        used |= set(mine)
        member = load_hybrid_config(path, sources=mine)
        if member.kind != cfg.kind:
            msg = f"member {path} trains a {member.kind} network, the average is of {cfg.kind}"
            raise ConfigError(msg)
        members.append(member)
    if set(given) - used:
        msg = f"--source names {sorted(set(given) - used)} match no member's [[data.sources]]"
        raise ConfigError(msg)
    folders = [Path(member.out_dir).resolve() for member in members] + [Path(cfg.out_dir).resolve()]
    if len(set(folders)) < len(folders):
        msg = "each member and the average need an out_dir of their own"
        raise ConfigError(msg)
    files = []
    for (path, weight), member in zip(cfg.members, members, strict=True):
        log(f"member {path} (weight {weight:g}) in {member.out_dir}")
        files.append(train_hybrid(member, resume=resume, progress=progress, log=log))
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recipe = {"family": FAMILY, "kind": cfg.kind, "out_dir": cfg.out_dir,
              "members": [{"config": path, "weight": weight} for path, weight in cfg.members]}  # fmt: skip
    return average_weights(files, [weight for _, weight in cfg.members], out / "final.safetensors", kind=cfg.kind,
                           recipe=recipe)  # fmt: skip


def _member_sources(path):
    try:
        values = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        msg = f"cannot read the member configuration {path}: {err}"
        raise ConfigError(msg) from None
    return [spec for spec in values.get("data", {}).get("sources", []) if isinstance(spec, dict)]
