import json

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA, needs_shared
from enhance.analysis.validate import (
    MISMATCHES,
    PhysicsConfig,
    band_spectra,
    compare_networks,
    comparison_table,
    equivariance,
    evaluate_field,
    flicker,
    floors,
    held_out_fields,
    physics_floors,
    physics_report,
    physics_validation,
    real_data,
    report,
    validate,
)
from enhance.models.network import EnhanceNet
from enhance.training.datasets import split_rows


def test_split_rows_keeps_the_last_quarter_out():
    frame = np.arange(40.0).reshape(20, 2)
    train, held = split_rows(frame)
    assert train.shape == (15, 2)
    assert held.shape == (5, 2)
    assert held[0, 0] == 30.0


def test_held_out_scenes_are_deterministic_and_noisy():
    ((name, observed, target),) = held_out_fields("blos", shape=(160, 160), scenes=("plage",))
    ((_, again, target_again),) = held_out_fields("blos", shape=(160, 160), scenes=("plage",))
    assert name == "synthetic plage"
    np.testing.assert_array_equal(observed, again)
    assert target.shape == (2 * observed.shape[0], 2 * observed.shape[1])
    ((_, clean, _),) = held_out_fields("blos", shape=(160, 160), scenes=("plage",), noise=False)
    assert np.std(observed - clean) == pytest.approx(0.01, rel=0.2)  # 10 G in kG


def test_evaluate_field_scores_a_perfect_network_above_the_baselines():
    # A "network" that returns the target exactly must beat bicubic and RL.
    ((_, observed, target),) = held_out_fields("intensity", shape=(200, 200), scenes=("quiet_sun",))

    class Oracle(torch.nn.Module):
        def forward(self, x):
            return torch.from_numpy(target)[None, None]

    scores = evaluate_field(Oracle(), observed, target, kind="intensity")
    assert scores["enhance"]["psnr"] > 100
    assert scores["enhance"]["contrast"] == pytest.approx(scores["target_contrast"], rel=1e-4)
    assert scores["richardson_lucy"]["psnr"] > scores["bicubic"]["psnr"]
    assert scores["input_contrast"] < scores["target_contrast"]


def test_report_and_floors(tmp_path):
    torch.manual_seed(0)
    nets = {"full": EnhanceNet(depth=1, width=4), "light": EnhanceNet(depth=1, width=2)}
    results = validate(nets, "blos", shape=(160, 160), scenes=("active_region",))
    behaviour = real_data(nets, "blos")
    path = report(results, tmp_path, kind="blos", behaviour=behaviour)
    text = path.read_text()
    assert "| full | enhance |" in text
    assert "synthetic active_region: full - light <= 1 dB" in text  # magnetograms: the light floor only
    assert "RL >= 2 dB" not in text
    assert "## Real HMI data" in text
    assert "| light | " in text
    summary = json.loads((tmp_path / "validation_blos.json").read_text())
    assert set(summary) == {"fields", "floors", "hmi_behaviour"}
    assert summary["hmi_behaviour"]["full"]["numbers"]["strong_field_pixels"] > 0
    assert len(list(tmp_path.glob("validation_blos_1_*.png"))) == 2
    with pytest.raises(FileExistsError, match="exists"):
        report(results, tmp_path, kind="blos")
    assert report(results, tmp_path, kind="blos", overwrite=True) == path


def _scores(full, rl, bicubic, light):
    return {"full": {"enhance": {"psnr": full}, "richardson_lucy": {"psnr": rl}, "bicubic": {"psnr": bicubic}},
            "light": {"enhance": {"psnr": light}}}  # fmt: skip


def test_floors_apply_to_the_simulation_field():
    results = {"muram.fits (held-out rows)": _scores(30, 27.5, 24, 29.2), "synthetic plage": _scores(30, 29.5, 24, 20)}
    checks = floors(results)
    assert len(checks) == 3
    assert all(ok for _, ok in checks.values())
    results["muram.fits (held-out rows)"] = _scores(30, 28.5, 24, 29.2)
    failed = [name for name, (_, ok) in floors(results).items() if not ok]
    assert failed == ["muram.fits (held-out rows): full - RL >= 2 dB"]
    # Without a simulation field every field carries the light floor, and only it.
    checks = floors({"synthetic plage": _scores(30, 29.5, 24, 28.5)})
    assert checks == {"synthetic plage: full - light <= 1 dB": (1.5, False)}


@needs_shared
def test_simulation_holdout_field():
    fields = held_out_fields("intensity", simulation=SHARED_DATA / "muram_qs_0.0662arcsec.fits", scenes=())
    ((name, observed, target),) = fields
    assert "held-out rows" in name
    assert observed.shape == (32, 65)
    assert abs(float(target.mean()) - 1.0) < 0.05


# --- The physics validation: against RL+target and Wiener, symmetry, flicker, limb ---------------------------

_TINY = dict(shape=(160, 160), scenes=("plage",), noise_factors=(1.0, 10.0), rl_iterations=(1, 3, 10), rl_max=10,
             rl_converged=5, real_crop=24, limb_shape=(160, 160))  # fmt: skip


def test_band_spectra_of_a_scaled_and_an_inverted_copy():
    reference = np.random.default_rng(31).normal(size=(64, 64))
    for (power, coherence), (power_neg, coherence_neg) in zip(
        band_spectra(3 * reference, reference), band_spectra(-reference, reference), strict=True
    ):
        assert power == pytest.approx(9.0, rel=1e-12)
        assert coherence == pytest.approx(1.0, abs=1e-12)
        assert power_neg == pytest.approx(1.0, rel=1e-12)
        assert coherence_neg == pytest.approx(-1.0, abs=1e-12)


def test_equivariance_and_flicker_tell_symmetric_methods_from_others():
    from enhance.analysis.baselines import bicubic_x2

    image = np.random.default_rng(32).normal(1.0, 0.05, (40, 40))
    assert max(equivariance(lambda x: 2 * bicubic_x2(x) - 1, image)) < 1e-12

    def skewed(x):  # replication shifted by one x2 pixel to the right: no rotation undoes that
        return np.roll(np.kron(x, np.ones((2, 2))), 1, axis=1) * 2 - bicubic_x2(x)

    ratios = sorted(equivariance(skewed, image))
    assert len(ratios) == 7
    assert ratios[0] < 1e-12  # the up-down flip commutes with a shift along x: only it
    assert ratios[1] > 0.1
    # Half an input pixel is one x2 pixel: a smooth interpolating method hardly flickers on a smooth image,
    # replication does.
    from scipy import ndimage

    image = 1 + ndimage.gaussian_filter(image - 1, 2.0, mode="wrap")
    smooth = flicker(lambda x: 2 * bicubic_x2(x) - 1, image)
    blocky = flicker(lambda x: 2 * np.kron(x, np.ones((2, 2))) - bicubic_x2(x), image)
    assert max(smooth) < 0.3 * min(blocky)


def test_physics_validation_end_to_end(tmp_path):
    torch.manual_seed(0)
    nets = {"full": EnhanceNet(depth=1, width=4), "light": EnhanceNet(depth=1, width=2)}
    with torch.no_grad():
        for net in nets.values():
            net.conv_out.bias.add_(1.0)  # continuum-like output
    results = physics_validation(nets, "intensity", PhysicsConfig(**_TINY))
    methods = {"bicubic", "RL+target best", "RL+target discrepancy", "Wiener", "full", "full D4", "light", "light D4"}
    levels = results["noise"]["synthetic plage"]
    assert set(levels) == {"1", "10"}
    assert set(levels["1"]) == methods
    assert 1 <= levels["1"]["RL+target best"]["n_iter"] <= 10
    # The discrepancy rule stops earlier on noisier data.
    assert levels["10"]["RL+target discrepancy"]["n_iter"] <= levels["1"]["RL+target discrepancy"]["n_iter"]
    assert set(results["mismatch"]["synthetic plage"]) == set(MISMATCHES)
    symmetry = results["symmetry"]["hmi_continuum_ar.fits"]
    assert max(symmetry["full D4"]["equivariance"]) < 1e-5
    assert max(symmetry["full"]["equivariance"]) > 1e-5
    assert max(symmetry["Wiener"]["equivariance"]) < 1e-6  # a symmetric PSF and mirrored edges
    assert results["limb"]["full"]["negative_fraction"] == 0.0
    assert "full (network alone, no clip)" in results["limb"]
    assert "RL+target (5 it.)" in results["umbra"]["hmi_continuum_ar.fits"]
    path = physics_report(results, tmp_path, kind="intensity", command="enhance validate --physics")
    text = path.read_text()
    assert "| RL+target best | " in text
    assert "## Floors of issue 15: full D4" in text
    assert "PASS: hmi_continuum_ar.fits: full D4 equivariance" in text
    assert "Reproduce with `enhance validate --physics`" in text
    summary = json.loads((tmp_path / "physics_intensity.json").read_text())
    assert summary["floors"]["full"]
    with pytest.raises(FileExistsError, match="exists"):
        physics_report(results, tmp_path, kind="intensity")


def test_compare_networks_scores_the_rows_of_the_physics_validation():
    torch.manual_seed(0)
    nets = {"old": EnhanceNet(depth=1, width=4), "new": EnhanceNet(depth=1, width=4)}
    with torch.no_grad():
        nets["new"].load_state_dict(nets["old"].state_dict())
        nets["new"].conv_out.bias.add_(0.05)  # the same network with an offset: worse on every row
    config = PhysicsConfig(**_TINY)
    rows = compare_networks(nets, "blos", config)
    full = physics_validation(nets, "blos", config)
    flickers = [f"hmi_blos_ar.fits, half-pixel flicker along {axis}" for axis in "yx"]
    psnr_rows = {"synthetic plage, 1 x", "synthetic plage, 10 x"} | {f"synthetic plage, {v}" for v in MISMATCHES}
    ssim_rows = {f"{row}, SSIM" for row in psnr_rows}
    assert set(rows) == psnr_rows | ssim_rows | set(flickers)
    for factor in ("1", "10"):
        for method in ("old", "new", "old D4", "new D4"):
            scored = full["noise"]["synthetic plage"][factor][method]
            assert rows[f"synthetic plage, {factor} x"][method] == scored["psnr"]
            assert rows[f"synthetic plage, {factor} x, SSIM"][method] == scored["ssim"]
    for method in ("old", "new D4"):
        assert [rows[row][method] for row in flickers] == full["symmetry"]["hmi_blos_ar.fits"][method]["flicker"]
    table, kept = comparison_table({row: rows[row] for row in psnr_rows}, "old")
    assert kept == {"new": (0, len(psnr_rows)), "new D4": (0, len(psnr_rows))}
    cells = [cell.strip() for line in table.splitlines()[2:] for cell in line.split("|")[2:-1]]
    assert len(cells) == 2 * len(psnr_rows)
    assert all(float(cell) < 0 for cell in cells)
    _, kept_same = comparison_table({row: {**scores, "copy": scores["old"]} for row, scores in rows.items()}, "old")
    assert kept_same["copy"] == (len(rows), len(rows))
    # Flicker is better lower: a method that flickers more loses the row, one that flickers less keeps it.
    _, kept = comparison_table({flickers[0]: {"old": 0.1, "more": 0.102, "less": 0.098}}, "old")
    assert kept == {"more": (0, 1), "less": (1, 1)}
    # A D4 column is held against the reference's D4 only: without one it is left out, not compared or refused.
    _, kept = comparison_table({"f, 1 x": {"old": 30.0, "new": 30.1, "new D4": 30.2}}, "old")
    assert kept == {"new": (1, 1)}
    # SSIM is better higher, to 0.001: 0.7526 against 0.7523 is a row lost (0.753 against 0.752).
    table, kept = comparison_table({"a, 10 x, SSIM": {"old": 0.7526, "new": 0.7523, "same": 0.7527}}, "old")
    assert kept == {"new": (0, 1), "same": (1, 1)}
    assert table.splitlines()[2] == "| a, 10 x, SSIM | -0.001 | +0.000 |"


def test_physics_validation_of_magnetograms_checks_flux_and_sign():
    torch.manual_seed(1)
    results = physics_validation(
        {"full": EnhanceNet(depth=1, width=2)}, "blos", PhysicsConfig(**_TINY, symmetric=False)
    )
    table = results["magnetogram"]["hmi_blos_ar.fits"]
    assert set(table) == {"RL+target discrepancy", "Wiener", "full"}
    assert table["Wiener"]["strong_pixels"] > 0
    # The classical baselines keep the flux (they fit the data) and the sign of strong fields.
    assert table["RL+target discrepancy"]["unsigned_flux_ratio"] == pytest.approx(1.0, abs=0.05)
    assert table["Wiener"]["sign_flips"] == 0
    assert results["limb"] == {}
    assert results["umbra"] == {}


def test_physics_floors_apply_the_margins_of_issue_15():
    def level(model, rl, bicubic):
        return {"full": {"psnr": model}, "RL+target best": {"psnr": rl}, "bicubic": {"psnr": bicubic}}

    results = {"noise": {"f": {"0.5": level(20, 30, 25), "1": level(30.6, 30, 25), "3": level(28, 27.5, 20),
                               "10": level(19, 18, 19.5)}},
               "symmetry": {"hmi": {"full": {"equivariance": [1e-6] * 7, "flicker": [0.1, 0.2]},
                                    "RL+target discrepancy": {"equivariance": [0.0] * 7, "flicker": [0.2, 0.2]}}},
               "limb": {"full": {"negative_fraction": 0.0}}}  # fmt: skip
    checks = physics_floors(results)
    failed = {name for name, (_, ok) in checks.items() if not ok}
    assert failed == {"f, 0.5 x noise: full - bicubic >= 0 dB"} | {
        "f, 3 x noise: full - RL+target best >= 1.0 dB", "f, 10 x noise: full - bicubic >= 0 dB"}  # fmt: skip
    assert "f, 0.5 x noise: full - RL+target best >= 0.5 dB" not in checks  # no margin is set at 0.5 x
    assert checks["f, 1 x noise: full - RL+target best >= 0.5 dB"][1]
    assert checks["hmi: full equivariance (max over D4) <= 1e-5"][1]
    assert checks["hmi: full flicker <= RL+target's (0.200)"][1]


def test_contrast_rows_scale_the_contrast_by_the_power():
    from enhance.analysis.validate import physics_frames

    frames = {name: frame for name, frame, _, _ in physics_frames("intensity", PhysicsConfig(
        shape=(200, 200), scenes=("quiet_sun", "active_region"), contrast_powers=(0.5, 1.5)))}  # fmt: skip
    assert set(frames) == {"synthetic quiet_sun", "synthetic active_region", "synthetic active_region, I^0.5",
                           "synthetic active_region, I^1.5"}  # fmt: skip
    base = frames["synthetic active_region"]
    for power in (0.5, 1.5):
        varied = frames[f"synthetic active_region, I^{power:g}"]
        # I**p keeps the order of the pixels and multiplies small relative fluctuations by p.
        quiet = base > np.percentile(base, 20)
        ratio = np.std(np.log(varied[quiet])) / np.std(np.log(base[quiet]))
        assert ratio == pytest.approx(power, rel=1e-6)
        assert np.median(varied) == pytest.approx(1.0)


def test_an_observation_file_becomes_a_held_out_field(tmp_path):
    from enhance.analysis.validate import physics_frames

    image = 1000 * (1 + 0.1 * np.random.default_rng(3).standard_normal((300, 300)))
    np.save(tmp_path / "obs.npy", image)
    observation = (str(tmp_path / "obs.npy"), 0.06, "quiet Sun")
    config = PhysicsConfig(scenes=(), contrast_powers=(), observations=(observation,))
    [(name, frame, scale, boundary)] = physics_frames("intensity", config)
    assert name == "quiet Sun (obs.npy)"
    assert np.median(frame) == pytest.approx(1.0)
    assert scale.to_value("arcsec") == pytest.approx(0.06)
    assert boundary == "reflect"
