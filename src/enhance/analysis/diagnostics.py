"""The paper's diagnostics of an enhanced image: what Enhance added, and where, next to classical baselines.

`compare` runs Enhance, Richardson-Lucy on the x2 grid and bicubic interpolation on one HMI image and
measures them as Díaz Baso & Asensio Ramos (2018) do: granulation contrast (Fig. 7), power spectra with
white-noise levels and the input-output density scatter (Fig. 9), the comparison with RL (Fig. 11) and
the reconvolution ("consistency") test. It returns every number and, with ``out_dir``, writes the
figures and a JSON file. `consistency_hdu` packs the per-pixel consistency map as a FITS extension for
``enhance run --consistency``.
"""

import dataclasses
import json
import math
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from sunpy.util.exceptions import SunpyMetadataWarning

from ..checks import check_choice, check_image, check_positive, fill_nonfinite
from ..constants import HMI_PIXEL_SCALE
from ..exceptions import IncompatibleOptionsError
from ..grid import on_output_grid
from ..inference.pipeline import (
    QS_LEVEL_IS_CONTINUUM,
    RunOptions,
    enhance_array,
    estimate_qs_level,
    history_cards,
    resolve_network,
    sequence_noise,
)
from ..io import atomic_write, fits_stem, read_fits, resolve_kind, upscale_header
from ..observation.consistency import consistency_hdu  # noqa: F401 - also here
from ..runtime.export import load_weights_file
from ..scenes.sources import pixel_scale_from_header
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
    temporal_flicker,
    total_flux,
    unsigned_flux,
    white_noise_level,
    white_noise_power,
)

__all__ = ["DEFAULT_NOISE_LEVELS", "FIGURES", "compare", "consistency_hdu", "parse_region", "summary"]

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


def _load(data, pixel_scale):
    """(image, header or None, name, pixel scale in arcsec) from a path, a Map or an array."""
    header, name = None, "compare"
    if isinstance(data, str | Path):
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


def _write_outputs(out_dir, name, figures, result, *, overwrite):
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
    weights=None,
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
    force: bool = False,
) -> dict:
    """Enhance an HMI image and measure what it added, next to Richardson-Lucy and bicubic x2.

    Parameters
    ----------
    data : `~numpy.ndarray`, `sunpy.map.GenericMap`, str or `~pathlib.Path`, or a sequence of them
        HMI continuum image or magnetogram (gauss), as an array, a Map or a FITS path. A sequence (a list
        or tuple of them, a (time, ny, nx) array or a `~sunpy.map.MapSequence`) of images of one shape and
        kind is diagnosed on its first frame and adds the temporal flicker over all its frames.
    kind : {'auto', 'intensity', 'blos'}
        'auto' reads the header (`~enhance.io.detect_kind`); arrays need the kind.
    network : `~enhance.models.network.EnhanceNet`, optional
        The network; None loads the shipped ``model``.
    model : {'full', 'light', 'paper', 'paper-light'}
        Shipped model, when ``network`` is None.
    weights : str or `~pathlib.Path`, optional
        A safetensors or ONNX weights file to load instead (its kind must be the data's), as
        ``enhance compare --weights``.
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
        Tiled inference (see `~enhance.inference.api.enhance`).
    force : bool
        Run inputs `~enhance.io.resolve_kind` refuses (not helioprojective, off HMI's pixel scale, a
        Dopplergram, a file solar-enhance wrote).

    Returns
    -------
    dict
        JSON-ready numbers: ``input`` (shape, scales, unit), ``methods`` (RL iterations, stopping rule,
        offset), ``consistency`` and ``consistency_mean_abs`` (Enhance against the HMI/Airy operator, RL
        against the full HMI PSF; see `~enhance.observation.consistency.consistency`), ``small_scale_power``
        (white-noise equivalent level of each image in 0.6-1 times the input's Nyquist frequency, and its
        power relative to the input), ``similarity`` (PSNR/SSIM of Enhance against RL and, with ``reference``,
        of each method against it), ``power_spectra``, then ``contrast`` (continuum: region, quiet-Sun level,
        input and outputs) or ``flux`` and ``amplification_1kG`` (magnetograms: total and unsigned flux in Mx,
        median output/input ratio where the input is 1 kG +- 100 G), ``flicker`` for a sequence (``frames``,
        ``enhance``: `~enhance.analysis.metrics.temporal_flicker` of Enhance against bicubic x2, every frame
        told the sequence's noise level, ``noise``: that level), and ``files``.

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
    >>> image = 1 + 0.002 * np.random.default_rng(0).normal(size=(32, 32))  # twice HMI's noise
    >>> result = compare(image, "intensity", model="light", n_iter=5)
    >>> sorted(result["consistency"])
    ['enhance', 'richardson_lucy']
    """
    data, frames = _first_frame(data)
    image, header, default_name, scale = _load(data, pixel_scale)
    check_choice(kind, ("auto", "intensity", "blos"), name="kind")
    requested = kind
    kind = resolve_kind(kind, header if header is not None else {}, path=_frame_name(data, name), force=force)
    if kind == "blos" and qs_level is not None:  # before any work, as `enhance` refuses it
        raise IncompatibleOptionsError(QS_LEVEL_IS_CONTINUUM)
    if frames is not None:  # every frame checked before any work
        frames = _frame_images(frames, image.shape, kind=kind, requested=requested, pixel_scale=pixel_scale,
                               force=force)  # fmt: skip
    if weights is not None:
        if network is not None:
            msg = "pass network= or weights=, not both"
            raise ValueError(msg)

        network = load_weights_file(weights, kind=kind)
    name = default_name if name is None else str(name)
    if out_dir is not None:
        out_dir = Path(out_dir)
        _refuse_existing(out_dir, name, overwrite=overwrite)
    finite = _check_input(image)
    input_scale, output_scale = scale * u.arcsec, scale / 2 * u.arcsec
    level = _qs_level(image, kind, qs_level)
    reference = _check_reference(reference, image.shape)

    net = resolve_network(kind, model=model, network=network)
    # The network sees the image as `enhance` would show it (a quiet-Sun surface near the limb).
    run = RunOptions(qs_level=qs_level, device=device, tile=tile)
    filled = fill_nonfinite(image.astype(np.float64), finite)
    outputs, rl_info = _x2_images(image, filled, finite, kind=kind, network=net, options=run, n_iter=n_iter,
                                  input_scale=input_scale, damped=damped, reference=reference)  # fmt: skip
    filled_outputs = {key: fill_nonfinite(value, np.isfinite(value)) for key, value in outputs.items()}
    unit = _unit_text(header, kind)

    result = _description(data, image, finite, kind=kind, unit=unit, scale=scale, model=model, network=network,
                          net=net, rl_info=rl_info, n_iter=n_iter, damped=damped)  # fmt: skip
    maps = _consistency_maps(outputs, image, input_scale)
    result.update(_consistency(maps, image, finite))
    spectra, result["small_scale_power"] = _small_scale_power(filled, filled_outputs, scale)
    noise_power, result["noise_levels"] = _noise_levels(kind, noise_levels, level, unit=unit, scale=scale)
    result["power_spectra"] = {
        key: {"frequency_per_arcsec": freq.to_value(1 / u.arcsec), "power": power}
        for key, (freq, power) in spectra.items()
    }
    result["similarity"] = _similarity(outputs, filled_outputs)
    if frames is not None:
        result["flicker"] = _flicker(frames, kind=kind, network=net, options=run)
    panels_region = None
    if kind == "intensity":
        panels_region = quiet_region(image, qs_level=level) if region is None else _check_region(region, image.shape)
        result["contrast"] = _contrasts(image, outputs, panels_region, level)
    else:
        result.update(_fluxes(image, filled, outputs, header, input_scale=input_scale, output_scale=output_scale))

    if out_dir is None:
        return _json_safe(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _figures(image, outputs, maps, spectra, noise_power, result, kind=kind, input_scale=input_scale,
                       output_scale=output_scale, region=panels_region, n_iter=rl_info["n_iter"],
                       header=header)  # fmt: skip
    return _json_safe(_write_outputs(out_dir, name, figures, result, overwrite=overwrite))


def _first_frame(data):
    """``(first frame, frames)`` of a sequence (a list or tuple, a (time, ny, nx) array, a MapSequence); ``(data,
    None)`` for one image."""
    try:
        from sunpy.map import MapSequence
    except ImportError:  # pragma: no cover - sunpy is a dependency
        MapSequence = ()  # noqa: N806
    if isinstance(data, MapSequence):
        frames = list(data.maps)
    elif isinstance(data, list | tuple):
        frames = list(data)
    elif isinstance(data, np.ndarray) and data.ndim == 3:
        frames = list(data)
    else:
        return data, None
    if len(frames) < 2:
        msg = f"a sequence needs at least two frames for the temporal flicker, got {len(frames)}"
        raise ValueError(msg)
    return frames[0], frames


def _frame_name(data, name=None, index=None):
    """What messages call an input: its path, else ``name``, else 'frame INDEX' or 'image'."""
    if isinstance(data, str | Path):
        return str(data)
    if name is not None:
        return str(name)
    return "image" if index is None else f"frame {index}"


def _frame_images(frames, shape, *, kind, requested, pixel_scale, force):
    """The frames of a sequence as images, each with a header checked as the first one is (`~enhance.io.resolve_kind`)
    and of its kind and shape; the messages name the frame."""
    names = {"intensity": "a continuum image", "blos": "a magnetogram"}
    images = []
    for index, frame in enumerate(frames):
        image, header, _, _ = _load(frame, pixel_scale)
        label = _frame_name(frame, index=index)
        if image.shape != shape:
            msg = f"every frame of a sequence must have the first one's shape {shape}, {label} has {image.shape}"
            raise ValueError(msg)
        if header is not None and index > 0:
            found = resolve_kind(requested, header, path=label, force=force, flag=isinstance(frame, str | Path))
            if found != kind:
                msg = f"{label} is {names[found]}, but the sequence's first frame is {names[kind]}"
                raise ValueError(msg)
        images.append(image)
    return images


def _flicker(images, *, kind, network, options):
    """The ``flicker`` entry: `~enhance.analysis.metrics.temporal_flicker` of Enhance against bicubic x2 over the
    frames (`_frame_images`), each told the sequence's noise level (`~enhance.inference.pipeline.sequence_noise`)."""
    noise = sequence_noise(images, kind=kind, network=network, qs_level=options.qs_level)
    run = dataclasses.replace(options, noise=noise)
    enhanced = np.stack([enhance_array(image, kind=kind, network=network, options=run) for image in images])
    upsampled = np.stack([bicubic_x2(fill_nonfinite(image, np.isfinite(image))) for image in images])
    upsampled[np.isnan(enhanced)] = np.nan
    return {"frames": len(images), "enhance": temporal_flicker(enhanced, upsampled),
            "noise": None if noise is None else dataclasses.asdict(noise),
            "definition": "RMS over consecutive frames of the change of (Enhance - bicubic x2), relative to the RMS "
                          "of (Enhance - bicubic x2); frames not registered"}  # fmt: skip


def summary(result, *, source="input") -> list:
    """The lines ``enhance compare`` prints: consistency, contrast or flux, small-scale power, files written.

    Parameters
    ----------
    result : dict
        What `compare` returned.
    source : str or `~pathlib.Path`
        The input's name.

    Returns
    -------
    list of str
        One line per number, then one per file written.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from enhance.data import sample_path
    >>> cut = fits.getdata(sample_path("blos"))[:64, :64]
    >>> lines = summary(compare(cut, "blos", model="light", n_iter=5), source="cut-out")
    >>> lines[0]  # doctest: +ELLIPSIS
    'cut-out (blos): consistency Enhance ... %, Richardson-Lucy ... %'
    """
    kind, unit = result["input"]["kind"], result["input"]["unit"]
    cons = result["consistency"]
    lines = [f"{source} ({kind}): consistency Enhance {100 * cons['enhance']:.2f} %, "
             f"Richardson-Lucy {100 * cons['richardson_lucy']:.2f} %"]  # fmt: skip
    if kind == "intensity":
        c = result["contrast"]
        (y0, y1), (x0, x1) = c["region_input_pixels"]
        lines.append(f"granulation contrast [{y0}:{y1}, {x0}:{x1}]: input {100 * c['input']:.2f} %, "
                     f"Enhance {100 * c['enhance']:.2f} %, RL {100 * c['richardson_lucy']:.2f} %, "
                     f"bicubic {100 * c['bicubic']:.2f} %")  # fmt: skip
    else:
        flux = result["flux"]
        lines.append("unsigned flux [Mx]: " + ", ".join(f"{key} {flux[key]['unsigned_Mx']:.3e}" for key in flux))
    levels = result["small_scale_power"]["white_noise_level"]
    low, high = result["small_scale_power"]["band_per_arcsec"]
    lines.append(f"white-noise level at {low:.2f}-{high:.2f} /arcsec [{unit}]: "
                 + ", ".join(f"{key} {value:.3g}" for key, value in levels.items()))  # fmt: skip
    if "flicker" in result:
        flicker = result["flicker"]
        value = "undefined (Enhance adds nothing)" if flicker["enhance"] is None else f"{flicker['enhance']:.4g}"
        lines.append(f"temporal flicker over {flicker['frames']} frames: Enhance {value} (RMS frame-to-frame change "
                     "of Enhance - bicubic, relative to its RMS; 0 for a static scene)")  # fmt: skip
    lines += [f"wrote {path}" for path in result.get("files", [])]
    return lines


def _refuse_existing(out_dir, name, *, overwrite):
    """Raise `FileExistsError` before any work if a file `compare` would write exists (without ``overwrite``)."""
    existing = [str(p) for p in (out_dir / f"{name}_{suffix}" for suffix in FIGURES) if p.exists()]
    if existing and not overwrite:
        msg = f"{existing[0]} exists; use --overwrite (overwrite=True) to replace it"
        raise FileExistsError(msg)


def _check_input(image):
    """The finite-pixel mask of ``image``, which must have some and be at least 8x8 pixels."""
    finite = np.isfinite(image)
    if not finite.any():
        msg = "image has no finite pixels"
        raise ValueError(msg)
    if min(image.shape) < 8:
        msg = f"image must be at least 8x8 pixels for the diagnostics, got shape {image.shape}"
        raise ValueError(msg)
    return finite


def _qs_level(image, kind, qs_level):
    """The quiet-Sun level of a continuum image (given or estimated); None for a magnetogram."""
    if kind != "intensity":
        return None
    return estimate_qs_level(image) if qs_level is None else check_positive(qs_level, name="qs_level")


def _check_reference(reference, shape):
    """``reference`` as a float64 image on the x2 grid of ``shape``, or None."""
    if reference is None:
        return None
    reference = check_image(reference, name="reference").astype(np.float64)
    fine_shape = (2 * shape[0], 2 * shape[1])
    if reference.shape != fine_shape:
        msg = f"reference must lie on the x2 grid, shape {fine_shape}, got {reference.shape}"
        raise ValueError(msg)
    return reference


def _x2_images(image, filled, finite, *, kind, network, options, n_iter, input_scale, damped, reference):
    """The x2 images: Enhance, Richardson-Lucy and bicubic (NaN at missing input pixels), and the reference."""
    enhanced = enhance_array(image, kind=kind, network=network, options=options).astype(np.float64)
    rl, rl_info = rl_super_resolve(filled, n_iter=n_iter, input_scale=input_scale, damped=damped, return_info=True)
    bicubic = bicubic_x2(filled)
    fine_missing = on_output_grid(~finite)
    for array in (rl, bicubic):
        array[fine_missing] = np.nan
    outputs = {"enhance": enhanced, "richardson_lucy": rl, "bicubic": bicubic}
    if reference is not None:
        outputs["reference"] = reference
    return outputs, rl_info


def _unit_text(header, kind):
    """The data's unit for labels and the JSON: a continuum's own BUNIT (e.g. DN/s), else I/Ic; G for fields."""
    unit = str(header.get("BUNIT", "") or "").strip() if header is not None else ""
    if kind == "intensity" and unit and unit.lower() not in ("i/ic", "ic", "dimensionless", "1"):
        return unit
    return _UNITS[kind]


def _description(data, image, finite, *, kind, unit, scale, model, network, net, rl_info, n_iter, damped):
    """The ``input`` and ``methods`` entries of the result."""
    return {
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


def _consistency_maps(outputs, image, input_scale):
    """Each output degraded back to the input grid, minus the input (Enhance at the target resolution)."""
    return {
        "enhance": consistency_map(outputs["enhance"], image, input_scale=input_scale, resolution="target"),
        "richardson_lucy": consistency_map(outputs["richardson_lucy"], image, input_scale=input_scale,
                                           resolution="object"),
    }  # fmt: skip


def _consistency(maps, image, finite):
    """The relative and mean absolute consistency of each map, and how they are defined."""
    data64 = image.astype(np.float64)
    cons, mae = {}, {}
    for key, residual in maps.items():
        both = np.isfinite(residual) & finite
        cons[key] = float(np.sum(np.abs(residual[both])) / np.sum(np.abs(data64[both])))
        mae[key] = float(np.mean(np.abs(residual[both])))
    definition = (
        "sum|R(y) - x| / sum|x| over the input grid; R = PSF_HMI/PSF_Airy(0.28 m) then 2x2 binning for Enhance "
        "(its output is at the target resolution), R = PSF_HMI then 2x2 binning for RL (it removes the whole PSF)"
    )
    return {"consistency": cons, "consistency_mean_abs": mae, "consistency_definition": definition}


def _small_scale_power(filled, filled_outputs, scale):
    """Power spectra of the input and outputs, and the white-noise level of each in 0.6-1 input Nyquist."""
    input_scale, output_scale = scale * u.arcsec, scale / 2 * u.arcsec
    nyquist_in = 0.5 / scale
    band = u.Quantity([0.6 * nyquist_in, nyquist_in], 1 / u.arcsec)
    spectra = {"input": power_spectrum(filled, input_scale)}
    levels = {"input": white_noise_level(filled, input_scale, band=band)}
    band_power = {"input": (levels["input"] * scale) ** 2}
    for key, value in filled_outputs.items():
        spectra[key] = power_spectrum(value, output_scale)
        levels[key] = white_noise_level(value, output_scale, band=band)
        band_power[key] = (levels[key] * scale / 2) ** 2
    small = {
        "band_per_arcsec": [float(v) for v in band.value],
        "white_noise_level": levels,
        "power_relative_to_input": {key: band_power[key] / band_power["input"] for key in band_power},
    }
    return spectra, small


def _noise_levels(kind, noise_levels, level, *, unit, scale):
    """The white-noise reference spectra drawn on the power plot, and their entry in the result."""
    output_scale = scale / 2 * u.arcsec
    sigmas = DEFAULT_NOISE_LEVELS[kind] if noise_levels is None else tuple(float(s) for s in noise_levels)
    sigma_units = [s * level for s in sigmas] if kind == "intensity" else list(sigmas)
    noise_power = {
        (f"white noise {s:g} Ic" if kind == "intensity" else f"white noise {s:g} G"): white_noise_power(v, output_scale)
        for s, v in zip(sigmas, sigma_units, strict=True)
    }
    entry = {"sigma": sigma_units, "unit": unit, "grid_arcsec": scale / 2, "power": list(noise_power.values())}
    return noise_power, entry


def _similarity(outputs, filled_outputs):
    """PSNR and SSIM of Enhance against RL, and of each method against the reference when there is one."""
    enhanced, rl = outputs["enhance"], outputs["richardson_lucy"]
    both_ok = np.isfinite(enhanced) & np.isfinite(rl)
    similarity = {
        "enhance_vs_richardson_lucy": {
            "psnr_db": psnr(np.where(both_ok, enhanced, np.nan), rl),
            "ssim": ssim(filled_outputs["enhance"], filled_outputs["richardson_lucy"]),
        }
    }
    if "reference" in outputs:
        for key in ("enhance", "richardson_lucy", "bicubic"):
            similarity[f"{key}_vs_reference"] = {
                "psnr_db": psnr(outputs[key], outputs["reference"]),
                "ssim": ssim(filled_outputs[key], filled_outputs["reference"]),
            }
    return similarity


def _contrasts(image, outputs, region, level):
    """Granulation contrast of the input and of each output in the quiet-Sun ``region``."""
    fine_region = scale_region(region, 2)
    contrasts = {"input": contrast(image, region=region)}
    contrasts.update({key: contrast(value, region=fine_region) for key, value in outputs.items()})
    return {"region_input_pixels": _region_list(region), "qs_level": level, **contrasts}


def _fluxes(image, filled, outputs, header, *, input_scale, output_scale):
    """Total and unsigned flux of the input and each output, and the amplification of 1 kG fields."""
    distance = float(header["DSUN_OBS"]) * u.m if header is not None and "DSUN_OBS" in header else 1 * u.AU

    def fluxes(values, scale):
        return {"total_Mx": total_flux(values, scale, distance=distance).to_value(u.Mx),
                "unsigned_Mx": unsigned_flux(values, scale, distance=distance).to_value(u.Mx)}  # fmt: skip

    flux = {"input": fluxes(image, input_scale)}
    flux.update({key: fluxes(value, output_scale) for key, value in outputs.items()})
    return {
        "flux": flux,
        "flux_distance_m": float(distance.to_value(u.m)),
        "amplification_1kG": {key: field_amplification(filled, outputs[key]) for key in ("enhance", "richardson_lucy")},
    }


def _maps_of(image, outputs, header, names):
    """sunpy Maps of the input and the x2 outputs on their own grids, when ``header`` is helioprojective; else None."""
    if header is None:
        return None
    ctype = str(header.get("CTYPE1", "") or "").upper()
    if not ctype.startswith("HPLN"):
        return None

    import sunpy.map

    with warnings.catch_warnings():
        # The panels need only the WCS: a cut-out without observer keys still has helioprojective axes.
        warnings.simplefilter("ignore", SunpyMetadataWarning)
        source = sunpy.map.Map(image, header)
        fine = upscale_header(source.meta, 2, shape=image.shape)
        arrays = {"input": image, **outputs}
        return {key: source if key == "input" else sunpy.map.Map(arrays[key], fine) for key in names}


def _figures(image, outputs, maps, spectra, noise_power, result, *, kind, input_scale, output_scale, region, n_iter,
             header=None):  # fmt: skip
    from matplotlib.figure import Figure

    from .figures import (
        image_limits,
        plot_comparison,
        plot_consistency,
        plot_density_scatter,
        plot_maps,
        plot_power_spectra,
    )

    unit = result["input"]["unit"]
    names = ["input", "enhance", "richardson_lucy"] + (["reference"] if "reference" in outputs else [])
    titles = {key: _LABELS[key] for key in names}
    titles["richardson_lucy"] = f"Richardson-Lucy ({n_iter} it.)"
    if kind == "intensity":
        titles = {key: f"{title}, contrast {100 * result['contrast'][key]:.1f} %" for key, title in titles.items()}
    arrays = {"input": image, **outputs}
    sky = _maps_of(image, outputs, header, names)
    if sky is not None:  # helioprojective axes from each grid's WCS, one colour scale
        limits = image_limits(image, kind=kind)
        panels = plot_maps({titles[key]: sky[key] for key in names}, kind=kind, limits=limits, region=region)
    else:
        images = {titles[key]: arrays[key] for key in names}
        scales = {titles[key]: (input_scale if key == "input" else output_scale) for key in names}
        panels = plot_comparison(images, scales, kind=kind, region=region)
        panels.axes[-1].set_ylabel(unit)

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
