"""Validation on data never used for training: the held-out part of a simulation and held-out scenes.

For each model, every held-out field is degraded with the observation model, enhanced, and compared
with its target next to bicubic interpolation and Richardson-Lucy at its best iteration count:
PSNR, SSIM, granulation contrast, umbral intensity and unsigned flux. `report` writes it all as
Markdown with figures.

The split is fixed in `enhance.training.datasets` so that training and validation agree on it: the last
`~enhance.training.datasets.SIMULATION_HOLDOUT` of the rows of a simulation field and the synthetic scenes of
seed `~enhance.training.datasets.HELD_OUT_SEED` are never trained on.
"""

import json
from pathlib import Path

import astropy.units as u
import numpy as np

from .._version import __version__
from ..checks import check_choice
from ..inference.pipeline import enhance
from ..io import atomic_write
from ..training.datasets import HELD_OUT_SEED, NOISE, SCALE, degrade_frame, split_rows
from .baselines import bicubic_x2, rl_super_resolve
from .metrics import contrast, psnr, quiet_region, scale_region, ssim

__all__ = [
    "held_out_fields",
    "evaluate_field",
    "validate",
    "report",
    "floors",
    "real_data",
    "RL_ITERATIONS",
]

#: Richardson-Lucy iteration counts scored (in one run); the best one against the target is reported.
#: The run stops once the score has fallen at three successive counts, i.e. after its peak.
RL_ITERATIONS = (1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200, 300, 500, 800, 1200, 2000)
_SCENES = ("quiet_sun", "plage", "active_region")
_UMBRA = 0.4  # I/Ic below which target pixels count as umbra


def held_out_fields(kind, *, simulation=None, shape=(800, 800), scenes=_SCENES, noise=True):
    """The held-out fields as ``(name, observed, target)``, normalised (I/Ic or kG).

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Which data: continuum intensity or line-of-sight field.
    simulation : str or `~pathlib.Path`, optional
        A simulation continuum field (FITS with CDELT1 in arcsec, e.g. the MURaM field); its held-out
        rows (`~enhance.training.datasets.split_rows`) are one field. Only for ``kind='intensity'``.
    shape : tuple of int
        Shape of the synthetic scenes, pixels at 0.0662 arcsec.
    scenes : sequence of str
        Synthetic scene kinds, each drawn with `~enhance.training.datasets.HELD_OUT_SEED`.
    noise : bool
        Add HMI's noise (1e-3 I/Ic, 10 G; `~enhance.training.datasets.NOISE`) to the inputs, drawn from a
        generator seeded with `~enhance.training.datasets.HELD_OUT_SEED`.

    Returns
    -------
    list of tuple
        ``(name, observed, target)`` per field: the HMI-like input at 0.504 arcsec per pixel and the
        target at 0.252 arcsec per pixel, both float arrays in I/Ic (continuum) or kG (magnetogram).

    Examples
    --------
    >>> fields = held_out_fields("blos", shape=(64, 64), scenes=("plage",))
    >>> [(name, observed.shape, target.shape) for name, observed, target in fields]
    [('synthetic plage', (8, 8), (16, 16))]
    """
    from ..scenes.sources import open_source
    from ..scenes.synth import MURAM_PIXEL_SCALE, generate

    check_choice(kind, ("intensity", "blos"), name="kind")
    rng = np.random.default_rng(HELD_OUT_SEED)
    sigma = NOISE[kind] * SCALE[kind] if noise else 0.0

    def noisy(observed):
        return (observed + rng.normal(0.0, sigma, observed.shape)).astype(np.float32) if sigma else observed

    fields = []
    if simulation is not None and kind == "intensity":
        source = open_source(simulation, kind="intensity", normalise="mean")
        _, held = split_rows(source.frame(0))
        observed, target = degrade_frame(held, source.pixel_scale, kind=kind, boundary="reflect")
        fields.append((f"{Path(simulation).name} (held-out rows)", noisy(observed), target))
    for index, scene in enumerate(scenes):
        continuum, bz = generate(shape, MURAM_PIXEL_SCALE, kind=scene, seed=[HELD_OUT_SEED, index])
        frame = continuum if kind == "intensity" else bz
        observed, target = degrade_frame(frame, MURAM_PIXEL_SCALE, kind=kind, boundary="wrap")
        fields.append((f"synthetic {scene}", noisy(observed), target))
    return fields


def _best_rl(observed, target, data_range, *, kind):
    offset = None if kind == "intensity" else 2 * float(np.abs(observed).max()) + 1e-3
    scored = set(RL_ITERATIONS)
    best = [-np.inf, None, 0]
    falls = [0]

    def score(k, estimate):
        if k not in scored:
            return False
        value = psnr(estimate, target, data_range=data_range)
        if value > best[0]:
            best[:] = [value, estimate, k]
            falls[0] = 0
        else:
            falls[0] += 1
        return falls[0] >= 3

    rl_super_resolve(observed, n_iter=max(RL_ITERATIONS), offset=offset, callback=score)
    return tuple(best)


def evaluate_field(network, observed, target, *, kind):
    """Scores of Enhance, bicubic and best-iteration Richardson-Lucy on one field.

    Parameters
    ----------
    network : `~enhance.models.network.EnhanceNet`
        The network to score.
    observed : numpy.ndarray
        HMI-like input, 0.504 arcsec per pixel, normalised: I/Ic or kG.
    target : numpy.ndarray
        The target on the x2 grid (0.252 arcsec per pixel), in the same unit as ``observed``.
    kind : {'intensity', 'blos'}
        What the images hold.

    Returns
    -------
    dict
        Per method (``'enhance'``, ``'bicubic'``, ``'richardson_lucy'``) the PSNR (dB) and SSIM against
        the target; for continuum the granulation contrast (RMS contrast in the quietest square of at
        most 40 x 40 input pixels, `~enhance.analysis.metrics.quiet_region`) and the mean umbral
        intensity relative to the target; for magnetograms the unsigned flux relative to the target.
        ``'rl_best_iterations'`` is the Richardson-Lucy iteration count scored.

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> (name, observed, target), = held_out_fields("blos", shape=(64, 64), scenes=("plage",))
    >>> scores = evaluate_field(EnhanceNet(depth=1, width=8), observed, target, kind="blos")
    >>> sorted(scores["bicubic"])
    ['psnr', 'ssim', 'unsigned_flux_ratio']
    """
    scale = SCALE[kind]
    # The network wrapper takes I/Ic or gauss; the pairs are normalised (kG for magnetograms).
    enhanced = enhance(observed / scale, kind, network=network, qs_level=1.0) * scale
    data_range = float(target.max() - target.min())
    rl_score, rl_image, rl_iter = _best_rl(observed, target, data_range, kind=kind)
    outputs = {"enhance": enhanced, "bicubic": bicubic_x2(observed), "richardson_lucy": rl_image}
    scores = {"rl_best_iterations": rl_iter}
    if kind == "intensity":
        quiet_in = quiet_region(observed, size=40, qs_level=1.0)
        quiet = scale_region(quiet_in, 2)
    for method, image in outputs.items():
        entry = {"psnr": psnr(image, target, data_range=data_range), "ssim": ssim(image, target, data_range=data_range)}
        if kind == "intensity":
            entry["contrast"] = contrast(image, region=quiet)
            umbra = target < _UMBRA
            entry["umbra_ratio"] = float(image[umbra].mean() / target[umbra].mean()) if umbra.sum() >= 4 else None
        else:
            entry["unsigned_flux_ratio"] = float(np.abs(image).sum() / np.abs(target).sum())
        scores[method] = entry
    if kind == "intensity":
        scores["target_contrast"] = contrast(target, region=quiet)
        scores["input_contrast"] = contrast(observed, region=quiet_in)
        scores["quiet_region_input_pixels"] = [
            [quiet_in[0].start, quiet_in[0].stop],
            [quiet_in[1].start, quiet_in[1].stop],
        ]
    scores["_images"] = {"input": observed, "target": target, **outputs}
    return scores


def validate(networks, kind, *, simulation=None, shape=(800, 800), scenes=_SCENES, noise=True, fields=None):
    """Evaluate several networks on the held-out fields of ``kind``.

    Parameters
    ----------
    networks : dict
        ``name -> EnhanceNet`` (e.g. ``{"full": ..., "light": ...}``).
    kind : {'intensity', 'blos'}
        What the networks enhance.
    simulation : str or `~pathlib.Path`, optional
        A simulation continuum field; see `held_out_fields`.
    shape : tuple of int
        Shape of the synthetic scenes, pixels at 0.0662 arcsec; see `held_out_fields`.
    scenes : sequence of str
        Synthetic scene kinds; see `held_out_fields`.
    noise : bool
        Add HMI's noise to the inputs; see `held_out_fields`.
    fields : list, optional
        Precomputed ``(name, observed, target)`` fields, used instead of drawing them.

    Returns
    -------
    dict
        ``{field name: {network name: scores}}`` (see `evaluate_field`).

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> results = validate({"tiny": EnhanceNet(depth=1, width=8)}, "blos", shape=(64, 64), scenes=("plage",))
    >>> list(results), list(results["synthetic plage"])
    (['synthetic plage'], ['tiny'])
    """
    if fields is None:
        fields = held_out_fields(kind, simulation=simulation, shape=shape, scenes=scenes, noise=noise)
    return {
        name: {label: evaluate_field(net, observed, target, kind=kind) for label, net in networks.items()}
        for name, observed, target in fields
    }


def _is_simulation(field: str) -> bool:
    return field.endswith("(held-out rows)")


def floors(results):
    """The training issue's floors on held-out data, in dB.

    On the held-out simulation field: the full model beats best-iteration Richardson-Lucy by 2 dB and
    bicubic by 5 dB, and the light model is within 1 dB of the full one. Without a simulation field
    (magnetograms: the fields are synthetic), the light model is within 1 dB of full on every field.

    Parameters
    ----------
    results : dict
        From `validate`, with networks named ``'full'`` and (optionally) ``'light'``.

    Returns
    -------
    dict
        ``{check: (value in dB, passed)}``; empty when no network is named ``'full'``.

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> nets = {"full": EnhanceNet(depth=1, width=8), "light": EnhanceNet(depth=1, width=8)}
    >>> checks = floors(validate(nets, "blos", shape=(64, 64), scenes=("plage",)))
    >>> list(checks)
    ['synthetic plage: full - light <= 1 dB']
    """
    simulated = [field for field in results if _is_simulation(field)]
    checks = {}
    for field in simulated or list(results):
        by_model = results[field]
        if "full" not in by_model:
            continue
        full = by_model["full"]
        if simulated:
            gain_rl = full["enhance"]["psnr"] - full["richardson_lucy"]["psnr"]
            gain_bicubic = full["enhance"]["psnr"] - full["bicubic"]["psnr"]
            checks[f"{field}: full - RL >= 2 dB"] = (gain_rl, gain_rl >= 2.0)
            checks[f"{field}: full - bicubic >= 5 dB"] = (gain_bicubic, gain_bicubic >= 5.0)
        if "light" in by_model:
            gap = full["enhance"]["psnr"] - by_model["light"]["enhance"]["psnr"]
            checks[f"{field}: full - light <= 1 dB"] = (gap, gap <= 1.0)
    return checks


def real_data(networks, kind, image=None):
    """Behaviour of each network on real HMI data, next to the published numbers.

    Parameters
    ----------
    networks : dict
        ``name -> EnhanceNet``.
    kind : {'intensity', 'blos'}
        What the networks enhance.
    image : numpy.ndarray, optional
        An HMI image at 0.504 arcsec per pixel, in I/Ic or gauss; defaults to the packaged sample
        cut-out of ``kind``.

    Returns
    -------
    dict
        ``{name: {"numbers": ..., "checks": ...}}``: the numbers of
        `~enhance.analysis.hmi_behaviour.behaviour` and their comparison with the published ranges
        (`~enhance.analysis.hmi_behaviour.checks`).

    Examples
    --------
    >>> import numpy as np
    >>> from enhance.models.network import EnhanceNet
    >>> image = np.random.default_rng(0).normal(0.0, 300.0, (32, 32))
    >>> out = real_data({"tiny": EnhanceNet(depth=1, width=8)}, "blos", image)
    >>> sorted(out["tiny"])
    ['checks', 'numbers']
    """
    from .hmi_behaviour import behaviour, checks

    out = {}
    for label, net in networks.items():
        numbers = behaviour(net, kind, image)
        out[label] = {"numbers": numbers, "checks": checks(numbers, kind)}
    return out


def _behaviour_lines(behaviour, kind):
    from .hmi_behaviour import OBSERVATION_MODEL, PUBLISHED

    names = list(PUBLISHED[kind]) + list(OBSERVATION_MODEL[kind])
    lines = ["## Real HMI data", "",
             "The package's HMI sample cut-out (`enhance.demo.sample_path`), compared with the ranges the paper "
             "reports for its HMI examples (`enhance.analysis.hmi_behaviour.PUBLISHED`) and with what the observation "
             "model implies for the same input (`enhance.analysis.hmi_behaviour.OBSERVATION_MODEL`).", "",
             "| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]  # fmt: skip
    for label, entry in behaviour.items():
        cells = []
        for name in names:
            value, low, high, ok = entry["checks"][name]
            shown = "-" if value is None else f"{value:.3f}"
            cells.append(f"{shown} ({'PASS' if ok else 'FAIL'}, {low:g} to {high:g})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if kind == "intensity":
        first = next(iter(behaviour.values()))["numbers"]
        lines += ["", f"Granulation contrast of the input in the same square: {100 * first['input_contrast']:.2f} %."]
        expected = first.get("umbra_change_expected")
        if expected is not None:
            lines += [
                "",
                f"Umbra change the observation model implies for this input (`implied_target`: converged "
                f"Richardson-Lucy, then the target's Airy blur): {100 * expected:+.1f} %. It depends on the "
                "umbra's size (smaller umbrae receive more scattered light), so the paper's 3-7 % holds for "
                "its spots, not for every spot; `umbra_change_excess` is the network's change minus this one.",
            ]
    return lines + [""]


def _figure(name, images, path, *, kind, overwrite=False):
    from matplotlib.figure import Figure

    from .figures import image_limits, plot_image

    order = ("input", "bicubic", "richardson_lucy", "enhance", "target")
    fig = Figure(figsize=(3.2 * len(order), 3.4), layout="constrained")
    axes = fig.subplots(1, len(order))
    physical = {key: image / SCALE[kind] for key, image in images.items()}  # I/Ic or gauss
    vmin, vmax = image_limits(physical["target"], kind=kind)
    for ax, key in zip(axes, order, strict=True):
        scale = 0.504 if key == "input" else 0.252
        plot_image(physical[key], scale * u.arcsec, ax=ax, kind=kind, vmin=vmin, vmax=vmax,
                   title=key.replace("_", " "), colorbar=key == "target")  # fmt: skip
    fig.suptitle(name)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90), overwrite=overwrite)


def _row(label, method, scores, *, kind):
    entry = scores[method]
    name = method.replace("_", "-")
    if method == "richardson_lucy":
        name += f" ({scores['rl_best_iterations']} it.)"
    cells = [label, name, f"{entry['psnr']:.2f}", f"{entry['ssim']:.3f}"]
    if kind == "intensity":
        umbra = entry["umbra_ratio"]
        cells += [f"{100 * entry['contrast']:.2f} %", "-" if umbra is None else f"{umbra:.3f}"]
    else:
        cells.append(f"{entry['unsigned_flux_ratio']:.3f}")
    return "| " + " | ".join(cells) + " |"


def report(results, out_dir, *, kind, behaviour=None, title=None, overwrite=False):
    """Write ``validation_<kind>.md``, ``validation_<kind>.json`` and one PNG per field and model.

    The JSON file holds ``{"fields": results without images, "floors": {check: [value, passed]},
    "hmi_behaviour": behaviour}``. Each file is written atomically; an earlier report of the same kind
    in ``out_dir`` is replaced only with ``overwrite`` (else `FileExistsError`, before anything is
    written).

    Parameters
    ----------
    results : dict
        From `validate`.
    out_dir : str or `~pathlib.Path`
        Folder of the report; created if missing.
    kind : {'intensity', 'blos'}
        What the networks enhance.
    behaviour : dict, optional
        From `real_data`: a "Real HMI data" section.
    title : str, optional
        Heading of the Markdown report.
    overwrite : bool
        Replace an earlier report of the same kind.

    Returns
    -------
    pathlib.Path
        The Markdown file.

    Examples
    --------
    >>> import tempfile
    >>> from enhance.models.network import EnhanceNet
    >>> results = validate({"tiny": EnhanceNet(depth=1, width=8)}, "blos", shape=(64, 64), scenes=("plage",))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     print(report(results, folder, kind="blos").name)
    validation_blos.md
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"validation_{kind}.md"
    if path.exists() and not overwrite:
        msg = f"{path} exists; pass overwrite=True to replace the report"
        raise FileExistsError(msg)
    header = ["model", "method", "PSNR [dB]", "SSIM"]
    header += ["granulation contrast", "umbra / target"] if kind == "intensity" else ["unsigned flux / target"]
    lines = [
        f"# {title or f'Validation of the {kind} models'}",
        "",
        f"solar-enhance {__version__}. Held-out fields degraded with the observation model, HMI noise on the "
        "inputs; every score is against the target (28 cm Airy at 0.252 arcsec/px). Richardson-Lucy is shown at "
        "its best iteration count against the target.",
        "",
    ]
    clean = {}
    for number, (field, by_model) in enumerate(results.items(), start=1):
        clean[field] = {
            label: {k: v for k, v in scores.items() if k != "_images"} for label, scores in by_model.items()
        }
        lines += [f"## {field}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, scores in by_model.items():
            lines += [_row(label, method, scores, kind=kind) for method in ("bicubic", "richardson_lucy", "enhance")]
        if kind == "intensity":
            first = next(iter(clean[field].values()))
            lines += ["", f"Granulation contrast (quietest square, input pixels {first['quiet_region_input_pixels']}) "
                      f"of the target {100 * first['target_contrast']:.2f} %, "
                      f"of the input {100 * first['input_contrast']:.2f} %."]  # fmt: skip
        lines.append("")
        for label, scores in by_model.items():
            png = out_dir / f"validation_{kind}_{number}_{label}.png"
            _figure(f"{field}: {label}", scores["_images"], png, kind=kind, overwrite=overwrite)
            lines.append(f"![{field}, {label}]({png.name})")
        lines.append("")
    if behaviour:
        lines += _behaviour_lines(behaviour, kind)
    checks = floors(clean)
    if checks:
        lines += ["## Floors", ""]
        lines += [f"- {'PASS' if ok else 'FAIL'}: {name} ({value:+.2f} dB)" for name, (value, ok) in checks.items()]
    summary = {"fields": clean, "floors": checks, "hmi_behaviour": behaviour or {}}
    text, numbers = "\n".join(lines) + "\n", json.dumps(summary, indent=1, default=float)
    atomic_write(out_dir / f"validation_{kind}.json", lambda tmp: Path(tmp).write_text(numbers), overwrite=overwrite)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text), overwrite=overwrite)
    return path
