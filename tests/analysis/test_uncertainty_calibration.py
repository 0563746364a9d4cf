"""The calibration of the per-pixel uncertainty: the coverage of a perfectly calibrated Gaussian sample is 68 and
95 %, the fit recovers a known variance law, and the calibration file is merged, never truncated."""

import dataclasses
import json

import numpy as np
import pytest
from scipy import stats

from enhance.analysis.uncertainty_calibration import (
    COLUMNS,
    GAUSSIAN_COVERAGE,
    IMAGE_EDGE,
    LARGEST_SIGMA,
    REGIONS,
    CalibrationConfig,
    Field,
    calibrate_uncertainty,
    collect,
    coverage,
    coverage_markdown,
    fit_calibration,
    held_out_fields,
    write_calibration,
)
from enhance.inference.uncertainty import Calibration
from enhance.training.datasets import HELD_OUT_SEED

N = 40_000


def _data(rng, *, width=1.0, factors=(1.0,), slope=0.0, regions=(0,)):
    """Pixels whose only feature is ``linear_noise`` (sigma) and whose errors are Gaussian of width
    ``width * sigma * factor**(slope / 2)``; the other features and ``space`` are zero and ``level`` is one."""
    features = np.zeros((N, len(COLUMNS)))
    features[:, 0] = rng.uniform(0.5, 2.0, N)
    features[:, COLUMNS.index("level")] = 1.0
    factor = rng.choice(factors, N)
    error = rng.normal(size=N) * width * features[:, 0] * factor ** (slope / 2)
    return {"features": features, "error": error, "region": rng.choice(regions, N).astype(np.int8), "factor": factor}


def test_gaussian_coverage_is_one_and_two_sigma():
    assert GAUSSIAN_COVERAGE == pytest.approx(
        (stats.norm.cdf(1) - stats.norm.cdf(-1), stats.norm.cdf(2) - stats.norm.cdf(-2)), abs=1e-4
    )


def test_a_perfectly_calibrated_gaussian_sample_covers_68_and_95_percent_in_every_cell():
    data = _data(np.random.default_rng(0), factors=(1.0, 3.0), regions=(-1, 0, 4))
    table = coverage(Calibration.uncalibrated(), data)  # sigma = linear_noise: the errors' own width
    assert set(table) == {"quiet Sun", "limb", "all", LARGEST_SIGMA}  # -1 (no region) counts only in "all"
    del table[LARGEST_SIGMA]  # a hundredth of the pixels: `test_the_largest_sigmas_get_a_row_of_their_own`
    bound = 4 * np.sqrt(0.25 / (N / 6))  # four binomial standard deviations of the smallest cell
    for region, rows in table.items():
        assert set(rows) == {"1", "3"}
        for cell in rows.values():
            assert cell["within_1"] == pytest.approx(GAUSSIAN_COVERAGE[0], abs=bound), region
            assert cell["within_2"] == pytest.approx(GAUSSIAN_COVERAGE[1], abs=bound), region
    assert sum(row["pixels"] for row in table["all"].values()) == N
    assert table["limb"]["3"]["pixels"] == np.count_nonzero((data["region"] == 4) & (data["factor"] == 3.0))


def test_the_largest_sigmas_get_a_row_of_their_own():
    """Sigma right for 99 % of the pixels and ten times too large for the rest: every region looks calibrated, the
    row of the largest 1 % of sigma shows the rest covered (|error| < sigma / 10 within sigma: 99.99 %)."""
    rng = np.random.default_rng(4)
    data = _data(rng, factors=(1.0, 3.0))
    wrong = rng.random(N) < 0.01
    data["features"][wrong, 0] *= 10.0  # sigma = linear_noise, at 5-20 where the errors stay at 0.5-2
    table = coverage(Calibration.uncalibrated(), data)
    for factor in ("1", "3"):
        top = table[LARGEST_SIGMA][factor]
        rows = data["factor"] == float(factor)
        assert top["pixels"] == pytest.approx(0.01 * np.count_nonzero(rows), abs=1)
        assert top["within_1"] > 0.97  # the wrong pixels make up nearly all of the top 1 %
        assert top["within_2"] > 0.98
        assert table["quiet Sun"][factor]["within_1"] == pytest.approx(GAUSSIAN_COVERAGE[0], abs=0.03)
    assert LARGEST_SIGMA in coverage_markdown({"blos/light": {"coverage": {"report": table}}})


def test_errors_twice_as_wide_as_sigma_cover_38_and_68_percent():
    data = _data(np.random.default_rng(1), width=2.0)
    cell = coverage(Calibration.uncalibrated(), data)["quiet Sun"]["1"]
    assert cell["within_1"] == pytest.approx(stats.norm.cdf(0.5) - stats.norm.cdf(-0.5), abs=0.01)
    assert cell["within_2"] == pytest.approx(GAUSSIAN_COVERAGE[0], abs=0.01)


def test_the_fit_recovers_a_known_variance_law():
    """Errors of variance 4 f^2 (s / s0)^2: ln c = ln 4 + 2 ln(s / s0) for the linear-noise feature."""
    data = _data(np.random.default_rng(2), width=2.0, factors=(1.0, 3.0), slope=2.0)
    calibration = fit_calibration(data)
    assert calibration.log_scale[0] == pytest.approx(np.log(4.0), abs=0.05)
    assert calibration.slope[0] == pytest.approx(2.0, abs=0.05)
    for cell in coverage(calibration, data)["all"].values():
        assert cell["within_1"] == pytest.approx(GAUSSIAN_COVERAGE[0], abs=0.015)
        assert cell["within_2"] == pytest.approx(GAUSSIAN_COVERAGE[1], abs=0.015)


def test_write_calibration_merges_into_the_file(tmp_path):
    path = tmp_path / "uncertainty.json"
    write_calibration({"blos/light": {"sha256": "a" * 64}}, path)
    write_calibration({"intensity/full": {"sha256": "b" * 64}}, path)
    written = write_calibration({"blos/light": {"sha256": "c" * 64}}, path)
    assert written == path
    text = path.read_text()
    assert text.endswith("\n")
    assert json.loads(text) == {"blos/light": {"sha256": "c" * 64}, "intensity/full": {"sha256": "b" * 64}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["uncertainty.json"]  # no temporary file left


def test_coverage_markdown_orders_noise_levels_numerically():
    def cell(p1, p2, pixels):
        return {"within_1": p1, "within_2": p2, "pixels": pixels}

    entries = {"blos/full": {"coverage": {"report": {"all": {"10": cell(0.5, 0.9, 10), "3": cell(0.7, 0.96, 30)},
                                                     "umbra": {"0.5": cell(0.684, 0.954, 7)}}}}}  # fmt: skip
    lines = coverage_markdown(entries).splitlines()
    assert lines[0] == "| model | region | 0.5 x HMI | 3 x HMI | 10 x HMI | pixels per level |"
    assert lines[2] == "| blos/full | all | - | 70 / 96 | 50 / 90 | 30 |"
    assert lines[3] == "| blos/full | umbra | 68 / 95 | - | - | 7 |"


def test_held_out_fields_refuse_the_seeds_of_training_and_validation():
    for seeds in ((11,), (4101, HELD_OUT_SEED)):
        config = CalibrationConfig(shape=(120, 120), fit_seeds=seeds)
        with pytest.raises(ValueError, match="seeds must differ from training's 11 and validation's"):
            held_out_fields("blos", config, report=False)
    with pytest.raises(ValueError, match="kind must be one of"):
        held_out_fields("doppler", CalibrationConfig(), report=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        CalibrationConfig().samples = 3


def test_collect_keeps_every_pixel_of_the_small_regions_and_draws_the_others():
    torch = pytest.importorskip("torch")
    from enhance.models.hybrid import WienerEnhanceNet

    torch.manual_seed(0)
    net = WienerEnhanceNet(depth=1, width=4, taps=5).eval()
    plage = np.zeros((24, 24), bool)
    plage[2:6, 3:8] = True  # 20 pixels
    field = Field("flat", np.ones((12, 12)), np.ones((24, 24)), {"plage": plage, "quiet Sun": ~plage})
    data = collect(net, [field], kind="intensity", noise_factors=(1.0, 3.0), samples=50)
    plage_code, quiet_code = REGIONS.index("plage"), REGIONS.index("quiet Sun")
    for factor in (1.0, 3.0):
        cell = data["region"][data["factor"] == factor]
        assert np.count_nonzero(cell == plage_code) == 20
        assert np.count_nonzero(cell == quiet_code) == 50
    assert data["features"].shape == (140, len(COLUMNS))
    assert np.all(np.isfinite(data["error"]))


def test_the_fit_recovers_variances_that_change_towards_the_limb_and_the_border():
    """Errors of variance f^2 exp(2 d) on the disk, for the sky's share d, f^2 exp(-e) beyond the limb, for the
    disk's share e, and times exp(1.5 b) for the share b beyond the image's border: beta_3 = 2, beta_5 = -1,
    beta_7 = 1.5, the others 0, and every cell covered."""
    rng = np.random.default_rng(3)
    data = _data(rng, regions=(0, 4, 6))
    share = rng.uniform(0.0, 1.0, N)
    beyond = data["region"] == 6
    border = np.where(rng.random(N) < 0.3, rng.uniform(0.0, 0.6, N), 0.0)  # a third of the pixels near a border
    data["features"][:, COLUMNS.index("space")] = np.where(beyond, 0.0, share)
    data["features"][:, COLUMNS.index("disk")] = np.where(beyond, share, 0.0)
    data["features"][:, COLUMNS.index("edge")] = border
    data["error"] = data["error"] * np.where(beyond, np.exp(-share / 2), np.exp(share)) * np.exp(0.75 * border)
    calibration = fit_calibration(data)
    beta = calibration.modulation
    assert len(beta) == 8
    x = np.linspace(0.0, 1.0, 11)  # the fitted log-variance laws against the true ones, over the shares' range
    np.testing.assert_allclose(beta[2] * x + beta[3] * x * x, 2.0 * x, atol=0.1)
    np.testing.assert_allclose(beta[4] * x + beta[5] * x * x, -x, atol=0.1)
    np.testing.assert_allclose(beta[6] * x[:7] + beta[7] * x[:7] ** 2, 1.5 * x[:7], atol=0.1)
    assert calibration.share_range[2] == pytest.approx(0.6, abs=1e-3)
    table = coverage(calibration, data)
    assert IMAGE_EDGE in table
    for region, rows in table.items():
        for cell in rows.values() if region != LARGEST_SIGMA else ():  # the border row as covered as the rest
            assert cell["within_1"] == pytest.approx(GAUSSIAN_COVERAGE[0], abs=0.015)
            assert cell["within_2"] == pytest.approx(GAUSSIAN_COVERAGE[1], abs=0.015)


def test_limb_fields_with_the_sky_as_zeros_and_as_nan():
    config = CalibrationConfig(shape=(120, 120), fit_seeds=(7,), limb_shape=(120, 400))
    zeros, missing = held_out_fields("intensity", config, report=False)[1:]
    assert zeros.missing is None
    assert set(zeros.regions) == {"limb", "off limb"}
    assert set(missing.regions) == {"limb, NaN sky"}
    assert np.array_equal(missing.observed, zeros.observed)
    # the disk's pixels within 4 arcsec of the limb, then the sky's: 16 output pixels (0.252") each side
    columns = np.flatnonzero(zeros.regions["limb"][0])
    assert columns.size == 16
    assert np.array_equal(missing.regions["limb, NaN sky"], zeros.regions["limb"])
    assert np.flatnonzero(zeros.regions["off limb"][0])[0] == columns[-1] + 1
    # the missing pixels are the observed ones beyond the limb: the sky, where the target is zero
    sky = missing.missing[0]
    assert sky.any()
    assert not sky[: columns[-1] // 2].any()
    assert sky[-1]
    assert zeros.target[:, 2 * np.flatnonzero(sky)].max() < 0.1 * zeros.target[:, columns].mean()


def test_collect_leaves_out_the_output_of_missing_pixels_and_gives_the_limb_shares():
    torch = pytest.importorskip("torch")
    from enhance.models.hybrid import WienerEnhanceNet

    torch.manual_seed(0)
    net = WienerEnhanceNet(depth=1, width=4, taps=5).eval()
    missing = np.zeros((12, 12), bool)
    missing[:, 9:] = True  # 36 pixels: 144 output pixels left out
    disk = np.zeros((24, 24), bool)
    disk[:, 12:18] = True
    field = Field("edge", np.ones((12, 12)), np.ones((24, 24)), {"limb, NaN sky": disk}, missing)
    data = collect(net, [field], kind="blos", noise_factors=(1.0,))
    assert data["features"].shape == (576 - 144, len(COLUMNS))
    assert np.count_nonzero(data["region"] == REGIONS.index("limb, NaN sky")) == 144
    assert np.all(np.isfinite(data["error"]))
    share = data["features"][:, COLUMNS.index("space")]
    assert 0.0 < share.min()
    assert share.max() < 0.5
    assert np.all(data["features"][:, COLUMNS.index("disk")] == 0.0)  # every pixel beyond the limb is left out


def test_keep_fit_measures_the_stored_fit_again_and_refuses_a_file_without_one(tmp_path, capsys):
    from enhance.cli import main
    from enhance.data import data_dir
    from enhance.inference.pipeline import resolve_network
    from enhance.inference.uncertainty import load_calibration

    config = CalibrationConfig(shape=(120, 120), fit_seeds=(7,), report_seeds=(8,), noise_factors=(1.0,),
                               limb_shape=(120, 160), samples=200)  # fmt: skip
    stored = json.loads((data_dir() / "uncertainty.json").read_text())["blos/light"]
    kept = calibrate_uncertainty("blos", "light", config, keep_fit=True)
    assert kept["coefficients"] == stored["coefficients"]
    assert kept["modulation"] == stored["modulation"]
    assert kept["kept_fit"] is True
    # the report is the stored fit's coverage on these fields, as measured directly
    fields = held_out_fields("blos", config, report=True)
    data = collect(resolve_network("blos", model="light"), fields, kind="blos", noise_factors=(1.0,), seed=2)
    assert kept["coverage"]["report"] == coverage(load_calibration("blos", "light"), data)
    with pytest.raises(ValueError, match="give no network"):
        calibrate_uncertainty("blos", "light", config, keep_fit=True, network=resolve_network("blos", model="light"))
    other = tmp_path / "uncertainty.json"
    write_calibration({"blos/light": {**stored, "sha256": "0" * 64}}, other)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    for path, why in ((other, "holds no calibration"), (tmp_path / "none.json", "holds no calibration"),
                      (broken, "is not a calibration file")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            calibrate_uncertainty("blos", "light", config, keep_fit=True, path=path)
    assert main(["calibrate-uncertainty", "-t", "blos", "--model", "light", "--keep-fit", "-o", str(other)]) != 0
    err = capsys.readouterr().err.strip()
    assert "holds no calibration of the shipped blos/light weights" in err
    assert len(err.splitlines()) == 1
    assert json.loads(other.read_text())["blos/light"]["sha256"] == "0" * 64  # untouched


def test_the_docs_coverage_table_is_the_calibration_files_report():
    # Every row of the table on the uncertainty page is the stored report coverage, as coverage_markdown writes
    # it (the page orders the regions by name): a refit or a new row shows there, or this fails.
    from pathlib import Path

    from enhance.data import data_dir

    page = Path(__file__).resolve().parents[2] / "docs" / "validation" / "uncertainty.md"
    if not page.is_file():
        pytest.skip("the docs are not part of this installation")
    entries = json.loads((data_dir() / "uncertainty.json").read_text())
    written = [line for line in coverage_markdown(entries).splitlines() if line.startswith("| blos") or
               line.startswith("| intensity")]  # fmt: skip
    shown = [line for line in page.read_text().splitlines() if line.startswith(("| blos/", "| intensity/"))]
    assert len(written) == len(entries) * (len(REGIONS) + 3)  # and "all", the largest sigmas, the border
    assert sorted(shown) == sorted(written)
