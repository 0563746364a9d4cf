"""The default models in two source trees, against the same matmul, interleaved: before and after a change.

Each round runs, for each tree in turn, a fresh process with that tree's ``src`` first on ``PYTHONPATH``: it
measures the matmul reference (numpy's OpenBLAS with its native kernel and PyTorch's MKL, the better of the two)
and times 'full' and 'light' through ``enhance.enhance`` on the images of `run.py` (the noise level given, and
measured as by default). Each tree's figures are the best over the rounds; the ratios to the matmul are taken
within each process, so that a busy machine moves both trees alike.

    .venv/bin/python benchmarks/compare.py /path/to/before/src src [--rounds 3] [--sizes 400 1024]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

_PROBE = """
import json, sys, time
sys.path.insert(0, {here!r})
from run import matmul_numpy, matmul_torch, model_flops, quiet_sun
import enhance
sizes = {sizes!r}
images = {{size: quiet_sun(size, seed=0 if size == 400 else 1) for size in sizes}}
limit = max(matmul_numpy(native=True), matmul_torch())
found = {{"matmul": limit}}
for size, image in images.items():
    for model in ("full", "light"):
        for how, options in (("given", {{"noise": 1e-3, "qs_level": 1.0}}), ("measured", {{}})):
            run = lambda: enhance.enhance(image, "intensity", model=model, device="cpu", **options)
            run()
            best = min((lambda t: (run(), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(2))
            found[f"{{model}} {{size}} {{how}}"] = [best, model_flops(model, size) / 1e9 / best / limit]
print(json.dumps(found))
"""


def measure(src: str, sizes) -> dict:
    """One process on the tree ``src``: matmul GFLOP/s, then ``[seconds, fraction of matmul]`` per case."""
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    code = _PROBE.format(here=str(HERE), sizes=list(sizes))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the src folder of the tree before")
    parser.add_argument("after", help="the src folder of the tree after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[400, 1024])
    args = parser.parse_args()
    rounds = {args.before: [], args.after: []}
    for index in range(args.rounds):
        for src in rounds:
            rounds[src].append(measure(src, args.sizes))
            print(f"round {index + 1}, {src}: {json.dumps(rounds[src][-1])}", flush=True)
    cases = [key for key in rounds[args.after][0] if key != "matmul"]
    print(f"\n{'case':26s} {'before: best s, x matmul (range)':38s} {'after: best s, x matmul (range)':38s}")
    for case in cases:
        cells = []
        for src in (args.before, args.after):
            seconds = [r[case][0] for r in rounds[src]]
            ratios = [r[case][1] for r in rounds[src]]
            cells.append(f"{min(seconds):7.3f} s {max(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
        print(f"{case:26s} {cells[0]:38s} {cells[1]:38s}")
    for src in rounds:
        values = [r["matmul"] for r in rounds[src]]
        print(f"matmul GFLOP/s in the {src} processes: {min(values):.1f}-{max(values):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
