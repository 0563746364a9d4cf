import json

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA, needs_shared
from enhance.analysis.validate import evaluate_field, floors, held_out_fields, real_data, report, validate
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
