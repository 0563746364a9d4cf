"""Validation on data never used for training: the held-out part of a simulation and held-out scenes.

For each model, every held-out field is degraded with the observation model, enhanced, and compared
with its target next to bicubic interpolation and Richardson-Lucy at its best iteration count:
PSNR, SSIM, granulation contrast, umbral intensity and unsigned flux. `report` writes it all as
Markdown with figures.

The split is fixed in `enhance.training.datasets` so that training and validation agree on it: the last
`~enhance.training.datasets.SIMULATION_HOLDOUT` of the rows of a simulation field and the synthetic scenes of
seed `~enhance.training.datasets.HELD_OUT_SEED` are never trained on.
"""

import dataclasses
import json
import os
import shlex
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from scipy import ndimage

from .. import exceptions
from .._version import __version__
from ..checks import check_choice
from ..constants import GAUSS_PER_KG, HMI_PIXEL_SCALE, KINDS, TARGET_PIXEL_SCALE
from ..cores import cpu_model
from ..data import sample_path
from ..exceptions import OutputExistsError
from ..grid import on_output_grid
from ..inference.api import enhance
from ..inference.pipeline import RunOptions, enhance_array, noise_choice
from ..io import atomic_write
from ..models.pretrained import FACTORIES, load_network
from ..models.runner import DIHEDRAL, dihedral_transform
from ..observation import psf
from ..observation.degrade import bin_area
from ..runtime.runners import as_runner
from ..scenes.sources import open_source
from ..scenes.synth import MURAM_PIXEL_SCALE, generate
from ..training.datasets import HELD_OUT_SEED, NOISE, SCALE, degrade_frame, split_rows
from .baselines import ForwardModel, bicubic_x2, rl_super_resolve, rl_target, rl_target_best, wiener_target
from .hmi_behaviour import OBSERVATION_MODEL, PUBLISHED, UMBRA_THRESHOLD, behaviour, checks, umbra_change
from .metrics import contrast, psnr, quiet_region, scale_region, ssim

__all__ = [
    "held_out_fields",
    "evaluate_field",
    "validate",
    "report",
    "floors",
    "real_data",
    "RL_ITERATIONS",
    "NOISE_FACTORS",
    "BANDS",
    "MISMATCHES",
    "PhysicsConfig",
    "physics_frames",
    "compare_networks",
    "comparison_table",
    "FLICKER_ROW",
    "SSIM_ROW",
    "row_metric",
    "band_spectra",
    "equivariance",
    "flicker",
    "physics_validation",
    "physics_floors",
    "physics_report",
    "machine_description",
    "report_path",
    "validation_networks",
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
    check_choice(kind, KINDS, name="kind")
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
    enhanced = enhance(observed / scale, kind, network=network, qs_level=1.0 if kind == "intensity" else None) * scale
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
    out = {}
    for label, net in networks.items():
        numbers = behaviour(net, kind, image)
        out[label] = {"numbers": numbers, "checks": checks(numbers, kind)}
    return out


def _behaviour_lines(behaviour, kind):
    names = list(PUBLISHED[kind]) + list(OBSERVATION_MODEL[kind])
    lines = ["## Real HMI data", "",
             "The package's HMI sample cut-out (`enhance.data.sample_path`), compared with the ranges the paper "
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
        scale = HMI_PIXEL_SCALE if key == "input" else TARGET_PIXEL_SCALE
        plot_image(physical[key], scale, ax=ax, kind=kind, vmin=vmin, vmax=vmax,
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
    path = report_path(out_dir, kind=kind, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
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


# ----------------------------------------------------------------------------------------------------------
# The physicist's validation: against RL+target and Wiener, over noise, PSF mismatch, symmetry and limb.
# ----------------------------------------------------------------------------------------------------------

#: Noise levels of the physics validation, in units of HMI's noise (`~enhance.training.datasets.NOISE`).
NOISE_FACTORS = (0.5, 1.0, 3.0, 10.0)

#: Rows of `compare_networks` that hold the half-pixel `flicker` (lower is better).
FLICKER_ROW = "half-pixel flicker"
#: The end of the names of `compare_networks`' rows that hold SSIM rather than PSNR.
SSIM_ROW = ", SSIM"
#: Spatial-frequency bands (cycles per arcsec) of the power and coherence rows; the x2 grid's Nyquist is 1.98.
BANDS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.7), (0.7, 1.0), (1.0, 1.5), (1.5, 2.0))
#: PSF mismatches: the HMI PSF of the held-out data differs from the one the models and baselines assume.
MISMATCHES = {
    "Wachter et al. 2012 PSF": {"hmi_params": "WACHTER_2012"},
    'far wing to 16"': {"radius": "WIDE_RADIUS"},
}
#: ``|B|`` (gauss) above which the magnetogram check counts polarity flips.
STRONG_SIGN = 500.0
_BASELINES = ("bicubic", "RL+target best", "RL+target discrepancy", "Wiener")


@dataclasses.dataclass(frozen=True)
class PhysicsConfig:
    """Sizes and choices of `physics_validation`; the defaults run in minutes on a CPU.

    Parameters
    ----------
    simulation : str, optional
        Simulation continuum field whose held-out rows are one field (e.g. the MURaM field).
    shape : tuple of int
        Synthetic held-out scenes, pixels at 0.0662 arcsec (800 gives 105 HMI pixels).
    scenes : tuple of str
        Synthetic scene kinds.
    noise_factors : tuple of float
        Noise levels in units of HMI's noise.
    rl_iterations : tuple of int
        Iteration counts scored for RL+target at its best iteration; those beyond ``rl_max`` are left out
        and ``rl_max`` itself is always scored.
    rl_max : int
        Most iterations of RL+target (at its best iteration and with the discrepancy stop).
    rl_converged : int
        Iterations of the converged RL+target of the umbra row.
    symmetric : bool
        Also score each network averaged over the 8 rotations and flips (8 times the cost).
    real_crop : int
        Central square (HMI pixels) of the real cut-outs used for equivariance and flicker; 0 uses all.
    hmi : tuple of str
        Real HMI cut-outs ``(continuum AR, magnetogram AR, continuum quiet Sun)``: None takes the packaged
        sample for the first two and skips the third; a missing file is skipped. Raw counts (a median
        above 10) are divided by their mean.
    limb_shape : tuple of int
        Synthetic limb cut-out, pixels at 0.0662 arcsec.
    border : int
        Output pixels along each edge of the held-out fields left out of every score (at most a quarter
        of the field): there the result depends on what is assumed beyond the field (the synthetic
        fields are periodic, and the baselines are told so; the networks mirror the image), not on the
        method.
    contrast_powers : tuple of float
        Continuum only: more held-out fields, the simulation's rows and the synthetic active region with
        their intensities raised to each power ``p`` (``I ** p``, the Wien law's change of contrast with
        wavelength): 0.48, 0.72 and 1.44 give the MURaM rows 2, 3 and 6 % contrast at HMI's sampling
        (4.2 % as simulated), and 0.72 maps a 617 nm scene to about 854 nm.
    observations : tuple of (str, float, str)
        Real high-resolution observations to degrade and score: ``(path, pixel_scale_arcsec, label)``;
        FITS or ``.npy``, continuum divided by its median.

    Examples
    --------
    >>> config = PhysicsConfig(shape=(64, 64), scenes=("plage",), noise_factors=(1.0, 3.0))
    >>> config.noise_factors, PhysicsConfig(rl_max=100).rl_iterations[-3:]
    ((1.0, 3.0), (50, 80, 100))
    """

    simulation: str | None = None
    shape: tuple = (800, 800)
    scenes: tuple = _SCENES
    noise_factors: tuple = NOISE_FACTORS
    rl_iterations: tuple = (1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200, 300, 500, 800, 1200, 2000, 3000)
    rl_max: int = 3000
    rl_converged: int = 1000
    symmetric: bool = True
    real_crop: int = 96
    hmi: tuple = (None, None, None)
    limb_shape: tuple = (600, 600)
    border: int = 16
    contrast_powers: tuple = (0.48, 0.72, 1.44)
    observations: tuple = ()

    def __post_init__(self) -> None:
        counts = tuple(sorted({int(k) for k in self.rl_iterations if k < self.rl_max} | {int(self.rl_max)}))
        object.__setattr__(self, "rl_iterations", counts)  # RL runs to rl_max: what it scores stops there

    def command(self, kind: str, output, *, weights=()) -> str:
        """The ``enhance validate --physics`` command line that runs this configuration (for its report).

        Parameters
        ----------
        kind : {'intensity', 'blos'}
            What is validated.
        output : str or `~pathlib.Path`
            The report's folder.
        weights : sequence of str
            The ``--weights`` items (``NAME=FILE``), if any.

        Returns
        -------
        str
            A shell command (each word quoted as needed).

        Examples
        --------
        >>> PhysicsConfig(rl_max=300, shape=(64, 64)).command("blos", "out").split()[4:10]
        ['blos', '--shape', '64', '64', '--rl-max', '300']
        """
        words = ["enhance", "validate", "--physics", "--kind", kind, "--shape", *map(str, self.shape),
                 "--rl-max", str(self.rl_max), "--rl-converged", str(self.rl_converged),
                 "--real-crop", str(self.real_crop), "-o", str(output)]  # fmt: skip
        hmi = self.hmi[0] if kind == "intensity" else self.hmi[1]
        for flag, value in (("--simulation", self.simulation), ("--hmi", hmi), ("--hmi-qs", self.hmi[2])):
            words += [flag, str(value)] if value else []
        words += [f"--weights={item}" for item in weights]
        words += [] if self.symmetric else ["--no-symmetric"]
        words += ["--contrast-powers", *map(str, self.contrast_powers)] if kind == "intensity" else []
        for path, scale, label in self.observations:
            words += ["--observation", str(path), str(scale), str(label)]
        return " ".join(shlex.quote(word) for word in words)


def physics_frames(kind: str, config: PhysicsConfig) -> list:
    """The held-out frames of `physics_validation`, before degradation.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or field.
    config : PhysicsConfig
        The simulation, synthetic scenes, contrast powers and observations to include.

    Returns
    -------
    list of tuple
        ``(name, frame, pixel_scale, boundary)``, frames in I/Ic or gauss.

    Examples
    --------
    >>> [name for name, *_ in physics_frames("blos", PhysicsConfig(shape=(64, 64), scenes=("plage",)))]
    ['synthetic plage']
    """

    frames = []
    if config.simulation is not None and kind == "intensity":
        source = open_source(config.simulation, kind="intensity", normalise="mean")
        _, held = split_rows(source.frame(0))
        frames.append((f"{Path(config.simulation).name} (held-out rows)", held, source.pixel_scale, "reflect"))
    for index, scene in enumerate(config.scenes):
        continuum, bz = generate(config.shape, MURAM_PIXEL_SCALE, kind=scene, seed=[HELD_OUT_SEED, index])
        frames.append((f"synthetic {scene}", continuum if kind == "intensity" else bz, MURAM_PIXEL_SCALE, "wrap"))
    if kind == "intensity":
        frames += _contrast_frames(frames, config.contrast_powers)
        for path, pixel_scale, label in config.observations:
            source = open_source(path, kind="intensity", pixel_scale=float(pixel_scale) * u.arcsec, normalise="median")
            frames.append((f"{label} ({Path(path).name})", source.frame(0), source.pixel_scale, "reflect"))
    return frames


def _contrast_frames(frames, powers):
    """The simulation's and the synthetic active region's frames at other contrasts: ``I ** p``, renormalised."""
    out = []
    for power in powers:
        for name, frame, scale, boundary in frames:
            if name.endswith("(held-out rows)") or name == "synthetic active_region":
                varied = np.clip(frame, 0.0, None) ** power
                level = float(np.mean(varied) if boundary == "reflect" else np.median(varied))
                out.append((f"{name}, I^{power:g}", varied / level, scale, boundary))
    return out


def _mismatch_options(name):
    return {key: getattr(psf, value) for key, value in MISMATCHES[name].items()}


def _run_network(network, image, kind, *, symmetric):
    """The pipeline on a normalised image (I/Ic or kG): what `enhance` does, with qs_level 1."""
    scale = SCALE[kind]
    options = RunOptions(qs_level=1.0 if kind == "intensity" else None, symmetric=symmetric, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", exceptions.NoiseLevelWarning
        )  # the validation runs at up to 10 x HMI's noise on purpose
        image = enhance_array(np.asarray(image, np.float32) / scale, kind=kind, network=network, options=options)
    return image * scale


def _variants(networks, symmetric):
    """``label -> (network, symmetric)``: each network, and its D4 average."""
    out = {}
    for label, network in networks.items():
        out[label] = (network, False)
        # A network that averages itself needs no D4 row; one told the noise level has its D4 row as a model of its
        # own ('full' is the D4 average of the 'light' weights).
        runner = as_runner(network)
        if symmetric and not runner.symmetric and not runner.needs_noise:
            out[f"{label} D4"] = (network, True)
    return out


def band_spectra(image, reference, pixel_scale: u.arcsec = TARGET_PIXEL_SCALE, *, bands=BANDS):
    """Power ratio and coherence of an image with a reference in annular frequency bands.

    Parameters
    ----------
    image, reference : (ny, nx) array_like
        The image and the reference (the target), same shape.
    pixel_scale : `~astropy.units.Quantity`
        Their pixel scale; defaults to 0.252 arcsec.
    bands : sequence of (float, float)
        Frequency bands in cycles per arcsec.

    Returns
    -------
    list of (float, float)
        Per band, :math:`\\sum|\\hat I|^2 / \\sum|\\hat R|^2` and the coherence
        :math:`\\mathrm{Re}\\sum \\hat I \\overline{\\hat R} / \\sqrt{\\sum|\\hat I|^2 \\sum|\\hat R|^2}`
        (1: the same structure; 0: unrelated), of the mean-subtracted, Hann-windowed images.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(64, 64))
    >>> [round(float(c), 6) for _, c in band_spectra(2 * x, x, bands=((0.5, 1.0),))], band_spectra(2 * x, x)[2][0]
    ([1.0], 4.0)
    """
    a = np.asarray(image, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa = np.fft.fft2((a - a.mean()) * window)
    fb = np.fft.fft2((b - b.mean()) * window)
    dx = float(pixel_scale.to_value(u.arcsec))
    f = np.hypot(np.fft.fftfreq(a.shape[0], dx)[:, None], np.fft.fftfreq(a.shape[1], dx)[None, :])
    out = []
    for low, high in bands:
        inside = (f >= low) & (f < high)
        pa, pb = float(np.sum(np.abs(fa[inside]) ** 2)), float(np.sum(np.abs(fb[inside]) ** 2))
        cross = float(np.sum(fa[inside] * np.conj(fb[inside])).real)
        coherence = cross / float(np.sqrt(pa * pb)) if pa * pb > 0 else float("nan")
        out.append((pa / pb if pb > 0 else float("nan"), coherence))
    return out


def _interior(images, target, border):
    """The images and target without ``border`` pixels along each edge (at most a quarter of the field)."""
    border = min(border, min(target.shape) // 4)
    if border <= 0:
        return images, target
    inner = (slice(border, target.shape[0] - border), slice(border, target.shape[1] - border))
    return {method: image[inner] for method, image in images.items()}, target[inner]


def _score(image, target, kind):
    data_range = float(target.max() - target.min())
    entry = {"psnr": psnr(image, target, data_range=data_range), "ssim": ssim(image, target, data_range=data_range)}
    return entry


def _baselines(observed, target, sigma, model, config):
    best, k_best = rl_target_best(observed, target, model, iterations=config.rl_iterations)
    disc, info = rl_target(observed, model, noise=sigma, n_iter=config.rl_max, return_info=True)
    images = {"bicubic": bicubic_x2(observed), "RL+target best": best, "RL+target discrepancy": disc,
              "Wiener": wiener_target(observed, model, noise=sigma)}  # fmt: skip
    return images, {"RL+target best": k_best, "RL+target discrepancy": info["n_iter"]}


def _held_out_rows(networks, kind, config, log, *, baselines=True):
    """PSNR/SSIM per field, noise level and method; power and coherence at each noise level; PSF mismatch.

    ``baselines=False`` scores the networks only (no bicubic, RL+target or Wiener)."""
    variants = _variants(networks, config.symmetric)
    sigma_hmi = NOISE[kind] * SCALE[kind]
    rows, spectra, mismatch = {}, {}, {}
    for field_index, (name, frame, scale, boundary) in enumerate(physics_frames(kind, config)):
        model = ForwardModel(boundary=boundary)
        clean, target = degrade_frame(frame, scale, kind=kind, boundary=boundary)
        clean, target = clean.astype(np.float64), target.astype(np.float64)
        rows[name], spectra[name] = {}, {}
        for level_index, factor in enumerate(config.noise_factors):
            rng = np.random.default_rng([HELD_OUT_SEED, field_index, level_index])
            sigma = factor * sigma_hmi
            observed = clean + rng.normal(0.0, sigma, clean.shape)
            images, iterations = _baselines(observed, target, sigma, model, config) if baselines else ({}, {})
            for label, (network, symmetric) in variants.items():
                images[label] = _run_network(network, observed, kind, symmetric=symmetric)
            key = f"{factor:g}"
            images, target_in = _interior(images, target, config.border)
            rows[name][key] = {method: _score(image, target_in, kind) for method, image in images.items()}
            for method, k in iterations.items():
                rows[name][key][method]["n_iter"] = k
            spectra[name][key] = {method: band_spectra(image, target_in) for method, image in images.items()}
            log(f"{name}: {factor:g} x HMI noise done")
        if ", I^" in name:  # a contrast variant: the PSF mismatch rows are its original field's
            continue
        # PSF mismatch at HMI's noise: the data come from another PSF; models and baselines assume the nominal one.
        mismatch[name] = {}
        for mismatch_index, variant in enumerate(MISMATCHES):
            observed, target_m = degrade_frame(frame, scale, kind=kind, boundary=boundary, **_mismatch_options(variant))
            rng = np.random.default_rng([HELD_OUT_SEED, field_index, 100 + mismatch_index])
            observed = observed.astype(np.float64) + rng.normal(0.0, sigma_hmi, observed.shape)
            target_m = target_m.astype(np.float64)
            images, iterations = (_baselines(observed, target_m, sigma_hmi, model, config) if baselines
                                  else ({}, {}))  # fmt: skip
            for label, (network, symmetric) in variants.items():
                images[label] = _run_network(network, observed, kind, symmetric=symmetric)
            inner, target_in = _interior(images, target_m, config.border)
            scores = {method: _score(image, target_in, kind) for method, image in inner.items()}
            if kind == "intensity":
                quiet = scale_region(quiet_region(observed, size=40, qs_level=1.0), 2)
                reference = contrast(target_m, region=quiet)
                for method, image in images.items():
                    scores[method]["contrast_ratio"] = contrast(image, region=quiet) / reference
            for method, k in iterations.items():
                scores[method]["n_iter"] = k
            mismatch[name][variant] = scores
            log(f"{name}: {variant} done")
    return rows, spectra, mismatch


def _read_real(path, kind):
    if path is None:
        path = sample_path(kind)
    path = Path(path)
    if not path.exists():
        return None
    data = fits.getdata(path).astype(np.float64)
    if kind == "intensity" and float(np.nanmedian(data)) > 10:  # raw counts: to I/Ic by the mean
        data = data / float(np.nanmean(data))
    return path.name, data


def _crop(image, size):
    if not size or min(image.shape) <= size:
        return image
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return np.ascontiguousarray(image[top : top + size, left : left + size])


#: The 7 rotations and flips other than the identity (`~enhance.models.runner.DIHEDRAL`).
GROUP = DIHEDRAL[1:]


def equivariance(run, image):
    """RMS(f(T x) - T f(x)) / RMS(f(x) - bicubic(x)) for the 7 rotations and flips T other than the identity.

    Parameters
    ----------
    run : callable
        The method: ``(ny, nx)`` image to ``(2 ny, 2 nx)``.
    image : (ny, nx) array_like
        The input.

    Returns
    -------
    list of float
        One ratio per group element (quarter turns 1-3, then the transpose with 0-3 quarter turns).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(size=(16, 16))
    >>> max(equivariance(lambda x: 2 * bicubic_x2(x), image)) < 1e-12
    True
    """
    image = np.asarray(image, dtype=np.float64)
    out = run(image)
    scale = float(np.sqrt(np.mean((out - bicubic_x2(image)) ** 2)))
    ratios = []
    for element in GROUP:
        moved = run(dihedral_transform(image, element))
        ratios.append(float(np.sqrt(np.mean((moved - dihedral_transform(out, element)) ** 2))) / scale)
    return ratios


def flicker(run, image, *, margin: int = 8):
    """RMS(f(S x) - S f(x)) / RMS(f(x) - bicubic(x)) for a shift S of half an input pixel, along y and x.

    The input is shifted by a cubic spline (mirrored edges); on the x2 grid half an input pixel is one
    output pixel, so S moves the output by exactly one pixel.

    Parameters
    ----------
    run : callable
        ``run(image) -> output`` on the x2 grid (a network wrapped in `~enhance.inference.api.enhance`,
        or a baseline).
    image : numpy.ndarray
        The input, ``(ny, nx)``, any unit.
    margin : int
        Input pixels at the edges left out of the RMS.

    Returns
    -------
    tuple of float
        The two ratios (shift along y, along x), dimensionless.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(size=(32, 32))
    >>> [round(r, 6) for r in flicker(bicubic_x2, image)]  # bicubic adds nothing: the ratio is undefined
    [nan, nan]
    """
    image = np.asarray(image, dtype=np.float64)
    out = run(image)
    inner = (slice(2 * margin, -2 * margin), slice(2 * margin, -2 * margin))
    scale = float(np.sqrt(np.mean((out - bicubic_x2(image))[inner] ** 2)))
    ratios = []
    for axis in (0, 1):
        shift = [0.0, 0.0]
        shift[axis] = 0.5
        moved = run(ndimage.shift(image, shift, order=3, mode="mirror"))
        expected = np.roll(out, 1, axis=axis)
        rms = float(np.sqrt(np.mean((moved - expected)[inner] ** 2)))
        ratios.append(rms / scale if scale > 0 else float("nan"))
    return ratios


def _limb_field(config):
    """A synthetic limb cut-out: quiet-Sun granulation under limb darkening, space (0) beyond the limb."""
    continuum, _ = generate(config.limb_shape, MURAM_PIXEL_SCALE, kind="quiet_sun", seed=[HELD_OUT_SEED, 99])
    continuum = continuum / continuum.mean()
    scale = float(MURAM_PIXEL_SCALE.to_value(u.arcsec))
    limb_column = int(0.6 * config.limb_shape[1])
    inside = (limb_column - np.arange(config.limb_shape[1])) * scale  # arcsec inside the limb
    radius = 960.0
    mu = np.sqrt(np.clip(1 - ((radius - inside) / radius) ** 2, 0, 1))
    darkening = np.where(inside > 0, 1 - 0.6 * (1 - mu), 0.0)  # linear limb darkening, u = 0.6
    frame = continuum * darkening[None, :]
    observed, _ = degrade_frame(frame, MURAM_PIXEL_SCALE, kind="intensity", boundary="reflect")
    observed = observed.astype(np.float64)
    observed += np.random.default_rng([HELD_OUT_SEED, 98]).normal(0.0, NOISE["intensity"], observed.shape)
    input_scale = float(HMI_PIXEL_SCALE.to_value(u.arcsec))
    off_limb = np.arange(observed.shape[1]) * input_scale >= limb_column * scale  # whole input pixels off the disk
    return observed, np.broadcast_to(off_limb[None, :], observed.shape)


def _raw_network(network, image):
    """The network alone on a continuum image in I/Ic (no clip): what the pipeline gave before the clip."""
    runner = as_runner(network)
    if runner.needs_noise:  # told the noise level: the one the pipeline measures
        runner = runner.bind(noise_choice(image, nominal=runner.noise_unit, warn=False).value)
    return runner(np.asarray(image, np.float32)[None, None])[0, 0].astype(np.float64)


def _on_cutout(network, kind, *, symmetric):
    """``run(image)`` of a network on a real cut-out in I/Ic or gauss (`_run_network` takes I/Ic or kG)."""
    scale = SCALE[kind]
    return lambda image: _run_network(network, image * scale, kind, symmetric=symmetric) / scale


def _real_cutouts(kind, config):
    """``(name, image)`` of the real HMI cut-outs of ``config`` for ``kind`` that exist."""
    if kind == "intensity":
        paths = [config.hmi[0]] + ([config.hmi[2]] if config.hmi[2] is not None else [])
    else:
        paths = [config.hmi[1]]
    return [found for found in (_read_real(path, kind) for path in paths) if found is not None]


def _real_rows(networks, kind, config, log):
    """Equivariance, flicker, umbra, limb and magnetogram flux on real HMI cut-outs and a synthetic limb."""
    variants = _variants(networks, config.symmetric)
    model = ForwardModel()
    out = {"symmetry": {}, "umbra": {}, "limb": {}, "magnetogram": {}}
    for name, image in _real_cutouts(kind, config):
        crop = _crop(image, config.real_crop)
        sigma = NOISE[kind]  # HMI's noise in I/Ic or gauss, as the user would give it
        _, info = rl_target(crop, model, noise=sigma, n_iter=config.rl_max, return_info=True)
        k = max(info["n_iter"], 1)
        methods = {
            "RL+target discrepancy": lambda x, k=k: rl_target(x, model, n_iter=k, stop="n_iter"),
            "Wiener": lambda x, s=sigma: wiener_target(x, model, noise=s),
        }
        for label, (network, symmetric) in variants.items():
            methods[label] = _on_cutout(network, kind, symmetric=symmetric)
        table = {}
        for method, run in methods.items():
            table[method] = {"equivariance": equivariance(run, crop), "flicker": flicker(run, crop)}
        table["RL+target discrepancy"]["n_iter"] = k
        out["symmetry"][name] = table
        log(f"{name}: equivariance and flicker done")
        if kind == "intensity" and np.any(image < UMBRA_THRESHOLD):
            converged = rl_target(image, model, n_iter=config.rl_converged, stop="n_iter")
            umbra = {f"RL+target ({config.rl_converged} it.)": umbra_change(image, converged)}
            for label, (network, symmetric) in variants.items():
                umbra[label] = umbra_change(image, _run_network(network, image, kind, symmetric=symmetric))
            out["umbra"][name] = umbra
        if kind == "blos":
            strong = np.abs(image) > STRONG_SIGN
            rows = {}
            noise = NOISE[kind]
            outputs = {"RL+target discrepancy": rl_target(image, model, noise=noise, n_iter=config.rl_max),
                       "Wiener": wiener_target(image, model, noise=noise)}  # fmt: skip
            for label, (network, symmetric) in variants.items():
                outputs[label] = _run_network(network, image * SCALE[kind], kind, symmetric=symmetric) * GAUSS_PER_KG
            for method, output in outputs.items():
                binned = bin_area(output, 2)
                rows[method] = {
                    "unsigned_flux_ratio": float(np.abs(binned).sum() / np.abs(image).sum()),
                    "sign_flips": int(np.count_nonzero(strong & (np.sign(binned) != np.sign(image)))),
                    "strong_pixels": int(np.count_nonzero(strong)),
                }
            out["magnetogram"][name] = rows
    if kind == "intensity":
        observed, off_limb = _limb_field(config)
        halo = off_limb & (observed >= 0)
        halo2 = on_output_grid(halo)
        sigma = NOISE["intensity"]
        # offset 0: RL for a continuum image (non-negative), though noise makes some off-limb inputs negative.
        outputs = {"RL+target discrepancy": rl_target(observed, model, noise=sigma, n_iter=config.rl_max, offset=0.0),
                   "Wiener": wiener_target(observed, model, noise=sigma)}  # fmt: skip
        for label, (network, symmetric) in variants.items():
            outputs[label] = _run_network(network, observed, kind, symmetric=symmetric)
            if not symmetric:
                outputs[f"{label} (network alone, no clip)"] = _raw_network(network, observed)
        out["limb"] = {
            method: {"negative_fraction": float(np.mean(output[halo2] < 0)), "halo_input_pixels": int(halo.sum())}
            for method, output in outputs.items()
        }
        log("limb done")
    return out


def physics_validation(networks, kind, config: PhysicsConfig | None = None, *, log=None):
    """Score the networks against RL+target and Wiener deconvolution under noise, PSF mismatch and symmetry.

    Parameters
    ----------
    networks : dict
        ``name -> network`` (e.g. ``{"full": ..., "light": ...}``).
    kind : {'intensity', 'blos'}
        What the networks enhance.
    config : `PhysicsConfig`, optional
        Sizes and choices; the defaults run in minutes on a CPU.
    log : callable, optional
        Called with a line of progress.

    Returns
    -------
    dict
        ``{"noise": {field: {factor: {method: {"psnr", "ssim"[, "n_iter"]}}}},
        "spectra": {field: {factor: {method: [(power ratio, coherence) per band]}}},
        "mismatch": {field: {variant: {method: scores}}}, "symmetry", "umbra", "limb", "magnetogram",
        "config"}``. Methods are bicubic, RL+target at its best iteration (against the truth: validation
        only) and with the discrepancy stop at the known noise, Wiener at the known noise, every network
        and, with ``config.symmetric``, its D4 average (label + " D4").

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> config = PhysicsConfig(shape=(64, 64), scenes=("plage",), noise_factors=(1.0,), rl_iterations=(1, 2),
    ...                        rl_max=4, rl_converged=4, real_crop=32, limb_shape=(64, 64))
    >>> results = physics_validation({"tiny": EnhanceNet(depth=1, width=8)}, "blos", config)
    >>> sorted(results)
    ['config', 'limb', 'magnetogram', 'mismatch', 'noise', 'spectra', 'symmetry', 'umbra']
    """
    check_choice(kind, KINDS, name="kind")
    config = PhysicsConfig() if config is None else config
    log = log or (lambda line: None)
    rows, spectra, mismatch = _held_out_rows(networks, kind, config, log)
    real = _real_rows(networks, kind, config, log)
    settings = {key: (list(value) if isinstance(value, tuple) else value)
                for key, value in dataclasses.asdict(config).items()}  # fmt: skip
    return {"noise": rows, "spectra": spectra, "mismatch": mismatch, **real, "config": settings}


def compare_networks(networks, kind, config: PhysicsConfig | None = None, *, log=None) -> dict:
    """PSNR of each network on every held-out row of `physics_validation`, without the baselines.

    The rows (fields, noise levels, contrasts, PSF mismatches; PSNR and SSIM), their noise draws and the
    D4 averages are those of `physics_validation`, and so is the half-pixel `flicker` on the real cut-outs, so that new
    weights can be held against shipped ones row by row in a fraction of its time (RL+target, the
    spectra, the umbra and the limb are left out).

    Parameters
    ----------
    networks : dict
        ``name -> network``.
    kind : {'intensity', 'blos'}
        What the networks enhance.
    config : `PhysicsConfig`, optional
        The fields and noise levels (``rl_*`` and ``real_crop`` are not used).
    log : callable, optional
        Called with a line of progress.

    Returns
    -------
    dict
        ``{row: {method: value}}``: PSNR (dB) on rows named ``"field, N x"`` (noise in units of HMI's) or
        ``"field, mismatch"``, SSIM on the same rows named with `SSIM_ROW` appended, the flicker ratio on
        rows ``"cut-out, half-pixel flicker along y"`` (and x); methods are the networks and, with
        ``config.symmetric``, their D4 averages.

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> config = PhysicsConfig(shape=(64, 64), scenes=("plage",), noise_factors=(1.0,), real_crop=32)
    >>> rows = compare_networks({"tiny": EnhanceNet(depth=1, width=8)}, "blos", config)
    >>> sorted(rows)[:2], len(rows)
    (['hmi_blos_ar.fits, half-pixel flicker along x', 'hmi_blos_ar.fits, half-pixel flicker along y'], 8)
    >>> sorted(rows["synthetic plage, 1 x"])
    ['tiny', 'tiny D4']
    """
    check_choice(kind, KINDS, name="kind")
    config = PhysicsConfig() if config is None else config
    log = log or (lambda line: None)
    rows, _, mismatch = _held_out_rows(networks, kind, config, log, baselines=False)
    out = {}
    for metric, suffix in (("psnr", ""), ("ssim", SSIM_ROW)):
        out.update({f"{field}, {factor} x{suffix}": {method: scores[metric] for method, scores in methods.items()}
                    for field, levels in rows.items() for factor, methods in levels.items()})  # fmt: skip
        out.update({f"{field}, {variant}{suffix}": {method: scores[metric] for method, scores in methods.items()}
                    for field, variants in mismatch.items() for variant, methods in variants.items()})  # fmt: skip
    variants = _variants(networks, config.symmetric)
    for name, image in _real_cutouts(kind, config):
        crop = _crop(image, config.real_crop)
        found = {label: flicker(_on_cutout(network, kind, symmetric=symmetric), crop)
                 for label, (network, symmetric) in variants.items()}  # fmt: skip
        for axis, along in enumerate("yx"):
            out[f"{name}, {FLICKER_ROW} along {along}"] = {label: ratios[axis] for label, ratios in found.items()}
        log(f"{name}: flicker done")
    return out


def row_metric(row: str) -> str:
    """What a row of `compare_networks` holds, by its name.

    Parameters
    ----------
    row : str
        A row name of `compare_networks`.

    Returns
    -------
    str
        'PSNR', 'SSIM' or 'flicker'.

    Examples
    --------
    >>> [row_metric(row) for row in ("a, 1 x", "a, 1 x, SSIM", "cut-out, half-pixel flicker along y")]
    ['PSNR', 'SSIM', 'flicker']
    """
    return "flicker" if FLICKER_ROW in row else "SSIM" if row.endswith(SSIM_ROW) else "PSNR"


#: Per metric of `row_metric`: the decimals the reports print it to, and +1 where higher is better, -1 where lower.
_ROUNDING = {"PSNR": (2, 1), "SSIM": (3, 1), "flicker": (3, -1)}


def comparison_table(rows: dict, reference: str) -> tuple:
    """A Markdown table of each method's value minus ``reference``'s, and on how many rows each is as good.

    Differences are taken after rounding each value as the validation reports print them: PSNR to
    0.01 dB and SSIM to 0.001 (higher is better), flicker to 0.001 (lower is better).

    Parameters
    ----------
    rows : dict
        `compare_networks`' result.
    reference : str
        The network the others are held against (its D4 average is the reference of their D4 averages).

    Returns
    -------
    table : str
        One line per row, one column per method other than the reference's.
    kept : dict
        ``method -> (rows where it is as good as the reference or better, rows)``.

    Examples
    --------
    >>> rows = {"a, 1 x": {"old": 30.004, "new": 30.1}, "b, 1 x": {"old": 20.0, "new": 19.98}}
    >>> table, kept = comparison_table(rows, "old")
    >>> kept, table.splitlines()[2]
    ({'new': (1, 2)}, '| a, 1 x | +0.10 |')
    """
    columns = next(iter(rows.values()))

    def base(method):
        return f"{reference} D4" if method.endswith(" D4") else reference

    # A D4 average is held against the reference's own (left out where the reference has none).
    methods = [method for method in columns if method not in (reference, f"{reference} D4") and base(method) in columns]

    lines = ["| row | " + " | ".join(methods) + " |", "| --- |" + " ---: |" * len(methods)]
    kept = {method: [0, 0] for method in methods}
    for row, scores in rows.items():
        digits, sign = _ROUNDING[row_metric(row)]
        deltas = [round(scores[method], digits) - round(scores[base(method)], digits) for method in methods]
        for method, delta in zip(methods, deltas, strict=True):
            kept[method][0] += sign * delta >= -1e-9
            kept[method][1] += 1
        lines.append(f"| {row} | " + " | ".join(f"{delta:+.{digits}f}" for delta in deltas) + " |")
    return "\n".join(lines), {method: tuple(counts) for method, counts in kept.items()}


def physics_floors(results, *, model="full"):
    """The physics floors for one network: ``{check: (value, passed)}``.

    On every held-out field: the network beats RL+target at its best iteration by 0.5 dB at HMI's noise
    and by 1 dB at 3 and 10 times that, and never falls below bicubic; on the real cut-outs: equivariant
    under the 8 rotations and flips to 1e-5 of the enhancement, half-pixel flicker no worse than
    RL+target's; off the limb no negative continuum where the input is not; magnetograms: unsigned flux
    within 5 % binned back to HMI pixels and no sign flip where ``|B|`` > 500 G.

    Parameters
    ----------
    results : dict
        From `physics_validation`.
    model : str
        The network's name in ``results``.

    Returns
    -------
    dict
        ``{check: (value, passed)}``; values in dB, ratios or fractions as the check names say.

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> config = PhysicsConfig(shape=(64, 64), scenes=("plage",), noise_factors=(1.0,), rl_iterations=(1, 2),
    ...                        rl_max=4, rl_converged=4, real_crop=32, limb_shape=(64, 64))
    >>> results = physics_validation({"tiny": EnhanceNet(depth=1, width=8)}, "blos", config)
    >>> checks = physics_floors(results, model="tiny")
    >>> all(isinstance(passed, bool) for value, passed in checks.values())
    True
    """
    margins = {"1": 0.5, "3": 1.0, "10": 1.0}
    checks = {}
    for field, levels in results["noise"].items():
        for level, methods in levels.items():
            if model not in methods:
                continue
            gain = methods[model]["psnr"] - methods["RL+target best"]["psnr"]
            if level in margins:
                checks[f"{field}, {level} x noise: {model} - RL+target best >= {margins[level]} dB"] = (
                    gain, gain >= margins[level])  # fmt: skip
            over = methods[model]["psnr"] - methods["bicubic"]["psnr"]
            checks[f"{field}, {level} x noise: {model} - bicubic >= 0 dB"] = (over, over >= 0)
    for name, table in results.get("symmetry", {}).items():
        if model in table:
            worst = max(table[model]["equivariance"])
            checks[f"{name}: {model} equivariance (max over D4) <= 1e-5"] = (worst, worst <= 1e-5)
            mine, rl = np.mean(table[model]["flicker"]), np.mean(table["RL+target discrepancy"]["flicker"])
            checks[f"{name}: {model} flicker <= RL+target's ({rl:.3f})"] = (float(mine), bool(mine <= rl))
    if model in results.get("limb", {}):
        fraction = results["limb"][model]["negative_fraction"]
        checks[f"limb: {model} negative where the input is not"] = (fraction, fraction == 0)
    for name, table in results.get("magnetogram", {}).items():
        if model in table:
            ratio = table[model]["unsigned_flux_ratio"]
            checks[f"{name}: {model} unsigned flux within 5 %"] = (ratio, abs(ratio - 1) <= 0.05)
            flips = table[model]["sign_flips"]
            checks[f"{name}: {model} sign flips where |B| > {STRONG_SIGN:g} G"] = (flips, flips == 0)
    return checks


def _fmt(value, digits=2):
    return "-" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"


def _noise_lines(results, kind):
    """PSNR / SSIM tables at each noise level."""
    lines = []
    factors = list(next(iter(results["noise"].values())).keys()) if results["noise"] else []
    lines += ["## PSNR [dB] / SSIM against the target at 0.5-10 x HMI's noise", ""]
    for field, levels in results["noise"].items():
        lines += [f"### {field}", "", "| method | " + " | ".join(f"{f} x noise" for f in factors) + " |",
                  "|---|" + "---|" * len(factors)]  # fmt: skip
        for method in levels[factors[0]]:
            cells = []
            for f in factors:
                entry = levels[f][method]
                extra = f" ({entry['n_iter']} it.)" if "n_iter" in entry else ""
                cells.append(f"{entry['psnr']:.2f} / {entry['ssim']:.3f}{extra}")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _mismatch_lines(results, kind):
    """PSNR / SSIM (and granulation contrast) tables under PSF mismatch."""
    lines = ["## PSF mismatch (HMI's noise): PSNR [dB] / SSIM" + (" / granulation contrast vs target" if kind ==
              "intensity" else ""), ""]  # fmt: skip
    for field, variants in results["mismatch"].items():
        names = list(variants)
        lines += [f"### {field}", "", "| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for method in variants[names[0]]:
            cells = []
            for v in names:
                e = variants[v][method]
                cell = f"{e['psnr']:.2f} / {e['ssim']:.3f}"
                if "contrast_ratio" in e:
                    cell += f" / {e['contrast_ratio']:.3f}"
                cells.append(cell)
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _spectra_lines(results, kind):
    """Power ratio and coherence with the target in frequency bands."""
    lines = ["## Power / coherence with the target in frequency bands (cycles/arcsec)", "",
              "Power ratio to the target's (1 is right, > 1 added structure or noise) and coherence (1: the target's "
              "structure, 0: unrelated), at 1 and 10 x HMI's noise.", ""]  # fmt: skip
    band_names = [f"{lo:g}-{hi:g}" for lo, hi in BANDS]
    for field, levels in results["spectra"].items():
        for f in [f for f in ("1", "10") if f in levels]:
            lines += [f"### {field}, {f} x noise", "", "| method | " + " | ".join(band_names) + " |",
                      "|---|" + "---|" * len(band_names)]  # fmt: skip
            for method, bands in levels[f].items():
                lines.append(f"| {method} | " + " | ".join(f"{p:.2f} / {c:.2f}" for p, c in bands) + " |")
            lines.append("")
    return lines


def _symmetry_lines(results, kind):
    """Equivariance and half-pixel flicker on the real cut-outs."""
    if not results.get("symmetry"):
        return []
    lines = ["## Equivariance and half-pixel flicker on real HMI cut-outs", "",
              "RMS(f(T x) - T f(x)) / RMS(f(x) - bicubic(x)): T over the 7 rotations and flips other than the "
              "identity (mean and max), and a shift of half an HMI pixel (mean of the y and x shifts), on the "
              f"central {results['config']['real_crop']} x {results['config']['real_crop']} HMI pixels. RL+target "
              "uses the iteration count where the discrepancy rule stops on the unshifted image at HMI's nominal "
              "noise (1e-3 I/Ic, 10 G), Wiener the same noise.", ""]  # fmt: skip
    for name, table in results["symmetry"].items():
        lines += [
            f"### {name}",
            "",
            "| method | equivariance mean | equivariance max | flicker |",
            "|---|---|---|---|",
        ]
        for method, entry in table.items():
            label = method + (f" ({entry['n_iter']} it.)" if "n_iter" in entry else "")
            eq = entry["equivariance"]
            lines.append(f"| {label} | {np.mean(eq):.2e} | {max(eq):.2e} | {np.mean(entry['flicker']):.3f} |")
        lines.append("")
    return lines


def _umbra_lines(results, kind):
    """Umbral-core change of each method."""
    if not results.get("umbra"):
        return []
    lines = ["## Umbral-core change (mean over input pixels < 0.5 I/Ic, output / input - 1)", ""]
    for name, table in results["umbra"].items():
        lines += [f"### {name}", "", "| method | change |", "|---|---|"]
        lines += [f"| {method} | {100 * value:+.1f} % |" for method, value in table.items() if value is not None]
        lines.append("")
    return lines


def _limb_lines(results, kind):
    """Share of negative output off a synthetic limb."""
    if not results.get("limb"):
        return []
    lines = []
    first = next(iter(results["limb"].values()))
    lines += ["## Negative output off the limb", "",
              "Synthetic limb cut-out (quiet Sun, linear limb darkening u = 0.6, zero beyond the limb, HMI noise):"
              " "
              f"share of the x2 pixels over the {first['halo_input_pixels']} off-limb input pixels that are not "
              "negative (the faint halo of the PSF) where the output is negative. RL+target runs as for a "
              "continuum image (offset 0, negative data clipped to 0).", "",
              "| method | negative share |", "|---|---|"]  # fmt: skip
    lines += [f"| {m} | {100 * e['negative_fraction']:.1f} % |" for m, e in results["limb"].items()]
    lines.append("")
    return lines


def _magnetogram_lines(results, kind):
    """Unsigned flux and sign flips of the magnetogram outputs."""
    if not results.get("magnetogram"):
        return []
    lines = [f"## Magnetogram flux and sign (output binned 2x2 back to HMI pixels, |B| > {STRONG_SIGN:g} G)", ""]
    for name, table in results["magnetogram"].items():
        lines += [f"### {name}", "", "| method | unsigned flux / input | sign flips |", "|---|---|---|"]
        lines += [f"| {m} | {e['unsigned_flux_ratio']:.3f} | {e['sign_flips']} of {e['strong_pixels']} |"
                  for m, e in table.items()]  # fmt: skip
        lines.append("")
    return lines


def report_path(out_dir, *, kind: str, physics: bool = False, overwrite: bool = False) -> Path:
    """The Markdown file `report` (``physics=False``) or `physics_report` writes in ``out_dir``.

    Called before a validation run, it refuses an earlier report before the work rather than after it.

    Parameters
    ----------
    out_dir : str or `~pathlib.Path`
        Folder of the report.
    kind : {'intensity', 'blos'}
        What the networks enhance.
    physics : bool
        The physics report (``physics_<kind>.md``) instead of ``validation_<kind>.md``.
    overwrite : bool
        Whether an earlier report may be replaced.

    Returns
    -------
    pathlib.Path
        The report's path.

    Raises
    ------
    `~enhance.exceptions.OutputExistsError`
        If the report exists and ``overwrite`` is off.

    Examples
    --------
    >>> report_path("validation", kind="blos", physics=True).name
    'physics_blos.md'
    """
    path = Path(out_dir) / f"{'physics' if physics else 'validation'}_{kind}.md"
    if path.exists() and not overwrite:
        msg = f"{path} exists; use --overwrite (overwrite=True) to replace the report, or write it to another folder"
        raise OutputExistsError(msg)
    return path


def validation_networks(weights=None, *, kind: str) -> dict:
    """The networks `validate` and `physics_validation` score, by label.

    Parameters
    ----------
    weights : dict, optional
        ``{label: weights file}``; each Wiener-Enhance network is also scored averaged over the 8
        rotations and flips, as ``'<label> D4'``. None or empty: the shipped models.
    kind : {'intensity', 'blos'}
        What the networks enhance.

    Returns
    -------
    dict
        ``{label: network}``.

    Examples
    --------
    >>> import tempfile
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.models.weights import save_weights
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save_weights(EnhanceNet(depth=1, width=8), f"{folder}/tiny.safetensors", kind="blos")
    ...     list(validation_networks({"tiny": path}, kind="blos"))
    ['tiny']
    """
    networks = {}
    for label, path in (weights or {}).items():
        networks[label] = load_network(path, kind=kind)
        if as_runner(networks[label]).needs_noise:  # Wiener-Enhance: one pass and its D4 average
            networks[f"{label} D4"] = load_network(path, kind=kind)
            networks[f"{label} D4"].symmetric = True
    return networks or {name: factory(kind, weights="default") for name, factory in FACTORIES.items()}


def machine_description(*, seconds: float | None = None, cpuinfo="/proc/cpuinfo") -> str:
    """The machine a report ran on, as `physics_report` names it: the CPU's model and its number of CPUs.

    Parameters
    ----------
    seconds : float, optional
        Wall-clock time of the run, seconds; said when given.
    cpuinfo : str or `~pathlib.Path`
        Linux's CPU description, whose first ``model name`` line names the CPU; where it is missing or
        names none, `platform.processor` or `platform.machine` does.

    Returns
    -------
    str
        E.g. ``'AMD EPYC, 2 CPUs shared with other jobs; run took 95 s'``.

    Examples
    --------
    >>> machine_description(seconds=95.2).endswith("CPUs shared with other jobs; run took 95 s")
    True
    """
    model = cpu_model(cpuinfo)[0]
    took = f"; run took {seconds:.0f} s" if seconds is not None else ""
    return f"{model}, {os.cpu_count()} CPUs shared with other jobs{took}"


def physics_report(results, out_dir, *, kind, command=None, machine=None, overwrite=False):
    """Write ``physics_<kind>.md`` and ``physics_<kind>.json`` from `physics_validation`.

    Parameters
    ----------
    results : dict
        From `physics_validation`.
    out_dir : str or `~pathlib.Path`
        Folder of the report; created if missing.
    kind : {'intensity', 'blos'}
        What the networks enhance.
    command : str, optional
        The command that reproduces the report, quoted in it.
    machine : str, optional
        The machine it ran on, named in it.
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
    >>> config = PhysicsConfig(shape=(64, 64), scenes=("plage",), noise_factors=(1.0,), rl_iterations=(1, 2),
    ...                        rl_max=4, rl_converged=4, real_crop=32, limb_shape=(64, 64))
    >>> results = physics_validation({"tiny": EnhanceNet(depth=1, width=8)}, "blos", config)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     print(physics_report(results, folder, kind="blos").name)
    physics_blos.md
    """
    out_dir = Path(out_dir)
    path = report_path(out_dir, kind=kind, physics=True, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    unit = "I/Ic" if kind == "intensity" else "G"
    lines = [f"# Physics validation of the {kind} models against RL+target and Wiener", "",
             f"solar-enhance {__version__}." + (f" Machine: {machine}." if machine else ""),
             *([f"Reproduce with `{command}`."] if command else []), "",
             "Held-out fields degraded with the observation model (HMI PSF of Enhance, 4.37\" kernels, 2x2 area "
             "binning to 0.504\"); every score is against the target (28 cm Airy at 0.252\"). Baselines, all on the "
             "x2 grid with the exact forward model (`enhance.analysis.baselines`): *RL+target best* is "
             "Richardson-Lucy at its best iteration against the truth (validation only; iteration count in "
             "brackets), *RL+target discrepancy* stops where the data residual reaches the known noise, *Wiener* "
             "is the exact-aliasing Wiener filter at the known noise; each is followed by the target's Airy blur. "
             "*D4* is the network averaged over the 8 rotations and flips (`enhance(..., symmetric=True)`).",
             ""]  # fmt: skip
    for section in (_noise_lines, _mismatch_lines, _spectra_lines, _symmetry_lines, _umbra_lines, _limb_lines,
                    _magnetogram_lines):  # fmt: skip
        lines += section(results, kind)
    floors_all = {}
    labels = [m for m in next(iter(next(iter(results["noise"].values())).values())) if m not in _BASELINES]
    for label in labels:
        checks = physics_floors(results, model=label)
        floors_all[label] = checks
        lines += [f"## Floors of issue 15: {label}", ""]
        lines += [
            f"- {'PASS' if ok else 'FAIL'}: {name} ({_fmt(float(value), 3)})" for name, (value, ok) in checks.items()
        ]
        lines.append("")
    lines.append(f"Units: {unit}.")
    summary = {
        **results,
        "floors": {k: {n: [float(v), bool(ok)] for n, (v, ok) in c.items()} for k, c in floors_all.items()},
    }
    text, numbers = "\n".join(lines) + "\n", json.dumps(summary, indent=1, default=float)
    atomic_write(out_dir / f"physics_{kind}.json", lambda tmp: Path(tmp).write_text(numbers), overwrite=overwrite)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text), overwrite=overwrite)
    return path
