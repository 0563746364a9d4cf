"""How the umbra numbers of a continuum run move from one checkpoint to the next.

For each snapshot of a run (BatchNorm re-measured, as for every export) and for averages over windows
of them, prints two numbers: the mean umbral intensity change on the packaged HMI cut-out
(`enhance.analysis.hmi_behaviour`, the paper's 3-7 % check) and the umbra / target ratio on the held-out
synthetic active region (pixels of the target below 0.5 I/Ic). Their relation says where the umbra
deviation comes from: a network that reproduces the synthetic truth (ratio 1) darkens the HMI umbra by
as much as the observation model implies.

    .venv/bin/python training/umbra_scan.py runs/full_intensity [--every 2] [--from 12000] [--window A B ...]
"""

import argparse
from pathlib import Path

import torch

from enhance import enhance
from enhance.analysis.hmi_behaviour import behaviour
from enhance.analysis.validate import held_out_fields
from enhance.training.datasets import HDF5PairDataset
from enhance.training.loop import average_checkpoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with snapshots/ (enhance train --snapshot-every)")
    parser.add_argument("--data", default="runs/pairs_intensity.h5", help="the run's training pairs")
    parser.add_argument("--every", type=int, default=2, help="scan every N-th snapshot")
    parser.add_argument("--from", dest="start", type=int, default=0, help="first step to scan")
    parser.add_argument("--window", type=int, nargs=2, action="append", default=[], metavar=("FIRST", "LAST"),
                        help="also the average of the snapshots of steps FIRST to LAST")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = HDF5PairDataset(args.data)
    _, observed, target = next(f for f in held_out_fields("intensity") if "active_region" in f[0])
    umbra = target < 0.5

    def numbers(paths):
        network, _ = average_checkpoints(paths, train)
        out = enhance(observed, "intensity", network=network, qs_level=1.0)
        return behaviour(network, "intensity")["umbra_change"], float(out[umbra].mean() / target[umbra].mean())

    snapshots = sorted((args.run / "snapshots").glob("step_*.pt"))
    print("checkpoints | HMI umbra change | synthetic umbra / target")
    for first, last in args.window:
        paths = [p for p in snapshots if first <= int(p.stem[5:]) <= last]
        change, ratio = numbers(paths)
        print(f"mean of {len(paths)}, steps {first}-{last} | {change:+.3f} | {ratio:.3f}", flush=True)
    for path in snapshots[:: args.every]:
        if int(path.stem[5:]) >= args.start:
            change, ratio = numbers([path])
            print(f"step {int(path.stem[5:])} | {change:+.3f} | {ratio:.3f}", flush=True)


if __name__ == "__main__":
    main()
