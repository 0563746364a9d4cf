"""Each check accepts valid input unchanged and refuses invalid input with one line naming the argument."""

import warnings

import astropy.units as u
import numpy as np
import pytest

from enhance.checks import (
    MAX_NORMALISED,
    check_angle,
    check_choice,
    check_finite_output,
    check_image,
    check_integer,
    check_kind,
    check_magnitude,
    check_positive,
    check_tile,
    fill_nonfinite,
    supported_float_type,
)
from enhance.exceptions import EnhanceUserWarning


def _one_line(info, *words):
    text = str(info.value)
    assert "\n" not in text
    for word in words:
        assert word in text, text
    return text


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.float16, np.float32), (">f4", np.float32),
     (np.int16, np.float64), (np.uint8, np.float64), (np.bool_, np.float64)],
)  # fmt: skip
def test_supported_float_type_follows_scikit_images_policy(dtype, expected):
    found = supported_float_type(dtype)
    assert found == np.dtype(expected)
    assert found.isnative


def test_supported_float_type_refuses_complex_and_strings():
    for dtype in (np.complex64, np.str_):
        with pytest.raises(TypeError, match="integer or floating point") as info:
            supported_float_type(dtype)
        _one_line(info, "integer or floating point")


def test_check_image_returns_a_native_float_copy_and_leaves_the_input_alone():
    image = np.arange(6, dtype=">i2").reshape(2, 3)
    out = check_image(image)
    assert out.dtype == np.float64
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, [[0, 1, 2], [3, 4, 5]])
    out[0, 0] = 99
    assert image[0, 0] == 0
    nan = np.array([[1.0, np.nan]], np.float32)
    assert np.isnan(check_image(nan)).sum() == 1  # NaN is allowed by default


@pytest.mark.parametrize(
    ("image", "error", "words"),
    [(np.ones(4), ValueError, ["frame", "2-D", "(4,)"]), (np.ones((2, 2, 2)), ValueError, ["frame", "(2, 2, 2)"]),
     (np.ones((0, 3)), ValueError, ["frame", "empty"]), ("abc", TypeError, ["frame", "str"]),
     (np.ones((2, 2), complex), TypeError, ["complex"])],
)  # fmt: skip
def test_check_image_refuses_what_is_not_an_image(image, error, words):
    with pytest.raises(error) as info:
        check_image(image, name="frame")
    _one_line(info, *words)


def test_check_image_counts_nonfinite_pixels_when_they_are_refused():
    image = np.array([[1.0, np.nan, np.inf], [0.0, -np.inf, 2.0]])
    with pytest.raises(ValueError, match="output") as info:
        check_image(image, name="output", allow_nonfinite=False)
    _one_line(info, "output", "3 NaN or infinite")


def test_check_positive():
    assert check_positive(np.float32(0.5), name="sigma") == 0.5
    assert isinstance(check_positive(3, name="sigma"), float)
    for value in (0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="sigma must be a positive number") as info:
            check_positive(value, name="sigma")
        _one_line(info, "sigma must be a positive number")
    for value in (True, "2", None, 2j):
        with pytest.raises(TypeError, match="sigma") as info:
            check_positive(value, name="sigma")
        _one_line(info, "sigma")


def test_check_integer():
    assert check_integer(np.int64(8), name="tile", minimum=8) == 8
    assert type(check_integer(np.int64(8), name="tile")) is int
    for value in (0, 2.0, True, "3"):
        with pytest.raises(ValueError, match="depth must be a positive integer") as info:
            check_integer(value, name="depth")
        _one_line(info, "depth must be a positive integer", repr(value))
    with pytest.raises(ValueError, match="tile") as info:
        check_integer(7, name="tile", minimum=8, unit=" px")
    assert _one_line(info) == "tile must be an integer >= 8 px, got 7"


def test_check_angle_converts_to_arcsec():
    assert check_angle(1 * u.arcmin, name="radius") == pytest.approx(60.0)
    assert check_angle(1 * u.deg, name="radius") == pytest.approx(3600.0)
    assert check_angle(0.504, name="radius") == 0.504  # a plain number is arcsec
    for value in (0 * u.arcsec, -1.0, np.nan):
        with pytest.raises(ValueError, match="radius must be positive") as info:
            check_angle(value, name="radius")
        _one_line(info, "radius must be positive")
    for value in ("4 arcsec", True, None):
        with pytest.raises(TypeError, match="radius must be an angle") as info:
            check_angle(value, name="radius")
        _one_line(info, "radius must be an angle")
    with pytest.raises(ValueError, match="'m'"):  # astropy's UnitConversionError is a ValueError
        check_angle(1 * u.m, name="radius")


def test_fill_nonfinite_takes_the_nearest_finite_pixel():
    row = np.array([[1.0, 2.0, np.nan, np.nan, 9.0, 10.0]])
    np.testing.assert_array_equal(fill_nonfinite(row, np.isfinite(row)), [[1.0, 2.0, 2.0, 9.0, 9.0, 10.0]])
    image = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, np.nan, np.nan, 8.0], [9.0, 10.0, 11.0, 12.0]])
    filled = fill_nonfinite(image, np.isfinite(image))
    assert filled[1, 1] in (2.0, 5.0, 10.0)  # one of its three neighbours at distance 1
    assert filled[1, 2] in (3.0, 8.0, 11.0)
    np.testing.assert_array_equal(filled[np.isfinite(image)], image[np.isfinite(image)])
    assert np.isnan(image[1, 1])  # the input is not modified
    finite = np.ones((2, 2))
    assert fill_nonfinite(finite, np.isfinite(finite)) is finite
    with pytest.raises(ValueError, match="no finite pixels") as info:
        fill_nonfinite(np.full((2, 2), np.nan), np.zeros((2, 2), bool))
    _one_line(info, "no finite pixels")


def test_check_magnitude_refuses_a_pixel_beyond_the_limit_and_names_it():
    image = np.ones((4, 5))
    check_magnitude(image * MAX_NORMALISED, 1.0, unit="kG")  # exactly at the limit
    image[2, 3] = -3e6
    with pytest.raises(ValueError, match=r"pixel \(2, 3\)") as info:
        check_magnitude(image, 1.0, unit="kG")
    _one_line(info, "(2, 3)", "-3e+06", "kG")
    check_magnitude(image, 10.0, unit="kG")  # a level of 10 puts it at 3e5 times: accepted
    with pytest.raises(ValueError, match="inf times"):
        check_magnitude(np.ones((2, 2)), 0.0, unit="the quiet-Sun level")  # no level: any pixel is too large


def test_check_magnitude_takes_the_lowest_value_of_a_level_surface():
    class Surface:
        shape = (600, 4)

        def __call__(self, rows, *, factor):
            assert factor == 1
            return np.where(np.arange(600)[rows, None] >= 300, 0.5, 2.0) * np.ones((1, 4))

    image = np.full((600, 4), 0.6 * MAX_NORMALISED)
    with pytest.raises(ValueError, match="the quiet-Sun level"):
        check_magnitude(image, Surface(), unit="the quiet-Sun level")  # 0.6e6 / 0.5 > 1e6
    check_magnitude(image / 2, Surface(), unit="the quiet-Sun level")


def test_check_finite_output_looks_only_where_the_input_was_finite():
    finite = np.array([[True, False], [True, True]])
    out = np.zeros((4, 4))
    out[0:2, 2:4] = np.nan  # the 2x2 block of the missing input pixel
    check_finite_output(out, finite)
    out[3, 3] = np.inf
    with pytest.raises(ValueError, match="1 non-finite output pixels") as info:
        check_finite_output(out, finite)
    _one_line(info, "1 non-finite output pixels")
    with pytest.raises(ValueError, match="gave 5 non-finite"):
        check_finite_output(out, np.ones((2, 2), bool))


def test_check_choice_names_the_choices():
    assert check_choice(None, ("hann", None), name="window") is None
    with pytest.raises(ValueError, match="window") as info:
        check_choice("hamming", ("hann", None), name="window")
    assert _one_line(info) == "window must be one of 'hann', None, got 'hamming'"


def test_check_tile_warns_below_the_networks_reach_with_the_cost():
    assert check_tile(None, margin=18) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_tile(37, margin=18) == 37  # 2 margin + 1: no warning
    with pytest.warns(EnhanceUserWarning, match=r"169 times the work.*use tile >= 37"):
        assert check_tile(3, margin=18) == 3  # ((3 + 36) / 3)**2
    for tile in (0, -4, 8.0, True, "512"):
        with pytest.raises(ValueError, match="tile must be None or a positive number") as info:
            check_tile(tile, margin=18)
        _one_line(info, "tile must be None or a positive number")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("intensity", "intensity"), ("blos", "blos"), ("continuum", "intensity"), ("MAGNETOGRAM", "blos"),
     ("Auto", "auto")],
)  # fmt: skip
def test_check_kind_accepts_sunpys_names_in_any_case(kind, expected):
    assert check_kind(kind) == expected


def test_check_kind_refuses_other_measurements_and_auto_where_not_allowed():
    for kind in ("dopplergram", None, 3):
        with pytest.raises(ValueError, match="kind must be one of") as info:
            check_kind(kind)
        _one_line(info, "kind must be one of", "'continuum'", repr(kind))
    with pytest.raises(ValueError, match="kind must be one of") as info:
        check_kind("auto", auto=False)
    assert "'auto'" not in _one_line(info).split(", got")[0]
