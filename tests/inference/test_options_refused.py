"""Options far from the data: a quiet-Sun level that does not fit the image, noise levels of the wrong type or
outside what the network knows; refused with one line before any work, or run with a warning that says so."""

import warnings

import numpy as np
import pytest
from astropy.io import fits

from enhance.cli import main
from enhance.data import sample_path
from enhance.exceptions import EnhanceUserWarning
from enhance.inference.api import enhance


@pytest.mark.parametrize("level", ["1e6", "150", "0.005", "1e-9"])
def test_a_quiet_sun_level_far_from_the_image_is_refused(tmp_path, weights, capsys, level):
    out = tmp_path / "o.fits"
    assert main(["run", str(sample_path("intensity")), "-o", str(out), "--weights", weights, "--qs-level", level]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "qs_level=" in err[0]
    assert "times the image's own quiet-Sun level" in err[0]
    assert not out.exists()


def test_a_quiet_sun_level_near_the_image_is_used(tiny_net):
    image = fits.getdata(sample_path("intensity")).astype(np.float64)  # I/Ic: its own level is about 1
    for level in (0.05, 1.0, 20.0):
        out = enhance(image, "intensity", network=tiny_net, qs_level=level)
        assert np.isfinite(out).all()
    with pytest.raises(ValueError, match="within a factor 100"):
        enhance(image * 5e4, "intensity", network=tiny_net, qs_level=1.0)  # DN/s with the level of I/Ic


def test_the_level_is_checked_on_the_image_not_on_its_units():
    from enhance.observation.quiet_sun import check_level_fits

    umbra = np.full((40, 40), 0.08)  # a cut-out inside an umbra: its own level is 0.08, the quiet Sun's 1
    assert check_level_fits(1.0, umbra) == 1.0
    assert check_level_fits(5.0, np.zeros((8, 8))) == 5.0  # no level to compare with: other checks judge
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_level_fits(3.0, np.full((8, 8), 0.05)) == 3.0


@pytest.mark.parametrize("noise", ["0.01", True, b"1", [0.01]])
def test_noise_of_the_wrong_type_is_refused_in_one_line(noise):
    image = fits.getdata(sample_path("intensity")).astype(np.float64)
    with pytest.raises(TypeError, match="noise must be a positive number") as info:
        enhance(image, "intensity", model="light", noise=noise)
    assert "\n" not in str(info.value)


@pytest.mark.filterwarnings("default::enhance.exceptions.EnhanceUserWarning")  # shown by the CLI, read below
def test_a_noise_level_outside_the_networks_range_is_reported(tmp_path, capsys):
    """``--noise 5`` on a continuum image in I/Ic is 5000 x HMI's noise: the network runs at 32 x and says so."""
    out = tmp_path / "o.fits"
    assert main(["run", str(sample_path("intensity")), "-o", str(out), "--model", "light", "--noise", "5"]) == 0
    err = capsys.readouterr().err
    assert "EnhanceUserWarning: noise given is 4.88e+03 x HMI's, outside the 0.25-32 x" in err  # level 1.025
    assert "it runs at 32 x HMI's noise" in err
    image = fits.getdata(sample_path("intensity")).astype(np.float64)
    with pytest.warns(EnhanceUserWarning, match=r"noise given is 0.009[0-9]+ x HMI's.*runs at 0.25 x"):
        enhance(image, "intensity", model="light", noise=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within the range: nothing to say
        enhance(image, "intensity", model="light", noise=2e-3)
