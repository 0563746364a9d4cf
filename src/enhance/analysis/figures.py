"""Figures of the paper's diagnostics: image panels, power spectra, density scatter, consistency maps.

Each function draws on an optional Matplotlib ``ax`` (a new `~matplotlib.figure.Figure` when None) and
returns the Figure. Figures are built without pyplot, so nothing here selects a backend or opens a
window; ``fig.savefig("x.png")`` works headless.
"""

import astropy.units as u
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..checks import check_choice, check_image, check_positive
from .metrics import density_scatter, scale_region

__all__ = ["image_limits", "plot_image", "plot_comparison", "plot_maps", "unit_label", "map_caption",
           "plot_power_spectra", "plot_density_scatter", "plot_consistency"]  # fmt: skip

_UNITS = {"intensity": "I/Ic", "blos": "G"}


def _axes(ax, figsize):
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    return ax.figure, ax


def image_limits(image, *, kind: str = "intensity", percentile: float = 99.5):
    """Colour limits shared by the panels of one comparison.

    Parameters
    ----------
    image : array_like
        The image that sets the scale (usually the input).
    kind : {'intensity', 'blos'}
        Continuum: from the ``100 - percentile`` to the ``percentile`` percentile. Magnetogram: symmetric
        about zero, to the ``percentile`` percentile of :math:`|B|`.
    percentile : float
        Defaults to 99.5.

    Returns
    -------
    (float, float)
        ``(vmin, vmax)``.

    Examples
    --------
    >>> import numpy as np
    >>> image_limits(np.linspace(-100, 100, 201), kind="blos", percentile=100)
    (-100.0, 100.0)
    """
    check_choice(kind, tuple(_UNITS), name="kind")
    values = np.asarray(image, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        msg = "image has no finite pixels to set the colour scale"
        raise ValueError(msg)
    if kind == "blos":
        top = float(np.percentile(np.abs(values), percentile)) or 1.0
        return -top, top
    low, high = (float(v) for v in np.percentile(values, [100 - percentile, percentile]))
    if high <= low:
        high = low + 1.0
    return low, high


@u.quantity_input
def plot_image(
    image,
    pixel_scale: u.arcsec,
    *,
    ax=None,
    kind: str = "intensity",
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "gray",
    title: str | None = None,
    region=None,
    colorbar: bool = True,
):
    """Show an image with axes in arcsec from its lower-left corner.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel; images of different grids over the same field share the axes.
    ax : `~matplotlib.axes.Axes`, optional
        Where to draw; a new figure when None.
    kind : {'intensity', 'blos'}
        Sets the colour-bar label and, without ``vmin``/``vmax``, the limits (`image_limits`).
    vmin, vmax : float, optional
        Colour limits.
    cmap : str
        Colour map; defaults to 'gray'.
    title : str, optional
        Panel title.
    region : tuple of slice, optional
        A region of this image to outline (e.g. the quiet Sun used for the contrast).
    colorbar : bool
        Add a colour bar.

    Returns
    -------
    `~matplotlib.figure.Figure`
        The figure drawn on (a new one when ``ax`` is None).

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> fig = plot_image(np.ones((10, 10)), 0.504 * u.arcsec)
    >>> fig.axes[0].get_xlabel()
    'x [arcsec]'
    """
    data = check_image(image)
    scale = check_positive(float(pixel_scale.to_value(u.arcsec)), name="pixel_scale")
    if vmin is None or vmax is None:
        low, high = image_limits(data, kind=kind)
        vmin = low if vmin is None else vmin
        vmax = high if vmax is None else vmax
    fig, ax = _axes(ax, (5, 4.5))
    ny, nx = data.shape
    shown = ax.imshow(data, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                      extent=(0, nx * scale, 0, ny * scale))  # fmt: skip
    ax.set_xlabel("x [arcsec]")
    ax.set_ylabel("y [arcsec]")
    if title:
        ax.set_title(title)
    if region is not None:
        rows, cols = region
        y0, y1, _ = rows.indices(ny)
        x0, x1, _ = cols.indices(nx)
        ax.add_patch(Rectangle((x0 * scale, y0 * scale), (x1 - x0) * scale, (y1 - y0) * scale, fill=False,
                               edgecolor="tab:orange", linewidth=1.2))  # fmt: skip
    if colorbar:
        fig.colorbar(shown, ax=ax, shrink=0.85, label=_UNITS[kind])
    return fig


def plot_comparison(images, pixel_scales, *, kind: str = "intensity", region=None, axes=None, limits=None):
    """Panels of the same field (input, Enhance, RL, ...) side by side, with one colour scale.

    Parameters
    ----------
    images : dict
        Title -> (ny_i, nx_i) image, in display order. The first one sets the colour scale.
    pixel_scales : dict or `~astropy.units.Quantity`
        Title -> pixel scale, or one scale for all.
    kind : {'intensity', 'blos'}
        Continuum or magnetogram (grey scale symmetric about zero).
    region : tuple of slice, optional
        Region of the *first* image to outline on every panel (scaled to each grid).
    axes : sequence of `~matplotlib.axes.Axes`, optional
        One per image; a new figure with one row when None.
    limits : (float, float), optional
        Colour limits; defaults to `image_limits` of the first image.

    Returns
    -------
    `~matplotlib.figure.Figure`
        The figure drawn on (a new one when ``ax`` is None).

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> images = {"input": np.ones((10, 10)), "x2": np.ones((20, 20))}
    >>> scales = {"input": 0.504 * u.arcsec, "x2": 0.252 * u.arcsec}
    >>> len(plot_comparison(images, scales).axes)  # two panels and a shared colour bar
    3
    """
    check_choice(kind, tuple(_UNITS), name="kind")
    if not images:
        msg = "images must hold at least one image, got none"
        raise ValueError(msg)
    names = list(images)
    if isinstance(pixel_scales, u.Quantity):
        pixel_scales = dict.fromkeys(names, pixel_scales)
    missing = [name for name in names if name not in pixel_scales]
    if missing:
        msg = f"pixel_scales lacks the images {missing}"
        raise ValueError(msg)
    if axes is None:
        fig = Figure(figsize=(4.2 * len(names) + 1.0, 4.4), layout="constrained")
        axes = fig.subplots(1, len(names), sharex=True, sharey=True, squeeze=False)[0]
    elif len(axes) != len(names):
        msg = f"axes must hold one Axes per image ({len(names)}), got {len(axes)}"
        raise ValueError(msg)
    fig = axes[0].figure
    vmin, vmax = limits if limits is not None else image_limits(images[names[0]], kind=kind)
    first = np.shape(images[names[0]])
    for name, ax in zip(names, axes, strict=True):
        shape = np.shape(images[name])
        panel_region = None
        if region is not None:
            factor = shape[0] // first[0]
            panel_region = scale_region(region, max(factor, 1))
        plot_image(images[name], pixel_scales[name], ax=ax, kind=kind, vmin=vmin, vmax=vmax, title=name,
                   region=panel_region, colorbar=False)  # fmt: skip
    for ax in axes[1:]:
        ax.set_ylabel("")
    fig.colorbar(axes[0].images[0], ax=list(axes), shrink=0.85, label=_UNITS[kind])
    return fig


def unit_label(smap, *, kind: str = "intensity") -> str:
    """The colour-bar label of a Map: its real unit, from the Map (or its BUNIT when sunpy cannot parse it).

    A dimensionless continuum image is intensity over the quiet-Sun level ('I/Ic'); a magnetogram in
    Mx/cm2 says that this is gauss. Only a Map with neither unit nor BUNIT falls back on the kind's unit.

    Examples
    --------
    >>> from enhance.data import sample_map
    >>> unit_label(sample_map("blos"), kind="blos"), unit_label(sample_map("intensity"))
    ('Mx / cm2 (= G)', 'I/Ic (dimensionless)')

    Parameters
    ----------
    smap : `sunpy.map.GenericMap`
        The Map.
    kind : {'intensity', 'blos'}
        What the Map holds, for Maps without a unit.

    Returns
    -------
    str
        The label.
    """
    unit = smap.unit
    if unit is None:
        text = str(smap.meta.get("bunit", "") or "").strip()
        return text or _UNITS[kind]
    if unit == u.dimensionless_unscaled:
        return "I/Ic (dimensionless)" if kind == "intensity" else "dimensionless"
    text = unit.to_string()
    if text != "G" and unit.is_equivalent(u.G) and np.isclose(unit.to(u.G), 1.0):
        text += " (= G)"
    return text


def map_caption(smap) -> str:
    """Instrument, measurement and observation time of a Map, from its header.

    Parameters
    ----------
    smap : `sunpy.map.GenericMap`
        The Map.

    Returns
    -------
    str
        E.g. ``'HMI FRONT2 magnetogram 2014-01-01 00:00:00 UTC'``.

    Examples
    --------
    >>> from enhance.data import sample_map
    >>> map_caption(sample_map("blos"))
    'HMI FRONT2 magnetogram 2014-01-01 00:00:00 UTC'
    """
    parts = [str(getattr(smap, "instrument", "") or "").strip(), str(getattr(smap, "measurement", "") or "").strip()]
    if any(key in smap.meta for key in ("date-obs", "date_obs", "t_obs")):  # else sunpy warns and takes the time now
        parts.append(smap.date.strftime("%Y-%m-%d %H:%M:%S") + " UTC")
    return " ".join(part for part in parts if part)


def plot_maps(maps, *, kind: str = "intensity", limits=None, region=None, cmap: str = "gray", suptitle=None):
    """Maps of the same field side by side in helioprojective coordinates (WCSAxes), with one colour scale.

    Parameters
    ----------
    maps : dict
        Title -> `sunpy.map.GenericMap`, in display order (e.g. the HMI input and its x2 outputs). Each
        panel's axes come from its own Map's WCS, so grids of different pixel scales line up in arcsec.
    kind : {'intensity', 'blos'}
        Continuum or magnetogram (then a colour scale symmetric about zero).
    limits : (float, float), optional
        Colour limits, in the Maps' unit; default `image_limits` of the first Map.
    region : tuple of slice, optional
        A region of the *first* Map, in its pixels, to outline on every panel (in world coordinates).
    cmap : str
        Colour map (default 'gray').
    suptitle : str, optional
        Figure title; default: instrument, measurement and date of the first Map (`map_caption`).

    Returns
    -------
    `~matplotlib.figure.Figure`
        One WCSAxes per Map and a single colour bar labelled with the Maps' unit (`unit_label`).

    Examples
    --------
    >>> from enhance.data import sample_map
    >>> fig = plot_maps({"HMI": sample_map("blos")}, kind="blos")
    >>> fig.axes[-1].get_ylabel()
    'Mx / cm2 (= G)'
    """
    check_choice(kind, tuple(_UNITS), name="kind")
    if not maps:
        msg = "maps must hold at least one Map, got none"
        raise ValueError(msg)
    names = list(maps)
    first = maps[names[0]]
    vmin, vmax = limits if limits is not None else image_limits(first.data, kind=kind)
    fig = Figure(figsize=(4.4 * len(names) + 1.2, 4.8), layout="constrained")
    shown = None
    for index, name in enumerate(names, start=1):
        smap = maps[name]
        ax = fig.add_subplot(1, len(names), index, projection=smap.wcs)
        shown = ax.imshow(smap.data, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(name)
        ax.coords[0].set_axislabel("Helioprojective longitude (Solar-X) [arcsec]")
        ax.coords[1].set_axislabel("Helioprojective latitude (Solar-Y) [arcsec]" if index == 1 else " ")
        for coord in ax.coords:
            coord.set_format_unit(u.arcsec, decimal=True)
        if region is not None:
            _outline(ax, first, smap, region)
    fig.colorbar(shown, ax=fig.axes, shrink=0.85, label=unit_label(first, kind=kind))
    fig.suptitle(suptitle if suptitle is not None else map_caption(first))
    return fig


def _outline(ax, first, smap, region):
    """Draw ``region`` (pixels of ``first``) on ``smap``'s axes, through world coordinates."""
    rows, cols = region
    y0, y1, _ = rows.indices(first.data.shape[0])
    x0, x1, _ = cols.indices(first.data.shape[1])
    xs = np.array([x0, x1, x1, x0, x0], dtype=float) - 0.5
    ys = np.array([y0, y0, y1, y1, y0], dtype=float) - 0.5
    corners = first.pixel_to_world(xs * u.pix, ys * u.pix)
    px, py = smap.world_to_pixel(corners)
    ax.plot(px.to_value(u.pix), py.to_value(u.pix), color="tab:orange", linewidth=1.2)


def plot_power_spectra(spectra, *, noise_levels=None, ax=None, unit: str = "", title: str | None = None):
    """Azimuthally averaged power spectra, with flat white-noise reference levels (the paper's Fig. 9).

    Parameters
    ----------
    spectra : dict
        Label -> ``(frequency, power)`` as returned by `~enhance.analysis.metrics.power_spectrum`. The first (the
        input) is drawn in black, on top.
    noise_levels : dict, optional
        Label -> power of a white-noise reference (`~enhance.analysis.metrics.white_noise_power`), drawn as a
        dashed horizontal line.
    ax : `~matplotlib.axes.Axes`, optional
        Where to draw.
    unit : str
        Unit of the image values, for the axis label.
    title : str, optional
        Panel title.

    Returns
    -------
    `~matplotlib.figure.Figure`
        The figure drawn on (a new one when ``ax`` is None).

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from enhance.analysis.metrics import power_spectrum
    >>> image = np.random.default_rng(0).normal(size=(64, 64))
    >>> fig = plot_power_spectra({"noise": power_spectrum(image, 0.5 * u.arcsec)}, noise_levels={"sigma=1": 0.25})
    >>> fig.axes[0].get_yscale()
    'log'
    """
    fig, ax = _axes(ax, (5.5, 4.2))
    for index, (label, (frequency, power)) in enumerate(spectra.items()):
        f = frequency.to_value(1 / u.arcsec) if isinstance(frequency, u.Quantity) else np.asarray(frequency)
        style = {"color": "k", "linewidth": 1.8, "zorder": 3} if index == 0 else {"linewidth": 1.3}
        ax.plot(f, power, label=label, **style)
    for index, (label, level) in enumerate((noise_levels or {}).items()):
        ax.axhline(level, color="0.4", linestyle=("--", ":", "-.")[index % 3], linewidth=1.0, label=label)
    ax.set_yscale("log")
    ax.set_xlim(0, None)
    ax.set_xlabel(r"spatial frequency $\nu$ [arcsec$^{-1}$]")
    ax.set_ylabel(f"power [{unit}$^2$ arcsec$^2$]" if unit else r"power [arcsec$^2$]")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def plot_density_scatter(
    image, output, *, ax=None, bins: int = 200, limits=None, unit: str = "", xlabel: str = "input",
    ylabel: str = "output", title: str | None = None,
):  # fmt: skip
    """Density plot of output against input pixel values with the 1:1 and factor-2 lines (Fig. 9, left).

    Parameters
    ----------
    image : (ny, nx) array_like
        The input.
    output : (2 ny, 2 nx) or (ny, nx) array_like
        The enhanced image (see `~enhance.analysis.metrics.density_scatter` for the pairing).
    ax : `~matplotlib.axes.Axes`, optional
        Where to draw.
    bins, limits
        As for `~enhance.analysis.metrics.density_scatter`.
    unit, xlabel, ylabel, title : str
        Labels.

    Returns
    -------
    `~matplotlib.figure.Figure`
        The figure drawn on (a new one when ``ax`` is None).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(size=(20, 20))
    >>> fig = plot_density_scatter(image, 1.5 * image, bins=20)
    >>> len(fig.axes[0].lines)  # 1:1 and two factor-2 guides
    3
    """
    counts, edges = density_scatter(image, output, bins=bins, limits=limits)
    fig, ax = _axes(ax, (5, 4.5))
    shown = np.where(counts > 0, counts, np.nan).T  # rows: output
    top = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
    mesh = ax.pcolormesh(edges, edges, shown, norm=LogNorm(vmin=1, vmax=max(top, 2.0)), cmap="viridis")
    line = np.array([edges[0], edges[-1]])
    ax.plot(line, line, color="k", linewidth=0.8, label="1:1")
    ax.plot(line, 2 * line, color="k", linestyle=":", linewidth=0.9, label="factor 2")
    ax.plot(line, line / 2, color="k", linestyle=":", linewidth=0.9)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(edges[0], edges[-1])
    ax.set_aspect("equal")
    suffix = f" [{unit}]" if unit else ""
    ax.set_xlabel(xlabel + suffix)
    ax.set_ylabel(ylabel + suffix)
    if title:
        ax.set_title(title)
    fig.colorbar(mesh, ax=ax, shrink=0.85, label="pixels")
    return fig


@u.quantity_input
def plot_consistency(
    residual, pixel_scale: u.arcsec, *, value: float | None = None, ax=None, vmax: float | None = None,
    unit: str = "", title: str = "consistency residual",
):  # fmt: skip
    """Map of the consistency residual (reconvolved output minus input), diverging about zero.

    Parameters
    ----------
    residual : (ny, nx) array_like
        `~enhance.observation.consistency.consistency_map`.
    pixel_scale : `~astropy.units.Quantity`
        Pixel scale of the input grid.
    value : float, optional
        The scalar `~enhance.observation.consistency.consistency`, quoted in the title as a percentage.
    ax : `~matplotlib.axes.Axes`, optional
        Where to draw.
    vmax : float, optional
        Colour limit (symmetric); defaults to the 99.5 percentile of the absolute residual.
    unit, title : str
        Labels.

    Returns
    -------
    `~matplotlib.figure.Figure`
        The figure drawn on (a new one when ``ax`` is None).

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> fig = plot_consistency(np.zeros((8, 8)), 0.504 * u.arcsec, value=0.04)
    >>> fig.axes[0].get_title()
    'consistency residual: 4.00 %'
    """
    data = check_image(residual, name="residual")
    if vmax is None:
        vmax = image_limits(data, kind="blos")[1]
    fig, ax = _axes(ax, (5, 4.5))
    label = title if value is None else f"{title}: {100 * value:.2f} %"
    plot_image(data, pixel_scale, ax=ax, kind="blos", vmin=-vmax, vmax=vmax, cmap="RdBu_r", title=label,
               colorbar=False)  # fmt: skip
    fig.colorbar(ax.images[-1], ax=ax, shrink=0.85, label=f"reconvolved - input [{unit}]" if unit else "")
    return fig
