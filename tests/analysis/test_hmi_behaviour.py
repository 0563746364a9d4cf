import astropy.units as u
import numpy as np
import pytest
import torch

from enhance.analysis.hmi_behaviour import PUBLISHED, behaviour, checks, implied_target, umbra_change
from enhance.observation.degrade import degrade


class Scaled(torch.nn.Module):
    """Nearest-neighbour x2 upsampling times a constant: every published number is known in closed form."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def _granulation(shape=(64, 64), seed=0):
    rng = np.random.default_rng(seed)
    return 1 + 0.04 * rng.standard_normal(shape)


def test_intensity_numbers_of_a_scaled_copy():
    image = _granulation()
    image[40:56, 40:56] = 0.3  # an umbra away from the quietest square
    numbers = behaviour(Scaled(0.95), "intensity", image)
    # Nearest upsampling keeps the contrast; the quiet-Sun normalisation is undone on output, so the
    # umbra (and everything) is scaled by 0.95.
    assert numbers["output_contrast"] == pytest.approx(numbers["input_contrast"], rel=1e-6)
    assert numbers["contrast_gain"] == pytest.approx(1.0, rel=1e-6)
    assert numbers["umbra_change"] == pytest.approx(-0.05, abs=1e-6)
    assert numbers["umbra_pixels"] == 256
    assert numbers["output_min_over_input_min"] == pytest.approx(0.95, rel=1e-6)
    # Nearest upsampling is no deconvolution, so the observation model expects a darker umbra than 0.95x.
    assert numbers["umbra_change_excess"] == pytest.approx(numbers["umbra_change"] - numbers["umbra_change_expected"])
    assert numbers["umbra_change_expected"] < -0.05
    verdict = checks(numbers, "intensity")
    assert verdict["umbra_change"][3]  # -5 % lies in the published -3 to -7 %
    assert not verdict["output_contrast"][3]  # an unchanged 4 % is not the published ~7 %


def test_blos_numbers_of_a_scaled_and_a_flipped_copy():
    image = np.zeros((48, 48))
    image[10:30, 10:30] = 1000.0  # a kG patch, smooth enough for bicubic to keep 1 kG inside
    image[35:45, 5:15] = -2500.0
    numbers = behaviour(Scaled(1.2), "blos", image)
    assert numbers["binned_unsigned_flux_ratio"] == pytest.approx(1.2, rel=1e-5)
    assert numbers["unsigned_flux_ratio"] == pytest.approx(1.2, rel=1e-5)
    assert numbers["amplification_1kG"] == pytest.approx(1.2, rel=1e-3)  # bicubic vs nearest at edges
    assert numbers["peak_ratio"] == pytest.approx(1.2, rel=1e-5)
    assert numbers["strong_field_sign_flips"] == 0.0
    verdict = checks(numbers, "blos")
    assert not verdict["binned_unsigned_flux_ratio"][3]  # 20 % more flux is not conservation
    assert verdict["amplification_1kG"][3]

    flipped = behaviour(Scaled(-1.0), "blos", image)
    assert flipped["strong_field_sign_flips"] == 1.0
    assert not checks(flipped, "blos")["strong_field_sign_flips"][3]


def test_unmeasurable_numbers_fail_the_check():
    numbers = behaviour(Scaled(1.0), "intensity", _granulation())  # no umbra at all
    assert numbers["umbra_change"] is None
    assert checks(numbers, "intensity")["umbra_change"] == (None, *PUBLISHED["intensity"]["umbra_change"], False)


def test_defaults_to_the_packaged_hmi_samples():
    numbers = behaviour(Scaled(1.0), "blos")
    assert numbers["strong_field_pixels"] > 100  # the sample active region has kG umbrae
    assert numbers["binned_unsigned_flux_ratio"] == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="kind"):
        behaviour(Scaled(1.0), "doppler")


def _disk_spot(umbra_radius, scale=0.0662):
    """Umbra (0.2 I/Ic) and penumbra (0.8, 2.4x wider) in a uniform quiet Sun, sampled at ``scale`` arcsec."""
    n = int(round((2 * umbra_radius / 0.42 + 24) / 0.504)) * 8
    y, x = (np.indices((n, n)) - n / 2) * scale
    r = np.hypot(x, y)
    return np.where(r < umbra_radius, 0.2, np.where(r < umbra_radius / 0.42, 0.8, 1.0))


@pytest.mark.parametrize("umbra_radius", [2.0, 5.0])
def test_implied_target_recovers_the_umbral_darkening_of_the_observation_model(umbra_radius):
    observed, target = degrade(_disk_spot(umbra_radius), 0.0662 * u.arcsec)
    truth = umbra_change(observed, target)
    implied = umbra_change(observed, implied_target(observed))
    assert truth < -0.1  # scattered light fills a small umbra: a large, measurable correction
    assert implied == pytest.approx(truth, abs=0.01)


def test_smaller_umbrae_darken_more():
    changes = [umbra_change(*degrade(_disk_spot(r), 0.0662 * u.arcsec)) for r in (2.0, 4.0, 8.0)]
    assert changes[0] < changes[1] < changes[2] < 0


def test_implied_target_and_umbra_change_validate_their_inputs():
    assert implied_target(np.full((20, 30), 0.9), n_iter=3) == pytest.approx(np.full((40, 60), 0.9))
    with pytest.raises(ValueError, match="positive"):
        implied_target(np.zeros((20, 20)))
    with pytest.raises(ValueError, match="n_iter"):
        implied_target(np.ones((20, 20)), n_iter=0)
    with pytest.raises(ValueError, match="twice the shape"):
        umbra_change(np.ones((4, 4)), np.ones((4, 4)))
    assert umbra_change(np.ones((4, 4)), np.ones((8, 8))) is None
