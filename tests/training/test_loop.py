import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import enhance.training.loop as train_module
from enhance.exceptions import EnhanceUserWarning
from enhance.models.network import EnhanceNet
from enhance.models.pretrained import load_network
from enhance.training.loop import (
    TrainConfig,
    evaluate,
    get_batch,
    load_checkpoint,
    load_config,
    lr_at,
    native_bfloat16,
    recalibrate_batchnorm,
    resolve_precision,
    train,
)


class BlurPairs:
    """Deterministic toy pairs: a smooth random field (target) and its 2x2-binned copy (input)."""

    def __init__(self, seed=0, size=12, n_samples=64):
        self.seed, self.size, self.n_samples = seed, size, n_samples

    def __len__(self):
        return self.n_samples

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, i])
        coarse = rng.random((self.size // 2 + 2, self.size // 2 + 2))
        target = np.kron(coarse, np.ones((4, 4)))[: 2 * self.size, : 2 * self.size]
        target = 0.5 * (target + np.roll(target, 1, axis=1))
        observed = target.reshape(self.size, 2, self.size, 2).mean(axis=(1, 3))
        return observed, target


def _data():
    return BlurPairs(seed=0), BlurPairs(seed=1, n_samples=8)


def _cfg(tmp_path, **kw):
    base = {"depth": 1, "width": 4, "batch_size": 4, "max_steps": 6, "lr": 1e-3, "warmup_steps": 2,
            "eval_interval": 3, "eval_samples": 8, "out_dir": str(tmp_path / "run"), "seed": 3}  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def test_resume_is_exact_bit_for_bit(tmp_path):
    data = (BlurPairs(n_samples=10), BlurPairs(seed=1, n_samples=8))  # 6 steps of 4 pass two epochs
    straight = train(_cfg(tmp_path / "a", max_steps=6), *data, progress=False)
    train(_cfg(tmp_path / "b", max_steps=3), *data, progress=False)
    resumed = train(_cfg(tmp_path / "b", max_steps=6), *data, progress=False)
    assert straight["step"] == resumed["step"] == 6
    a = load_checkpoint(tmp_path / "a" / "run" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "run" / "checkpoint.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert [h["val_loss"] for h in a["history"]] == [h["val_loss"] for h in b["history"]]


def test_training_lowers_validation_loss_and_writes_files(tmp_path):
    cfg = _cfg(tmp_path, max_steps=40, eval_interval=20, lr=3e-3, width=8)
    result = train(cfg, *_data(), progress=False)
    first, last = result["history"][0]["val_loss"], result["history"][-1]["val_loss"]
    assert last < first
    out = tmp_path / "run"
    for name in (
        "checkpoint.pt",
        "best.safetensors",
        "final.safetensors",
        "history.csv",
        "history.json",
        "history.png",
    ):
        assert (out / name).is_file(), name
    assert len(json.loads((out / "history.json").read_text())) == 2
    net = load_network(out / "final.safetensors", kind="intensity")
    assert (net.depth, net.width) == (1, 8)


def test_bfloat16_training_learns_like_float32(tmp_path, monkeypatch):
    kw = {"max_steps": 40, "eval_interval": 20, "lr": 3e-3, "width": 8}
    fp32 = train(_cfg(tmp_path / "a", **kw), *_data(), progress=False)
    monkeypatch.setattr(train_module, "native_bfloat16", lambda device: True)  # no warning on AVX2 CPUs
    bf16 = train(_cfg(tmp_path / "b", precision="bfloat16", **kw), *_data(), progress=False)
    first, last = bf16["history"][0]["val_loss"], bf16["history"][-1]["val_loss"]
    assert last < first
    # Same data, noise and initialisation: reduced precision changes the path only slightly.
    assert last == pytest.approx(fp32["history"][-1]["val_loss"], rel=0.2)
    assert last != fp32["history"][-1]["val_loss"]  # bf16 really was used
    with pytest.raises(ValueError, match="precision"):
        _cfg(tmp_path, precision="float16")


def test_precision_auto_uses_bfloat16_only_where_native(monkeypatch):
    monkeypatch.setattr(train_module, "native_bfloat16", lambda device: False)
    assert resolve_precision("auto", "cpu") == "float32"
    assert resolve_precision("float32", "cpu") == "float32"
    with pytest.warns(EnhanceUserWarning, match="emulated"):
        assert resolve_precision("bfloat16", "cpu") == "bfloat16"  # asked for: kept, but the user is told
    monkeypatch.setattr(train_module, "native_bfloat16", lambda device: True)
    assert resolve_precision("auto", "cpu") == "bfloat16"
    # On Linux the answer agrees with the CPU's flags: oneDNN runs bfloat16 natively with AVX512-BF16 or AMX.
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = set(cpuinfo.read_text().split())
        assert native_bfloat16("cpu") == bool({"avx512_bf16", "amx_bf16"} & flags)
    assert native_bfloat16("meta") is False  # neither CPU nor CUDA


def test_batchnorm_recalibration_measures_the_current_weights(tmp_path):
    cfg = _cfg(tmp_path, width=8)
    train_data, _ = _data()
    torch.manual_seed(0)
    model = EnhanceNet(depth=1, width=8)
    first = model.blocks[0].bn1
    first.running_mean.fill_(5.0)  # stale statistics, far from the activations
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calibrated = recalibrate_batchnorm(model, train_data, cfg, step=2, device=torch.device("cpu"), batches=3)
    for key, value in model.state_dict().items():  # the training model is untouched
        assert torch.equal(value, before[key]), key
    # The first BN's running mean is the plain average of its input over the three batches.
    with torch.no_grad():
        inputs = torch.cat([get_batch(train_data, 2 + j, cfg)[0] for j in range(3)])
        activation = model.blocks[0].conv1(model.relu(model.conv_in(inputs)))
    expected = activation.mean(dim=(0, 2, 3))
    assert torch.allclose(calibrated.blocks[0].bn1.running_mean, expected, atol=1e-5)
    assert calibrated.blocks[0].bn1.momentum == first.momentum
    assert not calibrated.training


def test_resume_refuses_a_different_architecture(tmp_path):
    train(_cfg(tmp_path, max_steps=1), *_data(), progress=False)
    with pytest.raises(
        ValueError, match=r"holds a network with \{'depth': 1, 'width': 4\}.*asks for \{'depth': 1, 'width': 8\}"
    ):
        train(_cfg(tmp_path, max_steps=2, width=8), *_data(), progress=False)


def test_batches_are_a_pure_function_of_seed_and_step(tmp_path):
    cfg = _cfg(tmp_path)
    x1, y1 = get_batch(BlurPairs(), 5, cfg)
    x2, y2 = get_batch(BlurPairs(), 5, cfg)
    assert torch.equal(x1, x2)
    assert torch.equal(y1, y2)
    x3, _ = get_batch(BlurPairs(), 6, cfg)
    assert not torch.equal(x1, x3)
    # A rank's share equals the same rows of the single-process batch, noise included.
    half, _ = get_batch(BlurPairs(), 5, cfg, rank=1, world=2)
    assert torch.equal(half, x1[2:])
    # Every epoch visits every sample once, in a seeded order.
    from enhance.training.loop import sample_index

    visits = [sample_index(k, cfg, 10) for k in range(20)]
    assert sorted(visits[:10]) == list(range(10))
    assert sorted(visits[10:]) == list(range(10))
    assert visits[:10] != visits[10:]
    assert [sample_index(k, dataclasses.replace(cfg, shuffle=False), 10) for k in range(12)][-2:] == [0, 1]
    # The paper's noise: 1e-3 I/Ic for continuum.
    assert cfg.noise == 1e-3
    assert dataclasses.replace(cfg, kind="blos").noise == 1e-2
    assert dataclasses.replace(cfg, kind="blos").l2_weight == 1e-5


def test_lr_schedule():
    cfg = TrainConfig(lr=1e-4, warmup_steps=10, max_steps=110, min_lr=1e-5)
    assert lr_at(0, cfg) == pytest.approx(1e-5)
    assert lr_at(9, cfg) == pytest.approx(1e-4)
    assert lr_at(60, cfg) == pytest.approx(0.5 * (1e-4 + 1e-5))
    assert lr_at(110, cfg) == pytest.approx(1e-5)
    assert lr_at(50, dataclasses.replace(cfg, lr_schedule="constant")) == 1e-4


def test_config_validation_and_toml(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        TrainConfig(kind="doppler")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        TrainConfig(batch_size=0)
    path = tmp_path / "cfg.toml"
    path.write_text('kind = "blos"\ndepth = 1\nwidth = 32\n')
    cfg = load_config(path, max_steps=7)
    assert (cfg.kind, cfg.depth, cfg.width, cfg.max_steps) == ("blos", 1, 32, 7)
    path.write_text("depht = 3\n")
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['depht'\]"):
        load_config(path)


def test_ddp_two_cpu_processes_with_gloo(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).with_name("ddp_worker.py")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(worker), str(tmp_path)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert [r["step"] for r in ranks] == [4, 4]
    for key, value in ranks[0]["model"].items():
        if "running" in key or "num_batches" in key:
            continue  # BatchNorm statistics are per replica (local batches), as in plain DDP
        assert torch.equal(value, ranks[1]["model"][key]), key
    assert (tmp_path / "checkpoint.pt").is_file()
    assert (tmp_path / "final.safetensors").is_file()


def test_resume_refuses_a_different_data_stream(tmp_path):
    train(_cfg(tmp_path, max_steps=1), *_data(), progress=False)
    with pytest.raises(ValueError, match="trained with seed=3, but the configuration asks for seed=4"):
        train(_cfg(tmp_path, max_steps=2, seed=4), *_data(), progress=False)
    with pytest.raises(ValueError, match="trained with kind='intensity'"):
        train(_cfg(tmp_path, max_steps=2, kind="blos"), *_data(), progress=False)


def test_config_rejects_inconsistent_rates_and_negative_weights():
    with pytest.raises(ValueError, match=r"min_lr must lie in \[0, lr=0.0001\]"):
        TrainConfig(lr=1e-4, min_lr=1e-3)
    with pytest.raises(ValueError, match="l2 must be None or >= 0"):
        TrainConfig(l2=-1.0)
    with pytest.raises(ValueError, match="warmup_steps must be an integer >= 0"):
        TrainConfig(warmup_steps=-5)


def test_averaged_checkpoints_hold_the_mean_weights(tmp_path):
    from enhance.training.loop import average_checkpoints, export_average

    data = _data()
    ckpt = tmp_path / "run" / "checkpoint.pt"
    train(_cfg(tmp_path, max_steps=6, snapshot_interval=3), *data, progress=False)
    snapshots = sorted((tmp_path / "run" / "snapshots").iterdir())
    assert [p.name for p in snapshots] == ["step_0000003.pt", "step_0000006.pt"]
    a, b = load_checkpoint(snapshots[0]), load_checkpoint(ckpt)
    assert (a["step"], b["step"]) == (3, 6)
    network, info = average_checkpoints([ckpt, snapshots[0]], data[0], data[1])
    assert info["steps"] == [3, 6]
    weight = "head.weight" if "head.weight" in a["model"] else next(k for k in a["model"] if k.endswith("weight"))
    expected = (a["model"][weight] + b["model"][weight]) / 2
    torch.testing.assert_close(network.state_dict()[weight], expected, rtol=0, atol=1e-7)
    assert not torch.equal(a["model"][weight], b["model"][weight])  # the two really differ
    # BatchNorm statistics are measured on the averaged weights, not averaged.
    calibrated = recalibrate_batchnorm(_load(b["model"]), data[0], TrainConfig(**b["config"]), 6, "cpu")
    name = next(k for k in network.state_dict() if k.endswith("running_var"))
    assert not torch.equal(network.state_dict()[name], calibrated.state_dict()[name])
    assert info["val_loss"] == pytest.approx(evaluate(network, data[1], TrainConfig(**b["config"]), "cpu"))
    # One checkpoint averages to itself; the file carries the steps.
    single, _ = average_checkpoints([ckpt], data[0])
    torch.testing.assert_close(single.state_dict()[weight], b["model"][weight], rtol=0, atol=0)
    path = export_average(snapshots, tmp_path / "swa.safetensors", data[0], data[1])
    assert load_network(path, kind="intensity").depth == 1
    with pytest.raises(FileExistsError):
        export_average([ckpt], path, data[0])


def test_average_refuses_checkpoints_of_different_networks(tmp_path):
    from enhance.training.loop import average_checkpoints

    train(_cfg(tmp_path / "a", max_steps=1), *_data(), progress=False)
    train(_cfg(tmp_path / "b", max_steps=1, width=8), *_data(), progress=False)
    with pytest.raises(ValueError, match="different networks"):
        average_checkpoints([tmp_path / "a" / "run" / "checkpoint.pt", tmp_path / "b" / "run" / "checkpoint.pt"],
                            _data()[0])  # fmt: skip


def _load(state):
    model = EnhanceNet(depth=1, width=4)
    model.load_state_dict(state)
    return model


class _CreatesAFile:
    """Unpickling this calls ``open(path, "w")``: a checkpoint that runs code when loaded unsafely."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _malicious_checkpoint(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "model_args": {"depth": 1, "width": 4}, "step": 1, "config": {"kind": "intensity"},
                "payload": _CreatesAFile(marker)}, path)  # fmt: skip
    return path


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path, capsys):
    from enhance.cli import main

    marker = tmp_path / "pwned"
    ckpt = _malicious_checkpoint(tmp_path / "run" / "checkpoint.pt", marker)
    with pytest.raises(ValueError, match="not a checkpoint of `enhance train` that loads safely"):
        load_checkpoint(ckpt)
    assert not marker.exists()
    # Auto-resume of `enhance train` reads out_dir/checkpoint.pt.
    with pytest.raises(ValueError, match="loads safely"):
        train(_cfg(tmp_path, max_steps=2), *_data(), progress=False)
    assert not marker.exists()
    # `enhance average` reads every checkpoint it is given: one line, exit 2, no file created.
    data = tmp_path / "pairs.h5"
    data.write_bytes(b"")
    code = main(["average", str(tmp_path / "swa.safetensors"), str(ckpt), "--data", str(data)])
    assert code != 0
    err = capsys.readouterr().err
    assert "loads safely" in err
    assert len(err.strip().splitlines()) == 1
    assert not marker.exists()
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="garbage.pt is not a readable checkpoint|garbage.pt is not a checkpoint"):
        load_checkpoint(garbage)
