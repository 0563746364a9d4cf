"""Figures: Map panels in helioprojective coordinates, in arcsec, whose extent is the Map's; array panels whose
axes run in arcsec over the field whatever the grid; colour scales shared; every figure renders headless (Agg)."""

import re

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.coordinates import SkyCoord
from matplotlib.backends.backend_agg import FigureCanvasAgg
from sunpy.coordinates import frames

from enhance.analysis.figures import (
    image_limits,
    map_caption,
    plot_comparison,
    plot_consistency,
    plot_density_scatter,
    plot_image,
    plot_maps,
    plot_power_spectra,
    unit_label,
)
from enhance.analysis.spectra import power_spectrum, white_noise_power
from enhance.io import upscale_header

SHAPE = (24, 32)


def _render(fig):
    """Draw the figure with the Agg canvas (no pyplot, no window) and return it."""
    FigureCanvasAgg(fig).draw()
    return fig


@pytest.fixture(scope="module")
def maps():
    """A 24 x 32 HMI-like Map centred at (120, -40) arcsec and its x2 Map of the same field."""
    observer = SkyCoord(0 * u.deg, 0 * u.deg, 1 * u.AU, frame=frames.HeliographicStonyhurst, obstime="2014-01-01")
    centre = SkyCoord(120 * u.arcsec, -40 * u.arcsec, frame=frames.Helioprojective(observer=observer,
                                                                                   obstime="2014-01-01"))  # fmt: skip
    header = sunpy.map.make_fitswcs_header(SHAPE, centre, scale=[0.504, 0.504] * u.arcsec / u.pix,
                                           instrument="HMI", unit=u.G)  # fmt: skip
    data = 100 * np.random.default_rng(0).standard_normal(SHAPE)
    smap = sunpy.map.Map(data, header)
    fine = sunpy.map.Map(np.kron(data, np.ones((2, 2))), upscale_header(smap.meta, 2, shape=SHAPE))
    return smap, fine


def _corners(ax, smap):
    """World coordinates of the lower-left and upper-right corners of a WCSAxes panel."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    corners = smap.pixel_to_world([x0, x1] * u.pix, [y0, y1] * u.pix)
    return corners.Tx.to_value(u.arcsec), corners.Ty.to_value(u.arcsec)


def test_map_panels_are_helioprojective_in_arcsec_with_the_maps_extent(maps):
    smap, fine = maps
    fig = _render(plot_maps({"HMI": smap, "x2": fine}, kind="blos", limits=(-300.0, 300.0)))
    panels, colorbar = fig.axes[:2], fig.axes[-1]
    for ax, panel_map in zip(panels, (smap, fine), strict=True):
        assert ax.wcs.wcs.ctype[0].startswith("HPLN")
        assert "Helioprojective longitude (Solar-X) [arcsec]" == ax.coords[0].get_axislabel()
        assert ax.coords[0].get_format_unit() == u.arcsec
        ny, nx = panel_map.data.shape
        assert ax.get_xlim() == (-0.5, nx - 0.5)  # the whole Map, pixel edges to pixel edges
        assert ax.get_ylim() == (-0.5, ny - 0.5)
        assert ax.images[0].get_clim() == (-300.0, 300.0)
    assert panels[0].coords[1].get_axislabel() == "Helioprojective latitude (Solar-Y) [arcsec]"
    # Both panels span the same field of the sky: 32 x 0.504 by 24 x 0.504 arcsec about (120, -40).
    tx, ty = _corners(panels[0], smap)
    np.testing.assert_allclose(tx, [120 - 16 * 0.504, 120 + 16 * 0.504], atol=0.01)
    np.testing.assert_allclose(ty, [-40 - 12 * 0.504, -40 + 12 * 0.504], atol=0.01)
    np.testing.assert_allclose(_corners(panels[1], fine), (tx, ty), atol=1e-6)
    assert colorbar.get_ylabel() == "G"
    assert fig._suptitle.get_text() == "HMI 2014-01-01 00:00:00 UTC"


def test_a_region_of_the_first_map_is_outlined_on_the_same_sky_in_every_panel(maps):
    smap, fine = maps
    fig = plot_maps({"HMI": smap, "x2": fine}, kind="blos", region=(slice(2, 6), slice(3, 9)))
    coarse_line, fine_line = fig.axes[0].lines[0], fig.axes[1].lines[0]
    np.testing.assert_allclose(coarse_line.get_xdata(), [2.5, 8.5, 8.5, 2.5, 2.5], atol=1e-9)
    np.testing.assert_allclose(fine_line.get_xdata(), [5.5, 17.5, 17.5, 5.5, 5.5], atol=1e-6)  # x2: 2 p - 0.5
    np.testing.assert_allclose(fine_line.get_ydata(), [3.5, 3.5, 11.5, 11.5, 3.5], atol=1e-6)


def test_array_panels_span_the_field_in_arcsec_whatever_the_grid():
    fig = _render(
        plot_image(np.ones((10, 12)), 0.504 * u.arcsec, kind="blos", title="in", region=(slice(2, 4), slice(None)))
    )
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("x [arcsec]", "y [arcsec]", "in")
    np.testing.assert_allclose(ax.images[0].get_extent(), (0, 12 * 0.504, 0, 10 * 0.504))
    rectangle = ax.patches[0]
    np.testing.assert_allclose((rectangle.get_x(), rectangle.get_y()), (0.0, 2 * 0.504))
    np.testing.assert_allclose((rectangle.get_width(), rectangle.get_height()), (12 * 0.504, 2 * 0.504))
    assert fig.axes[-1].get_ylabel() == "G"
    fine = plot_image(np.ones((20, 24)), 0.252 * u.arcsec)
    np.testing.assert_allclose(fine.axes[0].images[0].get_extent(), ax.images[0].get_extent())


def test_a_comparison_shares_one_colour_scale_and_outlines_the_same_sky():
    rng = np.random.default_rng(1)
    image = 1 + 0.1 * rng.standard_normal((10, 10))
    images = {"input": image, "x2": np.kron(image, np.ones((2, 2)))}
    scales = {"input": 0.504 * u.arcsec, "x2": 0.252 * u.arcsec}
    fig = _render(plot_comparison(images, scales, region=(slice(2, 5), slice(1, 4))))
    panels = fig.axes[:2]
    assert len(fig.axes) == 3  # two panels, one colour bar
    limits = image_limits(image)
    assert all(ax.images[0].get_clim() == limits for ax in panels)
    boxes = [ax.patches[0].get_bbox().bounds for ax in panels]
    np.testing.assert_allclose(boxes[1], boxes[0])  # the same arcsec box on both grids
    np.testing.assert_allclose(boxes[0], (1 * 0.504, 2 * 0.504, 3 * 0.504, 3 * 0.504))
    assert panels[1].get_ylabel() == ""
    assert fig.axes[-1].get_ylabel() == "I/Ic"


def test_bad_comparisons_are_refused_in_one_line():
    one = {"a": np.ones((4, 4))}
    cases = [
        (lambda: plot_comparison({}, 0.5 * u.arcsec), "images must hold at least one image"),
        (lambda: plot_comparison(one, {"b": 0.5 * u.arcsec}), "pixel_scales lacks the images ['a']"),
        (lambda: plot_comparison(one, 0.5 * u.arcsec, axes=[None, None]), "one Axes per image (1), got 2"),
        (lambda: plot_maps({}), "maps must hold at least one Map"),
        (lambda: image_limits(np.full(3, np.nan)), "no finite pixels"),
        (lambda: image_limits(np.ones(3), kind="doppler"), "kind must be one of"),
    ]
    for call, words in cases:
        with pytest.raises(ValueError, match=re.escape(words)) as info:
            call()
        assert "\n" not in str(info.value)


def test_image_limits():
    values = np.arange(-50.0, 151.0)  # 201 values
    assert image_limits(values, kind="intensity", percentile=100) == (-50.0, 150.0)
    assert image_limits(values, kind="blos", percentile=100) == (-150.0, 150.0)  # symmetric about zero
    low, high = image_limits(values, kind="intensity", percentile=99.5)
    assert (low, high) == pytest.approx((np.percentile(values, 0.5), np.percentile(values, 99.5)))
    assert image_limits(np.full(5, 3.0)) == (3.0, 4.0)  # a flat image still gets a range
    assert image_limits(np.zeros(5), kind="blos") == (-1.0, 1.0)
    assert image_limits([1.0, np.nan, 2.0], percentile=100) == (1.0, 2.0)


def test_unit_labels_and_captions_come_from_the_map():
    data = np.ones((4, 4))
    base = {"ctype1": "HPLN-TAN", "ctype2": "HPLT-TAN", "cdelt1": 0.5, "cdelt2": 0.5, "cunit1": "arcsec",
            "cunit2": "arcsec", "telescop": "SDO/HMI", "instrume": "HMI_FRONT2"}  # fmt: skip
    assert unit_label(sunpy.map.Map(data, {**base, "bunit": "Mx/cm2"}), kind="blos") == "Mx / cm2 (= G)"
    assert unit_label(sunpy.map.Map(data, {**base, "bunit": "G"}), kind="blos") == "G"
    assert unit_label(sunpy.map.Map(data, {**base, "bunit": "DN/s"})) == "DN / s"
    assert unit_label(sunpy.map.Map(data, base), kind="blos") == "G"  # no unit at all: the kind's
    assert unit_label(sunpy.map.Map(data, base), kind="intensity") == "I/Ic"
    caption = map_caption(sunpy.map.Map(data, {**base, "date-obs": "2015-06-01T12:30:00"}))
    assert caption.endswith("2015-06-01 12:30:00 UTC")


def test_a_caption_without_a_date_in_the_header_invents_none_and_does_not_warn():
    """sunpy's ``Map.date`` warns and takes the current time when the header has none: the caption must not ask."""
    header = {"ctype1": "HPLN-TAN", "ctype2": "HPLT-TAN", "cdelt1": 0.5, "cdelt2": 0.5, "cunit1": "arcsec",
              "cunit2": "arcsec", "telescop": "SDO/HMI", "instrume": "HMI_FRONT2"}  # fmt: skip
    caption = map_caption(sunpy.map.Map(np.ones((4, 4)), header))  # warnings are errors in the tests
    assert "UTC" not in caption
    assert caption.startswith("HMI")


def test_power_spectra_are_drawn_on_a_log_scale_with_flat_noise_levels():
    noise = np.random.default_rng(2).normal(0, 2.0, (64, 64))
    level = white_noise_power(2.0, 0.5 * u.arcsec)
    fig = _render(plot_power_spectra({"noise": power_spectrum(noise, 0.5 * u.arcsec)},
                                     noise_levels={"sigma = 2": level}, unit="G", title="spectra"))  # fmt: skip
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_xlim()[0] == 0
    assert ax.get_ylabel() == "power [G$^2$ arcsec$^2$]"
    spectrum, reference = ax.lines
    assert spectrum.get_color() == "k"  # the first spectrum, the input, in black
    np.testing.assert_allclose(reference.get_ydata(), [level, level])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["noise", "sigma = 2"]


def test_a_density_scatter_of_identical_images_lies_on_the_diagonal():
    image = np.random.default_rng(3).normal(size=(16, 16))
    fig = _render(plot_density_scatter(image, image, bins=20, limits=(-4, 4), unit="G"))
    ax = fig.axes[0]
    counts = np.ma.filled(ax.collections[0].get_array(), np.nan).reshape(20, 20)
    off_diagonal = ~np.eye(20, dtype=bool)
    assert np.all(np.isnan(counts[off_diagonal]))
    assert np.nansum(counts) == image.size
    assert (ax.get_xlim(), ax.get_ylim()) == ((-4.0, 4.0), (-4.0, 4.0))
    assert ax.get_xlabel() == "input [G]"
    assert len(ax.lines) == 3  # 1:1 and the two factor-2 lines


def test_a_consistency_map_diverges_symmetrically_about_zero():
    residual = np.linspace(-2.0, 1.0, 64).reshape(8, 8)
    fig = _render(plot_consistency(residual, 0.504 * u.arcsec, value=0.0123, unit="G"))
    ax = fig.axes[0]
    low, high = ax.images[0].get_clim()
    assert low == -high
    assert high == pytest.approx(np.percentile(np.abs(residual), 99.5))
    assert ax.get_title() == "consistency residual: 1.23 %"
    assert fig.axes[-1].get_ylabel() == "reconvolved - input [G]"
    assert plot_consistency(residual, 0.504 * u.arcsec, vmax=5.0).axes[0].images[0].get_clim() == (-5.0, 5.0)
