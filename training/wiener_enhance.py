"""Train a Wiener-Enhance network (`enhance.models.hybrid.WienerEnhanceNet`): noise-free pairs, noise drawn per sample.

The linear stage comes first, in closed form from the nominal-PSF pairs (`enhance.training.linear_stage`);
the CNN is then trained with the linear stage fixed, on every pair (nominal PSF, Wachter et al. 2012 PSF,
far wing to 16"), each input with Gaussian noise of a level drawn log-uniformly over the filter bank's range
and told to the network. The loss is the mean square error over the pixels whose receptive field lies
inside the patch, so no patch edge is ever padded. Resumable: rerunning continues from OUT/checkpoint.pt.

    nice .venv/bin/python training/wiener_enhance.py KIND --pairs runs/noise_light_KIND/pairs.pt [--steps N]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from enhance.models.hybrid import NOISE_NODES, WienerEnhanceNet
from enhance.training.datasets import NOISE, SCALE, degrade_frame, split_rows
from enhance.training.linear_stage import mmse_filters, patch_statistics

SIM = Path(__file__).resolve().parents[2] / "shared" / "data" / "muram_qs_0.0662arcsec.fits"


def held_out_check(kind):
    """The held-out MURaM rows (intensity) at 1 and 10 x HMI noise, with the Wiener baseline's PSNR."""
    from enhance.analysis.baselines import ForwardModel, wiener_target
    from enhance.analysis.metrics import psnr
    from enhance.scenes.sources import open_source
    from enhance.scenes.synth import MURAM_PIXEL_SCALE, generate

    if kind == "intensity" and SIM.exists():
        source = open_source(SIM, kind="intensity", normalise="mean")
        frame, scale, boundary = split_rows(source.frame(0))[1], source.pixel_scale, "reflect"
    else:
        frame = generate((800, 800), MURAM_PIXEL_SCALE, kind="active_region", seed=[2_718_281, 2])[1]
        scale, boundary = MURAM_PIXEL_SCALE, "wrap"
    clean, target = (a.astype(np.float64) for a in degrade_frame(frame, scale, kind=kind, boundary=boundary))
    sigma_hmi = NOISE[kind] * SCALE[kind]
    cases = []
    for factor in (1.0, 10.0):
        rng = np.random.default_rng([7, int(factor)])
        observed = clean + rng.normal(0.0, factor * sigma_hmi, clean.shape)
        wiener = wiener_target(observed, ForwardModel(boundary=boundary), noise=factor * sigma_hmi)
        data_range = float(target.max() - target.min())
        cases.append((factor, observed, target, data_range, psnr(wiener, target, data_range=data_range)))

    def score(net):
        out = []
        with torch.no_grad():
            for factor, observed, target, data_range, wiener in cases:
                x = torch.from_numpy(observed.astype(np.float32))[None, None]
                y = net(x, torch.tensor([factor * net.noise_unit])).double().numpy()[0, 0]
                out.append((factor, psnr(y, target, data_range=data_range) - wiener))
        return out

    return score


def build(kind, nominal, args, out):
    net = WienerEnhanceNet(depth=args.depth, width=args.width, taps=args.taps, noise_unit=NOISE[kind] * SCALE[kind])
    stats_path = out / "linear_stage.npy"
    if stats_path.exists():
        filters = np.load(stats_path)
    else:
        start = time.perf_counter()
        xs = torch.cat([x for x, _ in nominal])[:, 0].numpy()
        ys = torch.cat([y for _, y in nominal])[:, 0].numpy()
        stats = patch_statistics(xs, ys, taps=args.taps)
        filters = mmse_filters(stats, [f * net.noise_unit for f in NOISE_NODES])
        np.save(stats_path, filters)
        print(f"linear stage in {time.perf_counter() - start:.0f} s", flush=True)
    net.filters.copy_(torch.from_numpy(filters))
    return net


def batch_loss(net, x_all, y_all, rng, args):
    """The loss of one batch: a rotation or flip, noise of a random level per sample, the inner pixels."""
    index = torch.from_numpy(rng.integers(0, len(x_all), args.batch))
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))
    x, y = x_all[index].rot90(turns, (2, 3)), y_all[index].rot90(turns, (2, 3))
    if flip:
        x, y = x.transpose(2, 3), y.transpose(2, 3)
    nodes = np.log(np.array(NOISE_NODES))
    sigma = torch.from_numpy(np.exp(rng.uniform(nodes[0], nodes[-1], args.batch)).astype(np.float32)) * net.noise_unit
    x = x + sigma[:, None, None, None] * torch.from_numpy(rng.standard_normal(tuple(x.shape)).astype(np.float32))
    prediction = net.core(x.contiguous(), sigma)
    m, cut = net.margin, net.cnn_margin
    target = y[:, :, 2 * m : y.shape[2] - 2 * m, 2 * m : y.shape[3] - 2 * m]
    if not args.relative:
        return torch.nn.functional.mse_loss(prediction, target)
    # Each sample's error relative to the linear stage's: every noise level counts alike (a gain in dB).
    with torch.no_grad():
        inner = x[:, :, cut : x.shape[2] - cut, cut : x.shape[3] - cut]
        linear = torch.nn.functional.pixel_shuffle(net.linear(inner, sigma), 2)
        reference = ((linear - target) ** 2).mean(dim=(1, 2, 3))
    return (((prediction - target) ** 2).mean(dim=(1, 2, 3)) / reference).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("intensity", "blos"))
    parser.add_argument("--pairs", required=True, nargs="+", help="noise-free pair files (torch.save of (x, y))")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--taps", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--stage-files", type=int, default=None, metavar="N",
                        help="the linear stage from the first N pair files only (default: all)")  # fmt: skip
    parser.add_argument("--relative", action="store_true", help="loss relative to the linear stage's, per sample")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out or f"runs/wiener_{args.kind}_d{args.depth}w{args.width}")
    out.mkdir(parents=True, exist_ok=True)
    loaded = [torch.load(path, weights_only=True) for path in args.pairs]
    # The linear stage's statistics come from the nominal-PSF part of each file (its first 3/4), of the
    # first --stage-files files.
    nominal = [(x[: 3 * len(x) // 4], y[: 3 * len(y) // 4]) for x, y in loaded[: args.stage_files]]
    x_all, y_all = torch.cat([x for x, _ in loaded]), torch.cat([y for _, y in loaded])
    recipe = {"pairs": [str(p) for p in args.pairs], "n_pairs": len(x_all),
              "linear_stage_pairs": [str(p) for p in args.pairs[: args.stage_files]],
              "steps": args.steps, "batch": args.batch,
              "lr": args.lr, "lr_schedule": "cosine to 1e-5", "optimiser": "Adam", "loss": "relative" if args.relative
              else "mean square error", "noise": "log-uniform over the filter bank's nodes, per sample",
              "augment": "one of the 8 rotations and flips per batch", "seed": 11, "threads": args.threads}  # fmt: skip
    (out / "recipe.json").write_text(json.dumps(recipe, indent=1))
    net = build(args.kind, nominal, args, out)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=args.lr)
    step, history = 0, []
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, history = state["step"], json.loads(state["history"])
    score = held_out_check(args.kind)
    start, last, running = time.perf_counter(), time.perf_counter(), []
    while step < args.steps:
        rng = np.random.default_rng([11, step])
        lr = float(1e-5 + 0.5 * (args.lr - 1e-5) * (1 + np.cos(np.pi * step / args.steps)))
        for group in optimiser.param_groups:
            group["lr"] = lr
        loss = batch_loss(net, x_all, y_all, rng, args)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        running.append(loss.item())
        step += 1
        if step % 250 == 0 or step == args.steps:
            net.eval()
            gains = score(net)
            net.train()
            history.append({"step": step, "loss": float(np.mean(running)),
                            "gain_vs_wiener_db": [[float(f), float(g)] for f, g in gains]})  # fmt: skip
            running = []
            torch.save({"model": net.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                        "history": json.dumps(history)}, checkpoint)  # fmt: skip
            scores = " ".join(f"{f:g}x {g:+.2f} dB" for f, g in gains)
            print(f"step {step} loss {history[-1]['loss']:.3e} lr {lr:.2e} vs Wiener {scores} "
                  f"{time.perf_counter() - last:.0f} s", flush=True)  # fmt: skip
            last = time.perf_counter()
    torch.save(net.state_dict(), out / "final.pt")
    (out / "history.json").write_text(json.dumps(history))
    print(f"done ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
