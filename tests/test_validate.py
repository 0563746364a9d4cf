import numpy as np
import pytest
import torch

from conftest import SHARED_DATA, needs_shared
from enhance.datasets import split_rows
from enhance.network import EnhanceNet
from enhance.validate import evaluate_field, floors, held_out_fields, report, validate


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
    path = report(results, tmp_path, kind="blos")
    text = path.read_text()
    assert "| full | enhance |" in text
    assert "FAIL: synthetic active_region: full - RL >= 2 dB" in text  # an untrained net fails the floor
    assert (tmp_path / "validation_blos.json").is_file()
    assert len(list(tmp_path.glob("validation_blos_1_*.png"))) == 2
    with pytest.raises(FileExistsError, match="exists"):
        report(results, tmp_path, kind="blos")
    assert report(results, tmp_path, kind="blos", overwrite=True) == path
    checks = floors({"f": {"full": {"enhance": {"psnr": 30}, "richardson_lucy": {"psnr": 27.5},
                                     "bicubic": {"psnr": 24}}, "light": {"enhance": {"psnr": 29.2}}}})  # fmt: skip
    assert all(ok for _, ok in checks.values())


@needs_shared
def test_simulation_holdout_field():
    fields = held_out_fields("intensity", simulation=SHARED_DATA / "muram_qs_0.0662arcsec.fits", scenes=())
    ((name, observed, target),) = fields
    assert "held-out rows" in name
    assert observed.shape == (32, 65)
    assert abs(float(target.mean()) - 1.0) < 0.05
