"""Calibration of the synthetic scenes against MURaM, real HMI and published sunspot numbers.

`calibrate` measures three things and `report` returns them as a plain dict (`format_report` turns
it into text, `figure` into a PNG):

(a) quiet Sun at full resolution: RMS contrast of `enhance.scenes.synth.generate` against the MURaM field
    (target: within 15 % of it), and the azimuthally averaged power spectra on the same grid
    (target: within a factor 2 at all scales larger than 0.5 arcsec);
(b) after the observation model (`enhance.observation.degrade.degrade`), against real HMI quiet Sun: contrast within
    15 % and spectra within a factor 2 at every frequency (the test of the paper's Fig. 5). Degraded
    MURaM is measured the same way, as a check of the observation model itself;
(c) sunspots, pores and kG elements of active-region scenes: intensities relative to the quiet Sun and
    field strengths against published ranges (`PUBLISHED_RANGES`).

How spectra are compared
------------------------
Both images are cut into tiles of one common shape, each tile's spectrum is computed with
`enhance.analysis.metrics.power_spectrum` and the same Hann window, and the tile spectra are averaged, so that
the two spectra share their frequency annuli exactly. For (a) the tile is MURaM's 1000 x 500 px. For
(b) it is 130 x 65 px by default (``hmi_tile``): the halves of the 130 x 130 px HMI cut-out, the largest
tile that degraded MURaM (131 x 65 px) also fills, so that synthetic scenes and MURaM are judged alike;
the whole 130 x 130 px cut-out as one tile (finer annuli, half the averaging) is reported too.
The ratio is reported per annulus, and in bands of 0.1 dex holding at least three annuli ('binned');
the factor-2 criteria are judged on the bands, since the lowest annuli of a 33-arcsec (MURaM) or
65-arcsec (HMI) field hold only a handful of Fourier modes each and scatter by a factor 2 or more
between neighbours on their own.
"""

import dataclasses
from pathlib import Path

import astropy.units as u
import numpy as np

from ..constants import HMI_NOISE, HMI_PIXEL_SCALE
from ..io import atomic_write
from ..observation.degrade import degrade
from ..observation.psf import DEFAULT_RADIUS
from ..scenes.sources import open_source
from ..scenes.synth import LABELS, MURAM_PIXEL_SCALE, generate_scene, granulation_psd
from .metrics import contrast, power_spectrum

__all__ = [
    "PUBLISHED_RANGES",
    "Calibration",
    "calibrate",
    "calibration_files",
    "CALIBRATION_FILES",
    "report",
    "format_report",
    "figure",
    "compare_spectra",
    "tile_spectrum",
]

#: File names of the MURaM quiet-Sun field and the real HMI quiet Sun in a data folder (`calibration_files`).
CALIBRATION_FILES = {"muram": "muram_qs_0.0662arcsec.fits", "hmi_qs": "hmi_continuum_qs.fits"}
#: MURaM's quiet-Sun contrast is the target of (a) within this relative tolerance; the same for HMI in (b).
CONTRAST_TOLERANCE = 0.15
#: Spectra must agree within this factor.
SPECTRUM_FACTOR = 2.0
#: Scales larger than this (arcsec) count for (a).
SMALLEST_SCALE_A = 0.5

#: Published ranges for (c), relative to the quiet Sun (intensities) or in gauss (fields).
PUBLISHED_RANGES = {
    # Umbral core (darkest 1 % of the umbra) in the visible continuum: 5-30 % of the quiet Sun, darker for
    # larger spots (Solanki 2003, A&ARv 11, 153, Sect. 3.2; Mathew et al. 2007, A&A 465, 291).
    "umbra_core_intensity": (0.05, 0.35),
    # Penumbra mean: 0.7-0.85 of the quiet Sun (Solanki 2003, Sect. 4).
    "penumbra_intensity": (0.70, 0.85),
    # Quiet Sun: 1 by the definition of I/Ic.
    "quiet_sun_intensity": (0.99, 1.01),
    # Peak umbral field: 2-3.5 kG (Livingston et al. 2006, Sol. Phys. 239, 41; Solanki 2003).
    "umbra_peak_field": (2000.0, 3500.0),
    # Vertical field at the umbra/penumbra boundary: 1.87 kG with a spread of about 0.2 kG
    # (Jurčák et al. 2018, A&A 611, L4).
    "umbra_boundary_field": (1600.0, 2100.0),
    # Mean vertical field of the penumbra: field of 1-1.5 kG inclined 40-90 degrees, Bz about 0.4-1.2 kG
    # (Keppens & Martínez Pillet 1996, A&A 316, 229; Borrero & Ichimoto 2011, LRSP 8, 4).
    "penumbra_mean_field": (400.0, 1200.0),
    # Peak field of pores: 1.3-2.3 kG (Keppens & Martínez Pillet 1996).
    "pore_peak_field": (1300.0, 2300.0),
    # Peak field of network and plage elements: 1-2 kG (Solanki 1993, Space Sci. Rev. 63, 1).
    "element_peak_field": (1000.0, 2000.0),
}


@dataclasses.dataclass
class Calibration:
    """Numbers, spectra and sample images of one calibration run.

    Parameters
    ----------
    numbers : dict
        The calibration numbers, as `report` returns them (JSON-serialisable).
    spectra : dict
        Power spectra per comparison (frequencies in 1/arcsec), for `figure`.
    images : dict
        Sample images (I/Ic or gauss) per panel, for `figure`.

    Examples
    --------
    >>> run = calibrate(shape=(128, 128), spot_seeds=())
    >>> isinstance(run, Calibration), "all_pass" in run.numbers
    (True, True)
    """

    numbers: dict
    spectra: dict
    images: dict


def tile_spectrum(image, pixel_scale, tile_shape):
    """Mean power spectrum of the non-overlapping tiles of ``tile_shape`` that fit in ``image``.

    Parameters
    ----------
    image : numpy.ndarray
        The image (any unit).
    pixel_scale : `~astropy.units.Quantity`
        Pixel scale (angle per pixel, e.g. arcsec).
    tile_shape : tuple of int
        ``(ny, nx)`` of the tiles, pixels.

    Returns
    -------
    frequency : numpy.ndarray
        Annulus frequencies, 1/arcsec.
    power : numpy.ndarray
        Mean azimuthally averaged power per annulus (see `enhance.analysis.metrics.power_spectrum`).

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> image = np.random.default_rng(0).normal(size=(64, 64))
    >>> frequency, power = tile_spectrum(image, 0.504 * u.arcsec, (32, 32))
    >>> frequency.shape == power.shape
    True
    """
    ny, nx = tile_shape
    spectra = []
    frequency = None
    for r in range(0, image.shape[0] - ny + 1, ny):
        for c in range(0, image.shape[1] - nx + 1, nx):
            f, p = power_spectrum(image[r : r + ny, c : c + nx], pixel_scale, window="hann")
            frequency = f.to_value(1 / u.arcsec)
            spectra.append(p)
    if not spectra:
        msg = f"tile shape {tile_shape} does not fit in an image of shape {image.shape}"
        raise ValueError(msg)
    return frequency, np.mean(spectra, axis=0)


def _bands(frequency, *, per_decade=10, min_annuli=3):
    """Group annuli into log bands of 1/per_decade dex holding at least ``min_annuli`` annuli each."""
    index = np.floor(np.log10(frequency) * per_decade).astype(int)
    groups, current = [], []
    for i in range(len(frequency)):
        if current and len(current) >= min_annuli and index[i] != index[current[-1]]:
            groups.append(current)
            current = []
        current.append(i)
    if current:
        if groups and len(current) < min_annuli:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


def compare_spectra(frequency, power, reference, *, fmin=0.0, fmax=np.inf):
    """Ratio of two spectra on the same annuli, per annulus and in log bands, within [fmin, fmax].

    Parameters
    ----------
    frequency : array_like
        Spatial frequency of each annulus, 1/arcsec.
    power : array_like
        The spectrum to compare, one value per annulus (any unit, the same as ``reference``).
    reference : array_like
        The reference spectrum on the same annuli.
    fmin : float
        Lowest frequency compared, 1/arcsec.
    fmax : float
        Highest frequency compared, 1/arcsec.

    Returns
    -------
    dict
        ``annulus_min``, ``annulus_max`` (ratio ``power / reference`` per annulus), ``binned_min``,
        ``binned_max`` (the same over bands of 0.1 dex with at least three annuli), the band centres
        ``band_frequency`` and ratios ``band_ratio`` (lists), and ``fmin``, ``fmax`` actually covered.

    Examples
    --------
    >>> import numpy as np
    >>> f = np.linspace(0.1, 1.0, 50)
    >>> ratio = compare_spectra(f, 2 * f**-2, f**-2, fmin=0.2)
    >>> ratio["annulus_min"], ratio["annulus_max"]
    (2.0, 2.0)
    """
    frequency = np.asarray(frequency)
    keep = (frequency >= fmin) & (frequency <= fmax)
    f, p, r = frequency[keep], np.asarray(power)[keep], np.asarray(reference)[keep]
    ratio = p / r
    groups = _bands(f)
    band_f = [float(np.exp(np.mean(np.log(f[g])))) for g in groups]
    band_ratio = [float(p[g].mean() / r[g].mean()) for g in groups]
    return {
        "fmin": float(f.min()),
        "fmax": float(f.max()),
        "annulus_min": float(ratio.min()),
        "annulus_max": float(ratio.max()),
        "binned_min": float(min(band_ratio)),
        "binned_max": float(max(band_ratio)),
        "band_frequency": band_f,
        "band_ratio": band_ratio,
    }


def _within_factor(comparison, factor=SPECTRUM_FACTOR):
    return bool(comparison["binned_min"] >= 1 / factor and comparison["binned_max"] <= factor)


def _load(image, *, where):
    """A path or a ``(array, pixel_scale)`` pair -> (quiet-Sun-normalised array, pixel scale)."""
    if isinstance(image, str | Path):
        source = open_source(image, kind="intensity", normalise="mean")
        return source.frame(0), source.pixel_scale
    array, scale = image
    array = np.asarray(array, dtype=float)
    return array / array.mean(), u.Quantity(scale, u.arcsec)


def _spot_numbers(shape, scale, seeds):
    """Per-spot measurements over active-region scenes, and the worst case over them."""
    per_scene = []
    for seed in seeds:
        scene = generate_scene(shape, scale, kind="active_region", seed=seed)
        c, b, labels = scene.continuum, np.abs(scene.bz), scene.labels
        umbra = labels == LABELS["umbra"]
        penumbra = labels == LABELS["penumbra"]
        pore = labels == LABELS["pore"]
        element = labels == LABELS["magnetic_element"]
        quiet = labels == LABELS["quiet_sun"]
        entry = {"seed": seed, "quiet_sun_intensity": float(c[quiet].mean())}
        if umbra.any():
            entry["umbra_core_intensity"] = float(np.percentile(c[umbra], 1))
            entry["umbra_mean_intensity"] = float(c[umbra].mean())
            entry["umbra_peak_field"] = float(b[umbra].max())
            entry["umbra_mean_field"] = float(b[umbra].mean())
            # Boundary: umbral pixels next to penumbral ones.
            grown = np.zeros_like(penumbra)
            for shift in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                grown |= np.roll(penumbra, shift, axis=(0, 1))
            edge = umbra & grown
            entry["umbra_boundary_field"] = float(np.median(b[edge])) if edge.any() else float("nan")
        if penumbra.any():
            entry["penumbra_intensity"] = float(c[penumbra].mean())
            entry["penumbra_mean_field"] = float(b[penumbra].mean())
        if pore.any():
            entry["pore_peak_field"] = float(b[pore].max())
            entry["pore_mean_intensity"] = float(c[pore].mean())
        if element.any():
            entry["element_peak_field"] = float(np.percentile(b[element], 99))
        signed = scene.bz
        entry["opposite_polarities"] = bool((signed > 500).any() and (signed < -500).any())
        per_scene.append(entry)
    checks = {}
    for key, (lo, hi) in PUBLISHED_RANGES.items():
        values = [entry[key] for entry in per_scene if key in entry and np.isfinite(entry[key])]
        if values:
            checks[key] = {
                "min": float(min(values)),
                "max": float(max(values)),
                "range": [lo, hi],
                "pass": bool(lo <= min(values) and max(values) <= hi),
            }
    return per_scene, checks


@u.quantity_input
def _full_resolution(reference, synth, scale):
    """Check (a): the synthetic quiet Sun against the simulation at full resolution (numbers, spectra)."""
    tile = (min(reference.shape[0], synth.shape[0]), min(reference.shape[1], synth.shape[1]))
    f, p_ref = tile_spectrum(reference, scale, tile)
    _, p_syn = tile_spectrum(synth, scale, tile)
    comparison = compare_spectra(f, p_syn, p_ref, fmax=1.0 / SMALLEST_SCALE_A)
    c_ref, c_syn = contrast(reference), contrast(synth)
    numbers = {
        "muram_contrast": c_ref,
        "synth_contrast": c_syn,
        "contrast_ratio": c_syn / c_ref,
        "contrast_pass": bool(abs(c_syn / c_ref - 1) <= CONTRAST_TOLERANCE),
        "spectrum": comparison,
        "spectrum_pass": _within_factor(comparison),
        "tile_shape": list(tile),
    }
    return numbers, {"frequency": f, "muram": p_ref, "synth": p_syn, "target": granulation_psd(f)}


def _against_hmi(observed, hmi, hmi_tile):
    """Check (b) of one degraded image against real HMI: contrast ratio and tile spectra."""
    tile = tuple(min(hmi_tile[i], hmi.shape[i], observed.shape[i]) for i in range(2))
    f, p_hmi = tile_spectrum(hmi, HMI_PIXEL_SCALE, tile)
    _, p_obs = tile_spectrum(observed, HMI_PIXEL_SCALE, tile)
    comparison = compare_spectra(f, p_obs, p_hmi)
    ratio = contrast(observed) / contrast(hmi)
    check = {
        "contrast_ratio": ratio,
        "contrast_pass": bool(abs(ratio - 1) <= CONTRAST_TOLERANCE),
        "spectrum": comparison,
        "spectrum_pass": _within_factor(comparison),
        "tile_shape": list(tile),
    }
    return check, (f, p_hmi, p_obs)


def calibration_files(data_dir=None, *, muram=None, hmi_qs=None) -> dict:
    """The ``muram`` and ``hmi_qs`` inputs of `calibrate`: those given, else the files of ``data_dir``.

    Parameters
    ----------
    data_dir : str or `~pathlib.Path`, optional
        A folder holding `CALIBRATION_FILES` (e.g. ``../shared/data``).
    muram, hmi_qs : str or `~pathlib.Path`, optional
        The files themselves, which take precedence over ``data_dir``.

    Returns
    -------
    dict
        ``{"muram": path or None, "hmi_qs": path or None}``, keyword arguments of `calibrate`.

    Examples
    --------
    >>> calibration_files("data", hmi_qs="qs.fits")["muram"].name
    'muram_qs_0.0662arcsec.fits'
    """
    folder = {key: Path(data_dir) / name if data_dir else None for key, name in CALIBRATION_FILES.items()}
    return {"muram": muram or folder["muram"], "hmi_qs": hmi_qs or folder["hmi_qs"]}


def calibrate(
    *,
    muram=None,
    hmi_qs=None,
    shape=(1000, 1000),
    seed: int = 0,
    spot_seeds=(0, 1, 2),
    spot_shape=(800, 800),
    radius: u.arcsec = DEFAULT_RADIUS,
    hmi_params=None,
    noise: float = HMI_NOISE["intensity"],
    hmi_tile=(130, 65),
) -> Calibration:
    """Measure the calibration numbers (a), (b) and (c) of the synthetic scenes.

    Parameters
    ----------
    muram : str, `~pathlib.Path` or (array, pixel_scale), optional
        The MURaM quiet-Sun field (``muram_qs_0.0662arcsec.fits``). Without it, (a) and the degraded-MURaM
        check are skipped. The synthetic scene is drawn at its pixel scale.
    hmi_qs : str, `~pathlib.Path` or (array, pixel_scale), optional
        Real HMI quiet Sun (``hmi_continuum_qs.fits``, raw counts: divided by the mean). Without it,
        (b) is skipped.
    shape : tuple of int
        Size of the synthetic quiet-Sun scene; defaults to 1000 x 1000 (66 arcsec, the HMI cut-out's field).
    seed : int
        Seed of the quiet-Sun scene.
    spot_seeds : sequence of int
        Seeds of the active-region scenes for (c); empty to skip (c).
    spot_shape : tuple of int
        Size of the active-region scenes.
    radius : `~astropy.units.Quantity`
        PSF kernel half-width for the degradation; defaults to `~enhance.observation.psf.DEFAULT_RADIUS` (4.37 arcsec).
    hmi_params : dict, optional
        HMI PSF parameters; defaults to the Enhance values.
    noise : float
        Gaussian noise (I/Ic) that the observation model adds to the degraded images; defaults to
        HMI's 1e-3, the level of the training inputs (`enhance.training.datasets.NOISE`). Drawn from ``seed``.
    hmi_tile : tuple of int
        Tile shape (px) of the spectra in (b); clipped to the images' shapes.

    Returns
    -------
    Calibration
        ``numbers`` is what `report` returns.

    Examples
    --------
    >>> run = calibrate(shape=(128, 128), spot_seeds=())
    >>> sorted(run.numbers)  # no MURaM or HMI field given: only the settings
    ['all_pass', 'settings']
    """
    numbers = {
        "settings": {
            "shape": list(shape),
            "seed": seed,
            "psf_radius_arcsec": radius.to_value(u.arcsec),
            "noise": noise,
            "hmi_tile": list(hmi_tile),
        }
    }
    noise_rng = np.random.default_rng([seed, 1])
    spectra, images = {}, {}
    scale = MURAM_PIXEL_SCALE
    reference = None
    if muram is not None:
        reference, scale = _load(muram, where="muram")
    scene = generate_scene(shape, scale, kind="quiet_sun", seed=seed)
    synth = scene.continuum
    images["synth"] = synth
    numbers["settings"]["pixel_scale_arcsec"] = float(scale.to_value(u.arcsec))

    if reference is not None:
        numbers["a_full_resolution"], spectra["full"] = _full_resolution(reference, synth, scale)
        images["muram"] = reference

    if hmi_qs is not None:
        hmi, hmi_scale = _load(hmi_qs, where="hmi_qs")
        if not u.isclose(hmi_scale, HMI_PIXEL_SCALE, rtol=1e-3):
            msg = f"hmi_qs must be at HMI's {HMI_PIXEL_SCALE}, got {hmi_scale}"
            raise ValueError(msg)
        observed, _ = degrade(
            synth, scale, radius=radius, hmi_params=hmi_params, boundary="wrap", noise=noise, rng=noise_rng
        )
        check, (f, p_hmi, p_deg) = _against_hmi(observed, hmi, hmi_tile)
        whole = tuple(min(hmi.shape[i], observed.shape[i]) for i in range(2))
        f_whole, p_hmi_whole = tile_spectrum(hmi, HMI_PIXEL_SCALE, whole)
        _, p_deg_whole = tile_spectrum(observed, HMI_PIXEL_SCALE, whole)
        numbers["b_degraded"] = {
            "hmi_contrast": contrast(hmi),
            "synth_degraded_contrast": contrast(observed),
            **check,
            "spectrum_whole_tile": compare_spectra(f_whole, p_deg_whole, p_hmi_whole),
            "whole_tile_shape": list(whole),
        }
        spectra["hmi"] = {"frequency": f, "hmi": p_hmi, "synth": p_deg}
        images["hmi"] = hmi
        images["synth_degraded"] = observed
        if reference is not None:
            # MURaM is not periodic (a cut-out), so its convolution mirrors the edges.
            observed_m, _ = degrade(
                reference, scale, radius=radius, hmi_params=hmi_params, boundary="reflect", noise=noise, rng=noise_rng
            )
            check, (f_m, p_hmi_m, p_mur) = _against_hmi(observed_m, hmi, hmi_tile)
            numbers["b_degraded_muram"] = {"muram_degraded_contrast": contrast(observed_m), **check}
            spectra["hmi_muram"] = {"frequency": f_m, "hmi": p_hmi_m, "muram": p_mur}

    if len(spot_seeds):
        per_scene, checks = _spot_numbers(spot_shape, scale, spot_seeds)
        numbers["c_features"] = {"checks": checks, "per_scene": per_scene}
        example = generate_scene(spot_shape, scale, kind="active_region", seed=spot_seeds[0])
        images["ar_continuum"] = example.continuum
        images["ar_bz"] = example.bz

    passes = [
        value
        for part in ("a_full_resolution", "b_degraded")
        if part in numbers
        for key, value in numbers[part].items()
        if key.endswith("_pass")
    ]
    passes += [check["pass"] for check in numbers.get("c_features", {}).get("checks", {}).values()]
    numbers["all_pass"] = bool(passes) and all(passes)
    return Calibration(numbers=numbers, spectra=spectra, images=images)


def report(calibration=None, **kwargs) -> dict:
    """The calibration numbers as a plain (JSON-serialisable) dict; runs `calibrate` when not given one.

    Parameters
    ----------
    calibration : Calibration, optional
        A finished run; when omitted, `calibrate` runs with ``**kwargs``.
    **kwargs
        Arguments of `calibrate` (only without ``calibration``).

    Returns
    -------
    dict
        ``a_full_resolution``, ``b_degraded``, ``b_degraded_muram``, ``c_features`` (each only when its
        data were given), ``settings`` and ``all_pass``.

    Examples
    --------
    >>> numbers = report(spot_seeds=(0,), shape=(256, 256), spot_shape=(400, 400))
    >>> sorted(numbers["c_features"]["checks"])[:2]
    ['element_peak_field', 'penumbra_intensity']
    """
    if calibration is None:
        calibration = calibrate(**kwargs)
    elif kwargs:
        msg = f"pass either a Calibration or calibrate() arguments, not both (got {sorted(kwargs)})"
        raise TypeError(msg)
    return calibration.numbers


def _spectrum_line(s):
    return (
        f"    spectrum ratio {s['fmin']:.3f}-{s['fmax']:.2f}/arcsec:"
        f" bands {s['binned_min']:.2f}-{s['binned_max']:.2f},"
        f" single annuli {s['annulus_min']:.2f}-{s['annulus_max']:.2f}"
    )


def format_report(numbers) -> str:
    """Human-readable lines for the numbers of `report`.

    Parameters
    ----------
    numbers : dict
        From `report`.

    Returns
    -------
    str
        One check per line, each with its verdict (PASS or FAIL), and an overall verdict last.

    Examples
    --------
    >>> print(format_report({"all_pass": True}))
    overall: PASS
    """

    def verdict(ok):
        return "PASS" if ok else "FAIL"

    lines = []
    if "a_full_resolution" in numbers:
        a = numbers["a_full_resolution"]
        lines += [
            "(a) quiet Sun at full resolution vs MURaM",
            f"    contrast: synth {100 * a['synth_contrast']:.2f} %, MURaM {100 * a['muram_contrast']:.2f} %,"
            f" ratio {a['contrast_ratio']:.3f} (within 15 %: {verdict(a['contrast_pass'])})",
            _spectrum_line(a["spectrum"]) + f" (bands within x2: {verdict(a['spectrum_pass'])})",
        ]
    if "b_degraded" in numbers:
        b = numbers["b_degraded"]
        lines += [
            "(b) degraded to HMI vs real HMI quiet Sun",
            f"    contrast: synth {100 * b['synth_degraded_contrast']:.2f} %, HMI {100 * b['hmi_contrast']:.2f} %,"
            f" ratio {b['contrast_ratio']:.3f} (within 15 %: {verdict(b['contrast_pass'])})",
            _spectrum_line(b["spectrum"]) + f" (bands within x2: {verdict(b['spectrum_pass'])})",
            _spectrum_line(b["spectrum_whole_tile"]) + f" (one {b['whole_tile_shape']} px tile)",
        ]
    if "b_degraded_muram" in numbers:
        m = numbers["b_degraded_muram"]
        lines += [
            "    check, MURaM degraded the same way:",
            f"    contrast {100 * m['muram_degraded_contrast']:.2f} % (ratio to HMI {m['contrast_ratio']:.3f})",
            _spectrum_line(m["spectrum"]),
        ]
    if "c_features" in numbers:
        lines.append("(c) active-region features vs published ranges")
        for key, check in numbers["c_features"]["checks"].items():
            lo, hi = check["range"]
            values = f"{check['min']:9.3f} .. {check['max']:9.3f}"
            lines.append(f"    {key:24s} {values}   published {lo:g}..{hi:g}  {verdict(check['pass'])}")
    lines.append(f"overall: {verdict(numbers.get('all_pass', False))}")
    return "\n".join(lines)


def figure(calibration, *, path=None, dpi=100, overwrite=False):
    """Plot spectra and sample images of a calibration run; optionally save a PNG.

    Panels: MURaM vs synthetic spectra (full resolution, with the target
    `~enhance.scenes.synth.granulation_psd`); real HMI vs degraded synthetic (and degraded MURaM) spectra;
    their ratios; and sample images (MURaM, synthetic quiet Sun, real HMI, degraded synthetic, an
    active-region continuum and magnetogram).

    Parameters
    ----------
    calibration : Calibration
        From `calibrate`.
    path : str or `~pathlib.Path`, optional
        Where to save the figure (PNG), atomically.
    dpi : int
        Resolution of the saved figure, dots per inch.
    overwrite : bool
        Replace an existing file at ``path``.

    Returns
    -------
    `matplotlib.figure.Figure`
        The figure (3 x 3 panels).

    Examples
    --------
    >>> fig = figure(calibrate(shape=(128, 128), spot_seeds=()))
    >>> len(fig.axes) >= 9
    True
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 13), layout="constrained")
    axes = fig.subplots(3, 3)
    spectra, images = calibration.spectra, calibration.images
    ax = axes[0, 0]
    if "full" in spectra:
        s = spectra["full"]
        ax.loglog(s["frequency"], s["muram"], "k", label="MURaM")
        ax.loglog(s["frequency"], s["synth"], "C1", label="synthetic")
        ax.loglog(s["frequency"], s["target"], "C0:", label="target PSD")
        ax.axvline(1 / SMALLEST_SCALE_A, color="0.6", lw=0.8)
        ax.legend()
    ax.set(title="(a) full resolution", xlabel="frequency [1/arcsec]", ylabel="PSD [(I/Ic)$^2$ arcsec$^2$]")
    ax = axes[0, 1]
    if "hmi" in spectra:
        s = spectra["hmi"]
        ax.semilogy(s["frequency"], s["hmi"], "k", label="HMI quiet Sun")
        ax.semilogy(s["frequency"], s["synth"], "C1", label="synthetic, degraded")
        if "hmi_muram" in spectra:
            ax.semilogy(
                spectra["hmi_muram"]["frequency"], spectra["hmi_muram"]["muram"], "C2--", label="MURaM, degraded"
            )
        ax.legend()
    ax.set(title="(b) at HMI resolution (Fig. 5 test)", xlabel="frequency [1/arcsec]", ylabel="PSD")
    ax = axes[0, 2]
    for key, label, colour in (
        ("a_full_resolution", "(a) synth / MURaM", "C0"),
        ("b_degraded", "(b) synth / HMI", "C1"),
        ("b_degraded_muram", "MURaM / HMI", "C2"),
    ):
        if key in calibration.numbers:
            s = calibration.numbers[key]["spectrum"]
            ax.semilogx(s["band_frequency"], s["band_ratio"], "o-", color=colour, label=label)
    for level in (0.5, 1.0, 2.0):
        ax.axhline(level, color="0.6", lw=0.8, ls="-" if level == 1 else "--")
    ax.set(title="spectrum ratios (0.1 dex bands)", xlabel="frequency [1/arcsec]", ylim=(0.25, 4), yscale="log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    panels = [
        ("muram", "MURaM (full resolution)", "gray", None),
        ("synth", "synthetic quiet Sun", "gray", None),
        ("ar_continuum", "synthetic active region", "gray", None),
        ("hmi", "HMI quiet Sun", "gray", None),
        ("synth_degraded", "synthetic, degraded to HMI", "gray", None),
        ("ar_bz", "synthetic active region, Bz [G]", "RdBu_r", 2000),
    ]
    for ax, (key, title, cmap, limit) in zip(axes[1:].ravel(), panels, strict=True):
        ax.set_title(title)
        ax.set_axis_off()
        if key not in images:
            continue
        image = images[key]
        if limit is None:
            lo, hi = np.percentile(image, [0.5, 99.5])
            shown = ax.imshow(image, cmap=cmap, origin="lower", vmin=lo, vmax=hi)
        else:
            shown = ax.imshow(image, cmap=cmap, origin="lower", vmin=-limit, vmax=limit)
        fig.colorbar(shown, ax=ax, shrink=0.8)
    if path is not None:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi), overwrite=overwrite)
    return fig
