"""The paper's diagnostics of an enhanced image: what Enhance added, and where, next to classical baselines.

`compare` runs Enhance, Richardson-Lucy on the x2 grid and bicubic interpolation on one HMI image and
measures them as Díaz Baso & Asensio Ramos (2018) do: granulation contrast (Fig. 7), power spectra with
white-noise levels and the input-output density scatter (Fig. 9), the comparison with RL (Fig. 11) and
the reconvolution ("consistency") test. It returns every number and, with ``out_dir``, writes the
figures and a JSON file. `consistency_hdu` packs the per-pixel consistency map as a FITS extension for
``enhance run --consistency``.
"""

import json
import math
import re
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from ..checks import check_choice, check_image, check_positive, fill_nonfinite
from ..io import fits_stem, resolve_kind
from ..observation.degrade import HMI_PIXEL_SCALE
from .baselines import bicubic_x2, rl_super_resolve
from .metrics import (
    consistency_map,
    contrast,
    field_amplification,
    power_spectrum,
    psnr,
    quiet_region,
    scale_region,
    ssim,
    total_flux,
    unsigned_flux,
    white_noise_level,
    white_noise_power,
)

__all__ = ["DEFAULT_NOISE_LEVELS", "FIGURES", "compare", "consistency_hdu", "parse_region"]

#: White-noise reference levels drawn on the power spectra, per kind: standard deviations per pixel of
#: the x2 grid. Magnetograms: the paper's Fig. 9 (12 G, near HMI's noise, and 75 G, the level of the
#: structure RL adds). Continuum, as fractions of the quiet-Sun level: the noise Enhance was trained with
#: (1e-3) and ten times it.
DEFAULT_NOISE_LEVELS = {"intensity": (1e-3, 1e-2), "blos": (12.0, 75.0)}
#: Files `compare` writes into ``out_dir``, as ``{name}_{suffix}``.
FIGURES = ("images.png", "power.png", "scatter.png", "consistency.png", "compare.json")
_UNITS = {"intensity": "I/Ic", "blos": "G"}
_LABELS = {"input": "HMI input", "enhance": "Enhance", "richardson_lucy": "Richardson-Lucy", "bicubic": "bicubic x2",
           "reference": "reference"}  # fmt: skip
# Keys copied from the input header onto the consistency map: its world coordinates and observation.
_WCS_KEYS = re.compile(
    r"^(CTYPE\d|CUNIT\d|CRPIX\d|CRVAL\d|CDELT\d|CROTA\d?|PC\d_\d|CD\d_\d|WCSNAME|LONPOLE|LATPOLE|DATE-OBS|DATE_OBS|"
    r"T_OBS|TELESCOP|INSTRUME|WAVELNTH|DSUN_OBS|DSUN_REF|RSUN_OBS|RSUN_REF|HGLN_OBS|HGLT_OBS|CRLN_OBS|CRLT_OBS|"
    r"BUNIT)$"
)


def _load(data, pixel_scale):
    """(image, header or None, name, pixel scale in arcsec) from a path, a Map or an array."""
    header, name = None, "compare"
    if isinstance(data, str | Path):
        from ..io import read_fits

        image, header = read_fits(data)
        name = fits_stem(data)
    else:
        try:
            from sunpy.map import GenericMap
        except ImportError:  # pragma: no cover - sunpy is a dependency
            GenericMap = ()  # noqa: N806
        if isinstance(data, GenericMap):
            image, header = np.asarray(data.data), data.meta
        else:
            image = data
    image = check_image(image)
    if pixel_scale is None:
        from ..scenes.sources import pixel_scale_from_header

        from_header = pixel_scale_from_header(header) if header is not None else None
        scale = float((from_header if from_header is not None else HMI_PIXEL_SCALE).to_value(u.arcsec))
    else:
        if not isinstance(pixel_scale, u.Quantity):
            msg = f"pixel_scale must be an angle Quantity (e.g. 0.504 * u.arcsec), got {pixel_scale!r}"
            raise TypeError(msg)
        scale = float(pixel_scale.to_value(u.arcsec))
    return image, header, name, check_positive(scale, name="pixel_scale")


def parse_region(text: str):
    """Read a region written ``Y0:Y1,X0:X1`` (0-based pixels, ends excluded) into a tuple of slices.

    Parameters
    ----------
    text : str
        The region, e.g. ``"10:50,0:40"`` (rows, then columns; input pixels).

    Returns
    -------
    tuple of slice
        ``(rows, columns)``, to index a NumPy array.

    Examples
    --------
    >>> parse_region("10:50,0:40")
    (slice(10, 50, None), slice(0, 40, None))
    """
    try:
        rows, cols = (tuple(int(v) for v in part.split(":")) for part in str(text).split(","))
        if len(rows) != 2 or len(cols) != 2:
            raise ValueError
    except ValueError:
        msg = f"region must be written Y0:Y1,X0:X1 in input pixels, got {text!r}"
        raise ValueError(msg) from None
    return slice(*rows), slice(*cols)


def _region_list(region):
    return [[int(s.start), int(s.stop)] for s in region]


def _check_region(region, shape):
    if len(region) != 2 or not all(isinstance(s, slice) and s.step in (None, 1) for s in region):
        msg = f"region must be two slices (rows, columns) of input pixels, got {region!r}"
        raise ValueError(msg)
    bounds = [s.indices(n)[:2] for s, n in zip(region, shape, strict=True)]
    if any(stop - start < 2 for start, stop in bounds):
        msg = f"region {region!r} holds fewer than 2x2 pixels of an image of shape {shape}"
        raise ValueError(msg)
    return tuple(slice(start, stop) for start, stop in bounds)


def _json_safe(value):
    """Numbers as plain floats; inf and NaN as None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_safe(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def consistency_hdu(output, image, *, header=None, input_scale: u.Quantity = HMI_PIXEL_SCALE) -> fits.ImageHDU:
    """The per-pixel consistency map of an Enhance output as a FITS image extension.

    Parameters
    ----------
    output : (2 ny, 2 nx) array_like
        The enhanced image.
    image : (ny, nx) array_like
        The input it came from.
    header : `~astropy.io.fits.Header` or dict-like, optional
        The input's header: its world coordinates (the map lies on the input grid) and BUNIT are copied.
    input_scale : `~astropy.units.Quantity`
        Pixel scale of the input; defaults to 0.504 arcsec.

    Returns
    -------
    `~astropy.io.fits.ImageHDU`
        EXTNAME 'CONSISTENCY', float32 data of the input's shape: the output degraded back to HMI
        (`~enhance.analysis.metrics.reconvolve`, ``resolution='target'``) minus the input, in the input's units.
        The header holds the scalar consistency (CONSIST) and the mean absolute residual (CONSMAE).

    Examples
    --------
    >>> import numpy as np
    >>> hdu = consistency_hdu(np.ones((40, 40)), np.ones((20, 20)))
    >>> hdu.name, hdu.data.shape
    ('CONSISTENCY', (20, 20))
    """
    residual = consistency_map(output, image, input_scale=input_scale, resolution="target")
    data = check_image(image).astype(np.float64)
    both = np.isfinite(residual) & np.isfinite(data)
    scale = float(np.sum(np.abs(data[both])))
    value = float(np.sum(np.abs(residual[both])) / scale) if scale > 0 else float("nan")
    mae = float(np.mean(np.abs(residual[both]))) if both.any() else float("nan")
    card_header = fits.Header()
    if header is not None:
        for key, item in header.items():
            if _WCS_KEYS.match(str(key).upper()):
                try:
                    card_header[str(key).upper()] = item
                except (ValueError, TypeError):
                    continue
    card_header["EXTNAME"] = "CONSISTENCY"
    card_header["CONSIST"] = (value if math.isfinite(value) else "NaN", "sum|R(out)-in| / sum|in|")
    card_header["CONSMAE"] = (mae if math.isfinite(mae) else "NaN", "mean |R(out)-in| in input units")
    card_header.add_comment("Enhance output degraded back to HMI (PSF HMI / Airy 28 cm, 2x2 binning) minus input.")
    card_header.add_comment("Diaz Baso & Asensio Ramos 2018, A&A 614, A5, Sect. 4.5 (reconvolution test).")
    return fits.ImageHDU(residual.astype(np.float32), header=card_header, name="CONSISTENCY")


def _write_outputs(out_dir, name, figures, result, *, overwrite):
    from ..io import atomic_write

    paths = []
    for suffix, fig in figures.items():
        path = out_dir / f"{name}_{suffix}"
        atomic_write(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=110), overwrite=overwrite)
        paths.append(path)
    json_path = out_dir / f"{name}_compare.json"
    result["files"] = [str(p) for p in [*paths, json_path]]
    text = json.dumps(_json_safe(result), indent=2, allow_nan=False)
    atomic_write(json_path, lambda tmp: Path(tmp).write_text(text + "\n"), overwrite=overwrite)
    return result


def compare(
    data,
    kind: str = "auto",
    *,
    network=None,
    model: str = "full",
    out_dir=None,
    name: str | None = None,
    overwrite: bool = False,
    n_iter: int = 20,
    damped: bool = False,
    region=None,
    reference=None,
    qs_level: float | None = None,
    noise_levels=None,
    pixel_scale: u.Quantity | None = None,
    device: str = "auto",
    tile: int | None = None,
) -> dict:
    """Enhance an HMI image and measure what it added, next to Richardson-Lucy and bicubic x2.

    Parameters
    ----------
    data : `~numpy.ndarray`, `sunpy.map.GenericMap`, str or `~pathlib.Path`
        HMI continuum image or magnetogram (gauss), as an array, a Map or a FITS path.
    kind : {'auto', 'intensity', 'blos'}
        'auto' reads the header (`~enhance.io.detect_kind`); arrays need the kind.
    network : `~enhance.models.network.EnhanceNet`, optional
        The network; None loads the shipped ``model``.
    model : {'full', 'light'}
        Shipped model, when ``network`` is None.
    out_dir : str or `~pathlib.Path`, optional
        Write the figures and the JSON here (created if missing): ``{name}_images.png`` (input / Enhance /
        RL on one colour scale, axes in arcsec), ``{name}_power.png`` (power spectra and white-noise
        levels), ``{name}_scatter.png`` (input-output density with factor-2 lines),
        ``{name}_consistency.png`` (consistency maps) and ``{name}_compare.json`` (every number).
    name : str, optional
        File name prefix; defaults to the input file's stem, or 'compare'.
    overwrite : bool
        Replace existing files; without it an existing file raises `FileExistsError` before any work.
    n_iter : int
        Richardson-Lucy iterations; defaults to 20, as in the paper.
    damped : bool
        Use the paper's damped RL (`~enhance.analysis.baselines.richardson_lucy`).
    region : tuple of slice, optional
        Quiet-Sun region in input pixels for the granulation contrast (continuum only); None finds one
        (`~enhance.analysis.metrics.quiet_region`).
    reference : (2 ny, 2 nx) array_like, optional
        The truth on the x2 grid (e.g. the degraded target of a simulation): adds PSNR, SSIM and its own
        spectrum and contrast.
    qs_level : float, optional
        Quiet-Sun level of a continuum image, in its units; None estimates it.
    noise_levels : sequence of float, optional
        White-noise standard deviations per pixel of the x2 grid for the spectra, in data units (continuum:
        as fractions of ``qs_level``); defaults to `DEFAULT_NOISE_LEVELS`.
    pixel_scale : `~astropy.units.Quantity`, optional
        Input pixel scale; defaults to the header's CDELT1, else 0.504 arcsec.
    device : str
        Where the network runs ('auto', 'cpu', 'cuda', ...).
    tile : int, optional
        Tiled inference (see `~enhance.inference.pipeline.enhance`).

    Returns
    -------
    dict
        JSON-ready numbers: ``input`` (shape, scales, unit), ``methods`` (RL iterations, stopping rule,
        offset), ``consistency`` and ``consistency_mean_abs`` (Enhance against the HMI/Airy operator, RL
        against the full HMI PSF; see `~enhance.analysis.metrics.consistency`), ``small_scale_power`` (white-noise
        equivalent level of each image in 0.6-1 times the input's Nyquist frequency, and its power relative
        to the input), ``similarity`` (PSNR/SSIM of Enhance against RL and, with ``reference``, of each
        method against it), ``power_spectra``, then ``contrast`` (continuum: region, quiet-Sun level, input
        and outputs) or ``flux`` and ``amplification_1kG`` (magnetograms: total and unsigned flux in Mx,
        median output/input ratio where the input is 1 kG +- 100 G), and ``files``.

    Notes
    -----
    Non-finite input pixels (off-limb) are filled with their nearest neighbour for RL, the interpolation
    and the spectra, and are left out of every number. The paper reports, for real HMI data: granulation
    contrast 3.7 % in, ~7 % out; consistency ~4 % for Enhance, < 1 % for RL on a magnetogram; RL adding
    small-scale structure at ~80 G where Enhance does not.

    References
    ----------
    Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5, Figs. 7, 9, 11 and Sect. 4.5.

    Examples
    --------
    >>> import numpy as np
    >>> from enhance.models.network import EnhanceNet
    >>> image = 1 + 0.04 * np.random.default_rng(0).normal(size=(32, 32))
    >>> result = compare(image, "intensity", network=EnhanceNet(depth=1, width=8), n_iter=5)
    >>> sorted(result["consistency"])
    ['enhance', 'richardson_lucy']
    """
    from ..inference.pipeline import RunOptions, enhance_array, estimate_qs_level, history_cards, resolve_network

    image, header, default_name, scale = _load(data, pixel_scale)
    check_choice(kind, ("auto", "intensity", "blos"), name="kind")
    kind = resolve_kind(kind, header if header is not None else {}, path=name or "image")
    name = default_name if name is None else str(name)
    if out_dir is not None:
        out_dir = Path(out_dir)
        targets = [out_dir / f"{name}_{suffix}" for suffix in FIGURES]
        existing = [str(p) for p in targets if p.exists()]
        if existing and not overwrite:
            msg = f"{existing[0]} exists; use --overwrite (overwrite=True) to replace it"
            raise FileExistsError(msg)
    finite = np.isfinite(image)
    if not finite.any():
        msg = "image has no finite pixels"
        raise ValueError(msg)
    if min(image.shape) < 8:
        msg = f"image must be at least 8x8 pixels for the diagnostics, got shape {image.shape}"
        raise ValueError(msg)
    filled = fill_nonfinite(image.astype(np.float64), finite)
    fine_missing = np.repeat(np.repeat(~finite, 2, axis=0), 2, axis=1)
    input_scale = scale * u.arcsec
    output_scale = scale / 2 * u.arcsec
    unit = _UNITS[kind]
    if kind == "intensity":
        level = estimate_qs_level(image) if qs_level is None else check_positive(qs_level, name="qs_level")
    else:
        level = None
    if reference is not None:
        reference = check_image(reference, name="reference").astype(np.float64)
        if reference.shape != (2 * image.shape[0], 2 * image.shape[1]):
            fine_shape = (2 * image.shape[0], 2 * image.shape[1])
            msg = f"reference must lie on the x2 grid, shape {fine_shape}, got {reference.shape}"
            raise ValueError(msg)

    # The three x2 images.
    net = resolve_network(kind, model=model, network=network)
    # The network sees the image as `enhance` would show it (a quiet-Sun surface near the limb).
    run = RunOptions(qs_level=qs_level, device=device, tile=tile)
    enhanced = enhance_array(image, kind=kind, network=net, options=run)
    enhanced = enhanced.astype(np.float64)
    rl, rl_info = rl_super_resolve(filled, n_iter=n_iter, input_scale=input_scale, damped=damped, return_info=True)
    bicubic = bicubic_x2(filled)
    outputs = {"enhance": enhanced, "richardson_lucy": rl, "bicubic": bicubic}
    for array in (rl, bicubic):
        array[fine_missing] = np.nan
    if reference is not None:
        outputs["reference"] = reference
    filled_outputs = {key: fill_nonfinite(value, np.isfinite(value)) for key, value in outputs.items()}

    result = {
        "input": {
            "source": str(data) if isinstance(data, str | Path) else type(data).__name__,
            "kind": kind,
            "unit": unit,
            "shape": list(image.shape),
            "pixel_scale_arcsec": scale,
            "output_pixel_scale_arcsec": scale / 2,
            "finite_fraction": float(finite.mean()),
        },
        "methods": {
            "enhance": {"network": history_cards(kind, model, network).split("model: ")[-1],
                        "depth": getattr(net, "depth", None), "width": getattr(net, "width", None)},
            "richardson_lucy": {"n_iter": n_iter, "iterations_done": rl_info["n_iter"], "stopped": rl_info["stopped"],
                                "damped": damped, "offset": rl_info["offset"], "interpolation": "bicubic",
                                "psf": "HMI (Wachter et al. 2012, w=2, W=3.4) at the x2 scale"},
            "bicubic": {"interpolation": "cubic spline, pixel centres (k + 0.5)/2 - 0.5"},
        },
    }  # fmt: skip

    # Consistency: each output degraded back to the input grid, minus the input.
    maps = {
        "enhance": consistency_map(enhanced, image, input_scale=input_scale, resolution="target"),
        "richardson_lucy": consistency_map(rl, image, input_scale=input_scale, resolution="object"),
    }
    data64 = image.astype(np.float64)
    cons, mae = {}, {}
    for key, residual in maps.items():
        both = np.isfinite(residual) & finite
        cons[key] = float(np.sum(np.abs(residual[both])) / np.sum(np.abs(data64[both])))
        mae[key] = float(np.mean(np.abs(residual[both])))
    result["consistency"] = cons
    result["consistency_mean_abs"] = mae
    result["consistency_definition"] = (
        "sum|R(y) - x| / sum|x| over the input grid; R = PSF_HMI/PSF_Airy(0.28 m) then 2x2 binning for Enhance "
        "(its output is at the target resolution), R = PSF_HMI then 2x2 binning for RL (it removes the whole PSF)"
    )

    # Spectra and the small-scale power each method adds.
    nyquist_in = 0.5 / scale
    band = u.Quantity([0.6 * nyquist_in, nyquist_in], 1 / u.arcsec)
    spectra = {"input": power_spectrum(filled, input_scale)}
    levels = {"input": white_noise_level(filled, input_scale, band=band)}
    band_power = {"input": (levels["input"] * scale) ** 2}
    for key, value in filled_outputs.items():
        spectra[key] = power_spectrum(value, output_scale)
        levels[key] = white_noise_level(value, output_scale, band=band)
        band_power[key] = (levels[key] * scale / 2) ** 2
    result["small_scale_power"] = {
        "band_per_arcsec": [float(v) for v in band.value],
        "white_noise_level": levels,
        "power_relative_to_input": {key: band_power[key] / band_power["input"] for key in band_power},
    }
    sigmas = DEFAULT_NOISE_LEVELS[kind] if noise_levels is None else tuple(float(s) for s in noise_levels)
    sigma_units = [s * level for s in sigmas] if kind == "intensity" else list(sigmas)
    noise_power = {
        (f"white noise {s:g} Ic" if kind == "intensity" else f"white noise {s:g} G"): white_noise_power(v, output_scale)
        for s, v in zip(sigmas, sigma_units, strict=True)
    }
    result["noise_levels"] = {"sigma": sigma_units, "unit": unit, "grid_arcsec": scale / 2,
                              "power": list(noise_power.values())}  # fmt: skip
    result["power_spectra"] = {
        key: {"frequency_per_arcsec": freq.to_value(1 / u.arcsec), "power": power}
        for key, (freq, power) in spectra.items()
    }

    # Similarity: Enhance against RL, and each method against the truth when there is one.
    both_ok = np.isfinite(enhanced) & np.isfinite(rl)
    similarity = {
        "enhance_vs_richardson_lucy": {
            "psnr_db": psnr(np.where(both_ok, enhanced, np.nan), rl),
            "ssim": ssim(filled_outputs["enhance"], filled_outputs["richardson_lucy"]),
        }
    }
    if reference is not None:
        for key in ("enhance", "richardson_lucy", "bicubic"):
            similarity[f"{key}_vs_reference"] = {
                "psnr_db": psnr(outputs[key], reference),
                "ssim": ssim(filled_outputs[key], filled_outputs["reference"]),
            }
    result["similarity"] = similarity

    panels_region = None
    if kind == "intensity":
        region = quiet_region(image, qs_level=level) if region is None else _check_region(region, image.shape)
        panels_region = region
        fine_region = scale_region(region, 2)
        contrasts = {"input": contrast(image, region=region)}
        contrasts.update({key: contrast(value, region=fine_region) for key, value in outputs.items()})
        result["contrast"] = {"region_input_pixels": _region_list(region), "qs_level": level, **contrasts}
    else:
        distance = float(header["DSUN_OBS"]) * u.m if header is not None and "DSUN_OBS" in header else 1 * u.AU
        flux = {
            "input": {
                "total_Mx": total_flux(image, input_scale, distance=distance).to_value(u.Mx),
                "unsigned_Mx": unsigned_flux(image, input_scale, distance=distance).to_value(u.Mx),
            }
        }
        for key, value in outputs.items():
            flux[key] = {
                "total_Mx": total_flux(value, output_scale, distance=distance).to_value(u.Mx),
                "unsigned_Mx": unsigned_flux(value, output_scale, distance=distance).to_value(u.Mx),
            }
        result["flux"] = flux
        result["flux_distance_m"] = float(distance.to_value(u.m))
        result["amplification_1kG"] = {key: field_amplification(filled, outputs[key])
                                       for key in ("enhance", "richardson_lucy")}  # fmt: skip

    if out_dir is None:
        return _json_safe(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _figures(image, outputs, maps, spectra, noise_power, result, kind=kind, input_scale=input_scale,
                       output_scale=output_scale, region=panels_region, n_iter=rl_info["n_iter"])  # fmt: skip
    return _json_safe(_write_outputs(out_dir, name, figures, result, overwrite=overwrite))


def _figures(image, outputs, maps, spectra, noise_power, result, *, kind, input_scale, output_scale, region, n_iter):
    from matplotlib.figure import Figure

    from .figures import plot_comparison, plot_consistency, plot_density_scatter, plot_power_spectra

    unit = _UNITS[kind]
    names = ["input", "enhance", "richardson_lucy"] + (["reference"] if "reference" in outputs else [])
    titles = {key: _LABELS[key] for key in names}
    titles["richardson_lucy"] = f"Richardson-Lucy ({n_iter} it.)"
    if kind == "intensity":
        titles = {key: f"{title}, contrast {100 * result['contrast'][key]:.1f} %" for key, title in titles.items()}
    arrays = {"input": image, **outputs}
    images = {titles[key]: arrays[key] for key in names}
    scales = {titles[key]: (input_scale if key == "input" else output_scale) for key in names}
    panels = plot_comparison(images, scales, kind=kind, region=region)

    spectra_fig = plot_power_spectra({_LABELS[key]: value for key, value in spectra.items()}, noise_levels=noise_power,
                                     unit=unit, title="azimuthally averaged power spectra")  # fmt: skip
    ax = spectra_fig.axes[0]
    ax.axvline(0.5 / input_scale.to_value(u.arcsec), color="0.7", linewidth=0.8, zorder=0)

    scatter = Figure(figsize=(10.5, 4.6), layout="constrained")
    axes = scatter.subplots(1, 2)
    values = np.concatenate([np.ravel(image), np.ravel(outputs["enhance"]), np.ravel(outputs["richardson_lucy"])])
    values = values[np.isfinite(values)]
    limits = tuple(float(v) for v in np.percentile(values, [0.1, 99.9]))
    if kind == "blos":
        top = max(abs(limits[0]), abs(limits[1]))
        limits = (-top, top)
    for ax, key in zip(axes, ("enhance", "richardson_lucy"), strict=True):
        plot_density_scatter(image, outputs[key], ax=ax, limits=limits, unit=unit, xlabel="HMI input",
                             ylabel=_LABELS[key], title=f"{_LABELS[key]} against input")  # fmt: skip

    consistency_fig = Figure(figsize=(10.5, 4.6), layout="constrained")
    axes = consistency_fig.subplots(1, 2, sharex=True, sharey=True)
    # Each map on its own symmetric scale (own colour bar): the two residuals can differ by orders of magnitude.
    for ax, key in zip(axes, maps, strict=True):
        plot_consistency(maps[key], input_scale, value=result["consistency"][key], ax=ax, unit=unit,
                         title=_LABELS[key])  # fmt: skip
    return {"images.png": panels, "power.png": spectra_fig, "scatter.png": scatter, "consistency.png": consistency_fig}
