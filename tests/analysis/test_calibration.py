from pathlib import Path

import numpy as np
import pytest

from enhance.analysis.calibration import PUBLISHED_RANGES, calibrate, compare_spectra, figure, format_report, report

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
MURAM = DATA / "muram_qs_0.0662arcsec.fits"
HMI_QS = DATA / "hmi_continuum_qs.fits"
needs_data = pytest.mark.skipif(not (MURAM.is_file() and HMI_QS.is_file()), reason="needs ../shared/data")


def test_compare_spectra_per_annulus_and_in_bands():
    f = np.linspace(0.01, 1.0, 100)
    reference = 1.0 / (1 + f**2)
    same = compare_spectra(f, reference, reference)
    assert same["annulus_min"] == same["annulus_max"] == pytest.approx(1.0)
    wiggly = reference * np.where(np.arange(100) % 2, 1.5, 0.5)  # alternating annuli: x1.5 and x0.5
    result = compare_spectra(f, wiggly, reference, fmax=0.5)
    assert result["annulus_min"] == pytest.approx(0.5)
    assert result["annulus_max"] == pytest.approx(1.5)
    assert 0.75 < result["binned_min"] <= result["binned_max"] < 1.25  # bands average neighbours
    assert result["fmax"] <= 0.5


def test_feature_checks_pass_without_reference_data():
    numbers = report(shape=(128, 128), spot_seeds=(1,), spot_shape=(400, 400))
    checks = numbers["c_features"]["checks"]
    assert set(checks) == set(PUBLISHED_RANGES)
    failed = [key for key, check in checks.items() if not check["pass"]]
    assert not failed, failed
    assert numbers["c_features"]["per_scene"][0]["opposite_polarities"]
    assert "a_full_resolution" not in numbers  # no MURaM given
    assert "overall: PASS" in format_report(numbers)


def test_figure_is_written_as_png(tmp_path):
    calibration = calibrate(shape=(128, 128), spot_seeds=(0,), spot_shape=(256, 256))
    path = tmp_path / "calibration.png"
    fig = figure(calibration, path=path, dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) >= 9


@needs_data
def test_quiet_sun_matches_muram_and_degraded_matches_hmi():
    # 1000 x 500 px: MURaM's own shape (a), and two 130 x 65 px HMI tiles (b).
    numbers = report(muram=MURAM, hmi_qs=HMI_QS, shape=(1000, 500), seed=0, spot_seeds=())
    a, b = numbers["a_full_resolution"], numbers["b_degraded"]
    assert a["muram_contrast"] == pytest.approx(0.164, abs=0.003)
    assert abs(a["contrast_ratio"] - 1) < 0.15
    assert a["contrast_pass"]
    assert a["spectrum_pass"], a["spectrum"]["band_ratio"]
    assert b["hmi_contrast"] == pytest.approx(0.0377, abs=0.0005)
    assert abs(b["contrast_ratio"] - 1) < 0.15
    assert b["contrast_pass"]
    assert b["spectrum_pass"], b["spectrum"]["band_ratio"]
    # The observation model makes MURaM itself look like HMI.
    assert abs(numbers["b_degraded_muram"]["contrast_ratio"] - 1) < 0.15
