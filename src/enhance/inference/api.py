"""`enhance()`: deconvolve and super-resolve an HMI image, given as an array, a Quantity, a Map, a
MapSequence, a cube, a dask array or a FITS path.

This is the package's entry point: it dispatches on the input type, converts units and carries the
metadata along; the array core (`~enhance.inference.pipeline.enhance_array`) does the work, and dask
arrays go to `~enhance.inference.distributed.enhance_dask`.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ..checks import check_kind, check_positive
from ..exceptions import IncompatibleOptionsError
from ..grid import on_output_grid
from ..io import (
    check_new_file,
    check_output,
    gauss_factor,
    provenance_cards,
    read_fits,
    resolve_kind,
    uncertainty_hdu,
    upscale_header,
    warn_near_limb,
    write_fits,
)
from .distributed import enhance_dask
from .pipeline import (
    NoiseChoice,
    RunOptions,
    assumption_cards,
    check_values,
    enhance_array,
    history_cards,
    quantize_step,
    registry_cards,
    resolve_network,
    run_options,
    sequence_noise,
)

if TYPE_CHECKING:
    from ..models.network import EnhanceNet

__all__ = ["enhance"]


def _unit_kind(unit, kind, *, force, name):
    """The kind implied by a data unit, checked against ``kind``; and the factor to gauss for a magnetogram."""
    if unit is None:
        return ("intensity" if kind == "auto" else kind), 1.0
    unit = u.Unit(unit)
    if unit.is_equivalent(u.G):
        if kind == "intensity" and not force:
            msg = (f"{name} is in {unit} (a magnetic field) but was given as intensity; pass kind='blos' "
                   "(on the command line: -t blos), or force=True to run it as intensity")  # fmt: skip
            raise ValueError(msg)
        if kind in ("auto", "blos"):
            return "blos", gauss_factor(unit)
        return kind, 1.0
    if unit.physical_type == "speed" and not force:
        msg = (f"{name} is in {unit}, a velocity (a Dopplergram?); the networks were trained on continuum "
               "intensity and line-of-sight magnetograms only; pass kind= and force=True to run it anyway")  # fmt: skip
        raise ValueError(msg)
    if kind == "blos" and not force:
        msg = (f"{name} is in {unit.to_string() or 'a dimensionless unit'}, not a magnetic field, but was given as "
               "kind='blos'; pass a magnetogram in "
               "G, kG, T or mT, or force=True to run it as one in gauss")  # fmt: skip
        raise ValueError(msg)
    return ("intensity" if kind == "auto" else kind), 1.0


def _qs_value(qs_level, unit, name="qs_level"):
    """``qs_level`` in the image's ``unit`` as a float: a Quantity is converted, anything else is kept."""
    if not isinstance(qs_level, u.Quantity):
        return qs_level
    target = u.dimensionless_unscaled if unit is None else u.Unit(unit)
    try:
        return float(qs_level.to_value(target))
    except u.UnitConversionError:
        where = "has no unit" if unit is None else f"is in {target}"
        msg = f"{name} must be in the image's unit, got {qs_level}, but the image {where}"
        raise ValueError(msg) from None


def _masked_to_nan(data, mask):
    """A float copy of ``data`` with NaN where ``mask`` is True (the caller's array is not changed)."""
    array = np.array(data, dtype=np.result_type(np.asarray(data).dtype, np.float32), copy=True)
    if np.any(mask):
        array[np.broadcast_to(mask, array.shape)] = np.nan
    return array


def _noise_value(noise, unit, factor, kind):
    """``noise`` in the image's units (gauss for a magnetogram): a Quantity is converted, a number times ``factor``;
    a `NoiseChoice` (the network's units) is kept."""
    if noise is None or isinstance(noise, NoiseChoice):
        return noise
    if isinstance(noise, u.Quantity):
        if noise.unit.is_equivalent(u.G) != (kind == "blos"):
            msg = f"noise={noise} does not fit a {'magnetogram' if kind == 'blos' else 'continuum image'}"
            raise ValueError(msg)
        if noise.unit.is_equivalent(u.G):
            return float(noise.to_value(u.G))
        return _qs_value(noise, unit, name="noise")
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real):  # '0.01' and True are not numbers
        msg = f"noise must be a positive number in the image's units or a Quantity, got {noise!r}"
        raise TypeError(msg)
    return check_positive(noise, name="noise") * factor


def _map_kind(smap, kind, *, force):
    """The kind of a Map: ``kind``, or what its measurement and header say (`~enhance.io.resolve_kind`)."""
    measurement = getattr(smap, "measurement", None)
    measurement = measurement if isinstance(measurement, str) else None
    return resolve_kind(kind, smap.meta, path=f"the {type(smap).__name__}", force=force, flag=False,
                        measurement=measurement)  # fmt: skip


def _map_data(smap, kind, *, force):
    """``(kind, factor, data)``: the Map's kind, its unit's factor to gauss (magnetograms) and its data in the
    network's input units, NaN where masked."""
    kind = _map_kind(smap, kind, force=force)
    factor = 1.0
    if kind == "blos" and smap.unit is not None and u.Unit(smap.unit).is_equivalent(u.G):
        _, factor = _unit_kind(smap.unit, "blos", force=force, name="the Map")
    mask = smap.mask
    if mask is not None and np.ndim(mask) and np.shape(mask) != smap.data.shape:
        msg = (
            f"the {type(smap).__name__}'s mask has shape {np.shape(mask)}, its data {smap.data.shape}: they must match"
        )
        raise ValueError(msg)
    data = smap.data if mask is None else _masked_to_nan(smap.data, mask)
    data = data * factor if factor != 1.0 else data
    check_values(data, kind, force=force, name=f"the {type(smap).__name__}")
    return kind, factor, data


def _enhance_map(smap, *, kind, options, model, network, force, noise=None):
    """A new Map of the input's class on the x2 grid: data in the Map's unit, mask 2x2-upsampled, same plot settings."""
    kind, factor, data = _map_data(smap, kind, force=force)
    warn_near_limb(smap.meta, np.isfinite(data), name=f"the {type(smap).__name__}")
    history = history_cards(kind, model, network)  # the kind found, when it was 'auto'
    run = dataclasses.replace(options, qs_level=_qs_value(options.qs_level, smap.unit),
                              noise=_noise_value(noise, smap.unit, factor, kind))  # fmt: skip
    net = resolve_network(kind, model=model, network=network, options=run)
    result, assumed = enhance_array(data, kind=kind, network=net, options=run, return_assumptions=True,
                                    header=smap.meta)  # fmt: skip
    result, sigma = _unpack(result, factor)
    # sunpy's own reading of the header: the reference pixel (the image centre where CRPIX is absent) and scale.
    meta = smap.meta.copy()
    meta["crpix1"], meta["crpix2"] = (float(p.to_value(u.pix)) + 1.0 for p in smap.reference_pixel)
    meta["cdelt1"], meta["cdelt2"] = (float(s.to_value(u.Unit(c) / u.pix)) for s, c in zip(
        smap.scale, smap.spatial_units, strict=True))  # fmt: skip
    cards = {**provenance_cards(model=_model_name(model, network), kind=kind), **assumption_cards(assumed),
             **registry_cards(kind, model, network=network)}  # fmt: skip
    new_meta = upscale_header(meta, 2, history=history, shape=smap.data.shape, provenance=cards)
    mask = None if smap.mask is None else np.asarray(smap.mask, dtype=bool)
    if mask is not None:  # each input pixel's flag onto its 2x2 block; a scalar mask (numpy's nomask) everywhere
        mask = on_output_grid(mask) if mask.ndim else np.broadcast_to(mask, result.shape).copy()
    maps = tuple(smap._new_instance(array, copy.deepcopy(new_meta), plot_settings=copy.deepcopy(smap.plot_settings),
                                    mask=None if mask is None else mask.copy())
                 for array in ((result,) if sigma is None else (result, sigma)))  # fmt: skip
    return maps[0] if sigma is None else maps


def _unpack(result, factor):
    """``(result, sigma)`` of `enhance_array` (sigma None without the uncertainty), divided by ``factor``."""
    result, sigma = result if isinstance(result, tuple) else (result, None)
    for array in (result,) if sigma is None else (result, sigma):
        if factor != 1.0:
            array /= array.dtype.type(factor)
    return result, sigma


def _enhance_map_sequence(maps, *, kind, options, model, network, force, noise, noise_per_frame):
    """A MapSequence of the enhanced Maps, told one noise level (`sequence_noise`) unless ``noise_per_frame``."""
    import sunpy.map

    if noise is None and not noise_per_frame:
        kinds = {_map_kind(smap, kind, force=force) for smap in maps}
        if len(kinds) > 1:
            msg = ("the MapSequence holds both continuum images and magnetograms: enhance each kind on its own, or "
                   "pass noise_per_frame=True")  # fmt: skip
            raise ValueError(msg)
        (kind,) = kinds
        frames = _LazyFrames(lambda index: _map_data(maps[index], kind, force=force)[2], len(maps))
        noise = sequence_noise(frames, kind=kind, network=resolve_network(kind, model=model, network=network),
                               qs_level=_qs_value(options.qs_level, maps[0].unit))  # fmt: skip
    enhanced = [_enhance_map(smap, kind=kind, options=options, model=model, network=network, force=force, noise=noise)
                for smap in maps]  # fmt: skip
    if options.uncertainty:  # (result, sigma) Maps of each frame: a sequence of each
        return tuple(sunpy.map.MapSequence(list(column)) for column in zip(*enhanced, strict=True))
    return sunpy.map.MapSequence(enhanced)


class _LazyFrames:
    """A sequence whose frames are made on access (one at a time in memory)."""

    def __init__(self, frame, count):
        self.frame, self.count = frame, count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return self.frame(index)


def _enhance_cube(cube, *, kind, network, options):
    """The frames of a (time, ny, nx) cube enhanced one by one, told one noise level unless ``noise_per_frame``;
    with the uncertainty, ``(results, sigmas)``."""
    if len(cube) == 0:
        msg = f"a cube (time, ny, nx) must hold at least one frame, got shape {np.shape(cube)}"
        raise ValueError(msg)
    if options.noise is None and not options.noise_per_frame:
        options = dataclasses.replace(options, noise=sequence_noise(cube, kind=kind, network=network,
                                                                    qs_level=options.qs_level))  # fmt: skip
    frames = []
    for index, frame in enumerate(cube):
        try:
            frames.append(enhance_array(frame, kind=kind, network=network, options=options))
        except IncompatibleOptionsError:  # the options' fault, not the frame's
            raise
        except ValueError as err:  # which frame, for a cube of hundreds
            msg = f"frame {index} of the cube: {err}"
            raise ValueError(msg) from err
    if options.uncertainty:
        return tuple(np.stack(arrays) for arrays in zip(*frames, strict=True))
    return np.stack(frames)


def _model_name(model, network):
    return f"custom {type(network).__name__}" if network is not None else model


def enhance(
    data,
    kind: str = "auto",
    *,
    model: str = "full",
    network: EnhanceNet | None = None,
    qs_level=None,
    device: str = "auto",
    tile: int | None = None,
    output=None,
    overwrite: bool = False,
    progress: bool = False,
    backend: str = "auto",
    precision: str = "float32",
    force: bool = False,
    symmetric: bool = False,
    noise=None,
    noise_per_frame: bool = False,
    uncertainty: bool = False,
    noise_map: bool = False,
    options: RunOptions | None = None,
):
    """Deconvolve an HMI image from its PSF and super-resolve it by two.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~sunpy.map.GenericMap`, `~sunpy.map.MapSequence`, str or Path
        A 2-D continuum image or line-of-sight magnetogram at HMI's 0.504 arcsec per pixel, as an
        array (the masked pixels of a `numpy.ma.MaskedArray` are missing data), a Quantity, a Map, or
        the path of a FITS file; or a sequence of them: a (time, ny, nx) array or Quantity, a MapSequence
        or a list of Maps (see ``noise_per_frame``; a list comes back as a list).
    kind : {'auto', 'intensity', 'blos', 'continuum', 'magnetogram'}
        'intensity' for continuum images (any units), 'blos' for magnetograms; sunpy's names for them,
        'continuum' and 'magnetogram' (a Map's ``measurement``), are taken too. 'auto' (default) reads a
        Map's ``measurement``, the header's CONTENT, series name or BUNIT, or a Quantity's unit (a
        magnetic field is a magnetogram); a plain array without a unit is taken as a continuum image.
    model : {'full', 'light', 'paper', 'paper-light'}
        Shipped model. 'full' (default): Wiener-Enhance, a linear Wiener stage and a residual CNN told
        the noise level (`~enhance.models.hybrid.WienerEnhanceNet`), averaged over the 8 rotations and
        flips of the input; 'light': one pass of it, 8 times faster. 'paper' and 'paper-light': the
        networks of Díaz Baso & Asensio Ramos (2018) (depth 5, width 64; depth 1, width 32).
    network : torch.nn.Module or `~enhance.runtime.export.OnnxNetwork`, optional
        Use this network instead of a shipped model: an `~enhance.models.network.EnhanceNet`, a
        `~enhance.models.hybrid.WienerEnhanceNet` or an ONNX runner.
    qs_level : float, `~astropy.units.Quantity`, 'level', 'surface' or None
        Quiet-Sun continuum level (intensity only), in the units of ``data`` (a Quantity is converted
        to them); 'level' estimates one number (`~enhance.inference.pipeline.estimate_qs_level`), 'surface'
        a smooth surface that follows limb darkening (`~enhance.observation.quiet_sun.fit_qs_surface`).
        None (default) uses the surface where the quiet Sun varies by more than 15 % across the field
        (near the limb, full disks), else the single level.
    device : str
        'auto' (CUDA when available), 'cpu', 'cuda', ...
    tile : int, optional
        Run in overlapping tiles of this many input pixels (exact: the result equals a whole-image
        pass to rounding). None runs the whole image, or tiles of 512 above 1024x1024 pixels. A tile
        smaller than the network's reach (37 pixels for the default models) warns, naming the smallest
        useful one (`~enhance.checks.check_tile`): each tile then costs many times its own size.
    output : str or `~pathlib.Path`, optional
        For a path input only: write the result there and return the output path.
    overwrite : bool
        With ``output``: replace an existing file.
    progress : bool
        Show a progress bar over tiles.
    backend : {'auto', 'torch', 'onnx'}
        'torch' runs PyTorch (an `~enhance.models.network.EnhanceNet` runs as its faster, equivalent
        `~enhance.runtime.graph.InferenceNet`); 'onnx' runs onnxruntime on the CPU (the optional ``onnx``
        extra), exporting the network in memory once (`~enhance.runtime.export.onnx_network`); the results
        agree within 1e-4. 'auto' (default) picks 'onnx' for an `~enhance.runtime.export.OnnxNetwork`, and for
        a float32 run on the CPU when onnxruntime is installed (the faster CPU runtime for this
        network), else 'torch'. Without PyTorch the shipped models run on onnxruntime.
    precision : {'float32', 'bfloat16', 'float16'}
        Arithmetic of the convolutions (``backend='torch'``): float32, or `torch.autocast` to a reduced
        type, faster where the hardware supports it (CUDA; recent CPUs for bfloat16). Reduced precision
        departs from float32 by about 1e-2 (bfloat16) or 1e-3 (float16) of the image's quiet-Sun level
        or kG (measured by ``make bench`` and bounded in the tests).
    symmetric : bool
        Average over the 8 rotations and flips of the input (`~enhance.inference.pipeline.RunOptions`): the
        result does not depend on whether the image was rotated or flipped first (equivariant to float
        rounding), at 8 times the cost. The 'full' model always does.
    noise : float or `~astropy.units.Quantity`, optional
        Standard deviation of the noise per input pixel, in the units of ``data`` (a Quantity is
        converted), for the 'full' and 'light' models. None (default) measures it on the image from the
        corners of its spectrum, beyond HMI's diffraction cut-off
        (`~enhance.inference.pipeline.network_noise`); an image whose corners are not white (interpolated:
        remapped, derotated) gets HMI's nominal noise, 1e-3 of the quiet Sun or 10 G.
    force : bool
        Run inputs that the checks refuse: grids that are not helioprojective (CEA, Carrington,
        heliographic), pixel scales more than 5 % from HMI's 0.504 arcsec, quantities the networks
        were not trained on (Dopplergrams), files solar-enhance wrote, and values that do not fit
        ``kind`` (a magnetogram given as intensity).
    noise_per_frame : bool
        For a sequence (a cube or a MapSequence) and ``noise=None``: measure the noise on each frame.
        False (default) tells every frame one level, the median of the levels measured on up to 16
        frames spread over the sequence (`~enhance.inference.pipeline.sequence_noise`; a continuum's
        relative to each frame's quiet-Sun level), so that the network smooths every frame alike and a
        movie does not flicker with the scatter of the measurements.
    uncertainty : bool
        Also return the standard deviation of each output pixel's error, in the output's unit, for the
        'full' and 'light' models (`~enhance.inference.uncertainty`): the propagated input
        noise, the model's spread over rotations and flips and the spread over plausible PSFs,
        calibrated on held-out scenes (the coverage by region and noise level is on the validation
        pages). It costs about 2.2 times the 'full' model's time. For a sequence, one per frame; a dask
        array refuses it (`~enhance.inference.distributed.enhance_dask`).
    noise_map : bool
        Tell the 'full' and 'light' models a noise level per pixel (`~enhance.inference.noise_map`): photon
        noise for a continuum image, for a magnetogram the centre-to-limb law where its header places it on
        the disk, else a trend measured on tiles. ``noise`` is then the quiet-Sun (disk-centre) level. It
        costs two passes where the map varies by more than 5 %. Off by default: on held-out synthetic
        scenes it changes the error by a few per cent at most (``benchmarks/noise_map.py``); ``ENH_NMAP``
        records the map's model.
    options : `~enhance.inference.pipeline.RunOptions`, optional
        The options above as one object (``qs_level``, ``device``, ``tile``, ``backend``, ``precision``,
        ``progress``, ``symmetric``, ``noise``, ``uncertainty``, ``noise_per_frame``, ``force``,
        ``noise_map``), as
        `~enhance.inference.distributed.enhance_files` and ``enhance run`` take them; a keyword argument
        given beside it must not contradict it (`~enhance.inference.pipeline.run_options`).

    Returns
    -------
    Same type as ``data``
        An array of shape ``(2 ny, 2 nx)``: a Quantity in the input's unit for a Quantity; a masked array
        for a masked array, masked (and NaN) at the 2x2 output pixels of each masked or non-finite input
        pixel; a lazy `dask.array.Array` for a dask array
        (`~enhance.inference.distributed.enhance_dask`: chunk by chunk, with its checks when computed,
        and without ``force`` or ``progress``); for a Map, a new Map of the same class on the x2 grid
        (`~enhance.io.upscale_header` of the Map's own reference pixel and scale), in the Map's unit,
        with its mask (each masked pixel masks its 2x2 output pixels), plot settings and observer; for a
        path, the output path (with ``output``) or a Map; a (time, 2 ny, 2 nx) cube for a cube, a
        MapSequence for a MapSequence. An output Map's meta and an output file's header record the
        assumptions made: the noise level told the network and how it was obtained (``ENH_NOIS``,
        ``ENH_NUNI``, ``ENH_NSRC``, ``ENH_NWHY``), the quiet-Sun normalisation of a continuum image
        (``ENH_QSTY``, ``ENH_QSRC``, ``ENH_QSLV``, and a surface's ``ENH_QSMN``, ``ENH_QSMX``), the model's
        registry name and the sha256 of its weights (``ENH_REG``, ``ENH_SHA``;
        `~enhance.inference.pipeline.assumption_cards`).
        With ``uncertainty=True``: a tuple ``(result, sigma)`` of two of them (arrays, Quantities, Maps or
        MapSequences: the uncertainty Map has the result's WCS, unit and mask), or, with ``output``, the path
        of a file that holds the uncertainty in an image extension named 'UNCERT' (`~enhance.io.uncertainty_hdu`).

    Warns
    -----
    `~enhance.exceptions.NoiseLevelWarning`
        When the noise measured on the image is more than 4 times HMI's
        (`~enhance.inference.pipeline.check_noise_level`): a continuum image binned 2 x 2 but labelled at
        HMI's pixel scale reads as about 9 times (a magnetogram as about 2 times: not seen).

    Raises
    ------
    ValueError
        If the input is refused (see ``force``), ``kind`` is 'auto' and nothing tells it, or an option
        is invalid.

    Notes
    -----
    Continuum images are divided by the quiet-Sun level (or surface) before the network and
    multiplied back after it, on the output's grid; magnetograms are converted to gauss (from kG, T
    or mT), go through the network in kG and come back in the caller's unit. Non-finite pixels
    (off-limb) and masked pixels are filled with their nearest finite neighbour for the network and
    are NaN in the output, at the 2x2 output pixels of each; finite input never gives non-finite
    output. Continuum output is never negative where its input pixel is not: such pixels (the network's
    ringing next to the limb or an umbra) are set to 0.

    References
    ----------
    Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5.

    Examples
    --------
    >>> import numpy as np
    >>> from enhance.models.network import EnhanceNet
    >>> out = enhance(np.ones((20, 30)), "intensity", network=EnhanceNet(depth=1, width=8))
    >>> out.shape
    (40, 60)
    """
    kind = check_kind(kind)  # also sunpy's names: enhance(m, m.measurement)
    options = run_options(options, qs_level=qs_level, device=device, tile=tile, backend=backend, precision=precision,
                          progress=progress, symmetric=symmetric, noise=noise, uncertainty=uncertainty,
                          noise_per_frame=noise_per_frame, force=force, noise_map=bool(noise_map))  # fmt: skip
    qs_level, noise, force = options.qs_level, options.noise, options.force

    def with_noise(run, unit, factor, kind):
        return dataclasses.replace(run, noise=_noise_value(noise, unit, factor, kind))

    if isinstance(data, str | Path):
        if output is not None:
            check_output(output, source=data)  # before any work: a device, the input itself, a .bz2 name
            check_new_file(output, overwrite=overwrite)  # and an existing file, unless overwrite
        image, header = read_fits(data)
        if output is None:
            _check_map_header(header, image.shape, path=data)
        kind = resolve_kind(kind, header, path=data, force=force, flag=False)
        warn_near_limb(header, np.isfinite(image), name=str(data))
        history = history_cards(kind, model, network)
        unit = str(header.get("BUNIT", "") or "").strip()
        factor = gauss_factor(unit) if kind == "blos" and unit and not force else 1.0
        image = image * factor if factor != 1.0 else image
        check_values(image, kind, force=force, name=str(data))
        net = resolve_network(kind, model=model, network=network, options=options)
        run = with_noise(options, unit or None, factor, kind)
        result, assumed = enhance_array(image, kind=kind, network=net, options=run, return_assumptions=True,
                                        header=header)  # fmt: skip
        result, sigma = _unpack(result, factor)
        cards = {**provenance_cards(model=_model_name(model, network), kind=kind), **assumption_cards(assumed),
                 **registry_cards(kind, model, network=network)}  # fmt: skip
        new_header = upscale_header(header, 2, history=history, provenance=cards)
        if output is not None:
            step = None
            if str(output).lower().endswith(".fz"):  # tile-compressed, as `enhance run -o NAME.fz` writes it
                step = quantize_step(image, kind) / factor  # in the file's unit (image: in gauss for blos)
            extra = [] if sigma is None else [uncertainty_hdu(sigma, new_header)]
            return write_fits(output, result, new_header, overwrite=overwrite, quantize_step=step, extra_hdus=extra)
        import sunpy.map

        if sigma is None:
            return sunpy.map.Map(result, new_header)
        return tuple(sunpy.map.Map(array, new_header.copy()) for array in (result, sigma))
    if output is not None:
        msg = f"output= is only for a path input, got data of type {type(data).__name__}"
        raise TypeError(msg)

    sunpy_map = sys.modules.get("sunpy.map")  # a Map implies sunpy.map is imported: never imported here for it
    if isinstance(data, list | tuple) and data:
        maps = (sunpy_map.GenericMap,) if sunpy_map is not None else ()
        if maps and all(isinstance(item, maps) for item in data):
            # a list of Maps in, a list of Maps out (told one noise level, as a MapSequence)
            enhanced = _enhance_map_sequence(list(data), kind=kind, options=options, model=model, network=network,
                                             force=force, noise=noise,
                                             noise_per_frame=options.noise_per_frame)  # fmt: skip
            if options.uncertainty:
                return tuple(list(sequence.maps) for sequence in enhanced)
            return list(enhanced.maps)
        if any(isinstance(item, (str, Path, *maps)) for item in data):
            msg = (f"data is a {type(data).__name__} of {len(data)} files or Maps: pass a list of Maps only, or "
                   "sunpy.map.Map(paths, sequence=True) (one noise level over them; `enhance run FILE...` from the "
                   "shell), or enhance each file on its own")  # fmt: skip
            raise TypeError(msg)
    if sunpy_map is not None and isinstance(data, sunpy_map.GenericMap):
        return _enhance_map(data, kind=kind, options=options, model=model, network=network, force=force, noise=noise)
    if sunpy_map is not None and isinstance(data, sunpy_map.MapSequence):
        return _enhance_map_sequence(data.maps, kind=kind, options=options, model=model, network=network, force=force,
                                     noise=noise, noise_per_frame=options.noise_per_frame)  # fmt: skip

    if _is_dask_array(data):  # lazy in, lazy out
        kind = "intensity" if kind == "auto" else kind  # no unit: as a plain array
        noise = _noise_value(noise, None, 1.0, kind)
        run = dataclasses.replace(options, qs_level=_qs_value(qs_level, None), noise=noise)
        return enhance_dask(data, kind, model=model, network=network, options=run)
    unit = data.unit if isinstance(data, u.Quantity) else None
    kind, factor = _unit_kind(unit, kind, force=force, name="image")
    values = data.value if isinstance(data, u.Quantity) else data
    masked = isinstance(values, np.ma.MaskedArray)
    if masked:
        values = _masked_to_nan(values.data, np.ma.getmaskarray(values))
    values = values * factor if factor != 1.0 else values
    check_values(values, kind, force=force)
    net = resolve_network(kind, model=model, network=network, options=options)
    run = with_noise(dataclasses.replace(options, qs_level=_qs_value(qs_level, unit)), unit, factor, kind)
    if np.ndim(values) > 3:
        msg = f"image must be 2-D (ny, nx), or 3-D (time, ny, nx) for a sequence, got shape {np.shape(values)}"
        raise ValueError(msg)
    if np.ndim(values) == 3:  # a sequence (time, ny, nx)
        result = _enhance_cube(values, kind=kind, network=net, options=run)
    else:
        result = enhance_array(values, kind=kind, network=net, options=run)
    outputs = [array for array in _unpack(result, factor) if array is not None]
    if masked:  # masked in, masked out: each masked (or non-finite) pixel masks its 2x2 output pixels
        missing = ~np.isfinite(np.asarray(values))
        mask = on_output_grid(missing)
        outputs = [np.ma.MaskedArray(array, mask=mask.copy()) for array in outputs]
    outputs = [array * unit if unit is not None else array for array in outputs]
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _check_map_header(header, shape, *, path) -> None:
    """A one-line `ValueError` before any work when sunpy makes no Map of ``header`` (the result, returned as a Map
    built from it, would be lost after the enhancement)."""
    import sunpy.map

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what the Map of the result warns of, it warns of then
        try:
            sunpy.map.Map(np.broadcast_to(np.float32(0), shape), header.copy())
        except Exception as err:  # noqa: BLE001 - sunpy's validation raises several types
            reason = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
            msg = (f"{path}: sunpy makes no Map of its header ({reason.strip()}); pass output= to write the enhanced "
                   "image to a FITS file, or enhance its array")  # fmt: skip
            raise ValueError(msg) from err


def _is_dask_array(data) -> bool:
    """Whether ``data`` is a `dask.array.Array` (without importing dask when the caller has not)."""

    module = sys.modules.get("dask.array")
    return module is not None and isinstance(data, module.Array)
