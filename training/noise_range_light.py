"""Experiment: fine-tune the shipped light network over a range of noise levels and PSF variants.

Issue 15 asks for networks that stay above RL+target at 3 and 10 times HMI's noise and under PSF
mismatch. This script fine-tunes the shipped light model (`model="light"`) on training scenes degraded
with the nominal PSF (3/4 of the pairs), the Wachter et al. (2012) PSF (1/8) and the nominal PSF with
its far wing out to 16" (1/8), each input with Gaussian noise of a per-sample level drawn
log-uniformly from 0.5 to 10 times HMI's (`enhance.training.datasets.NOISE`). Resumable: rerunning
continues from OUT/checkpoint.pt. The result, OUT/final.safetensors, is compared with the shipped light
model by `enhance validate --physics --weights light=... --weights light-noise=OUT/final.safetensors`.

    nice -n 10 .venv/bin/python training/noise_range_light.py KIND [--steps N] [--out runs/noise_light_KIND]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from enhance.models.pretrained import light, load_network
from enhance.models.weights import save_weights
from enhance.observation.psf import WACHTER_2012, WIDE_RADIUS
from enhance.training.datasets import NOISE, SCALE, PairDataset, recipe_sources

SIM = Path(__file__).resolve().parents[2] / "shared" / "data" / "muram_qs_0.0662arcsec.fits"


def pairs(kind, n_samples, seed):
    """In-memory noise-free training pairs: 3/4 nominal PSF, 1/8 Wachter 2012, 1/8 far wing to 16"."""
    simulation = SIM if kind == "intensity" and SIM.exists() else None
    sources = recipe_sources(kind, simulation=simulation, n_frames=24, shape=(600, 600), seed=seed,
                             simulation_weight=4)  # fmt: skip
    parts = [(3 * n_samples // 4, {}), (n_samples // 8, {"hmi_params": WACHTER_2012}),
             (n_samples // 8, {"radius": WIDE_RADIUS})]  # fmt: skip
    xs, ys = [], []
    for index, (count, options) in enumerate(parts):
        data = PairDataset(sources, n_samples=count, seed=seed + index, noise=0.0, patches_per_frame=32, **options)
        for i in range(count):
            x, y = data[i]
            xs.append(x)
            ys.append(y)
    return torch.stack(xs), torch.stack(ys)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("intensity", "blos"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=3072)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--out", default=None)
    parser.add_argument("--bfloat16", action="store_true", help="bfloat16 autocast (fast on AMX CPUs)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out or f"runs/noise_light_{args.kind}")
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "pairs.pt"
    if cache.exists():
        x_all, y_all = torch.load(cache, weights_only=True)
    else:
        start = time.perf_counter()
        x_all, y_all = pairs(args.kind, args.samples, seed=11)
        torch.save((x_all, y_all), cache)
        print(f"{len(x_all)} pairs in {time.perf_counter() - start:.0f} s", flush=True)
    net = light(args.kind, weights="default").train()
    optimiser = torch.optim.Adam(net.parameters(), lr=args.lr)
    step = 0
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step = state["step"]
    sigma_hmi = NOISE[args.kind] * SCALE[args.kind]
    rng = np.random.default_rng([5, step])
    start, last = time.perf_counter(), time.perf_counter()
    while step < args.steps:
        lr = 1e-5 + 0.5 * (args.lr - 1e-5) * (1 + np.cos(np.pi * step / args.steps))
        for group in optimiser.param_groups:
            group["lr"] = lr
        index = torch.from_numpy(rng.integers(0, len(x_all), 32))
        factors = 10 ** rng.uniform(np.log10(0.5), 1.0, 32)
        sigma = torch.from_numpy((sigma_hmi * factors).astype(np.float32))[:, None, None, None]
        x = x_all[index] + sigma * torch.from_numpy(rng.standard_normal((32, *x_all.shape[1:])).astype(np.float32))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bfloat16):
            prediction = net(x)
        loss = torch.nn.functional.mse_loss(prediction.float(), y_all[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        if step % 50 == 0 or step == args.steps:
            torch.save({"model": net.state_dict(), "optimiser": optimiser.state_dict(), "step": step}, checkpoint)
            print(f"step {step} loss {loss.item():.3e} lr {lr:.2e} {time.perf_counter() - last:.0f} s", flush=True)
            last = time.perf_counter()
    net.eval()
    path = save_weights(net, out / "final.safetensors", kind=args.kind, overwrite=True)
    load_network(path, kind=args.kind)  # it loads back
    print(f"wrote {path} ({time.perf_counter() - start:.0f} s of training)")


if __name__ == "__main__":
    main()
