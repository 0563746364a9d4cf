"""One full-disk HMI-sized image (4096x4096) through `enhance.enhance`'s tiled path: time and peak memory.

Runs in a process of its own so that its peak resident memory is its own. The image is a synthetic
limb-darkened disk with NaN off the limb, as in HMI full-disk data (about 30 % of the pixels), so the
NaN filling is timed too. Prints one JSON object; the tile progress bar goes to stderr.

    .venv/bin/python benchmarks/full_disk.py --size 4096 --model paper

``--model`` is any shipped variant: 'paper' (the paper's network), 'paper-light', or the default 'full' and
'light' (Wiener-Enhance, told the noise level measured on the image); `make bench` times 'paper' and 'full', each
in a process of its own. The shipped models run as ``enhance.enhance(image, model=...)``; on onnxruntime 'full'
and 'light' mirror the image once and run its tiles' passes on every core
(`enhance.runtime.wiener_onnx.WienerOnnxNetwork.run_image`).

Peak memory is this process's high-water mark (``VmHWM``); `run.py` also reads the child's ``ru_maxrss`` from
``os.wait4`` (onnxruntime's allocations are outside Python's, so ``tracemalloc`` would not see them).
"""

import argparse
import json
import resource
import time

import numpy as np
import scipy.ndimage
import torch

import enhance
from enhance.constants import HMI_NOISE
from enhance.exceptions import ModelNotTrainedError
from enhance.inference.pipeline import AUTO_TILE
from enhance.models.pretrained import FACTORIES
from enhance.models.registry import MODELS


def granulation(size: int, rng) -> np.ndarray:
    """A ``size`` x ``size`` quiet-Sun continuum, I/Ic about 1: smooth granulation of 5 % contrast (white noise
    under a Gaussian of 1.5 pixels) plus HMI's noise (1e-3 I/Ic), which the noise measurement reads as such."""
    granules = scipy.ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.5, mode="wrap")
    return 1 + 0.05 * granules / granules.std() + HMI_NOISE["intensity"] * rng.standard_normal((size, size))


def synthetic_disk(size: int, *, seed: int = 0) -> np.ndarray:
    """A limb-darkened disk of radius 0.47 size with `granulation`, NaN outside, in I/Ic."""
    rng = np.random.default_rng(seed)
    y, x = np.ogrid[:size, :size]
    r = np.hypot(y - (size - 1) / 2, x - (size - 1) / 2) / (0.47 * size)
    mu = np.sqrt(np.clip(1 - r**2, 0, None))
    image = (1 - 0.6 * (1 - mu)) * granulation(size, rng)
    image[r >= 1] = np.nan
    return image.astype(np.float32)


def peak_rss() -> int:
    """Peak resident memory of this process, in bytes.

    Read from ``VmHWM`` in /proc/self/status: ``ru_maxrss`` would carry over the parent's peak into a
    process started with fork + exec (as `subprocess` does) and report the benchmark's, not this run's.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: KiB on most systems


def network(model: str):
    """The shipped variant ``model`` when its weights exist, else an initialised one of the same architecture."""
    factory = FACTORIES[model]
    try:
        return factory("intensity", weights="default"), "shipped"
    except ModelNotTrainedError:
        torch.manual_seed(0)
        return factory("intensity"), "initialised"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--model", choices=tuple(MODELS), default="paper")
    parser.add_argument("--tile", type=int, default=None, help=f"tile size (default: enhance's, {AUTO_TILE})")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    image = synthetic_disk(args.size)
    net, weights = network(args.model)
    source = {"model": args.model} if weights == "shipped" else {"network": net}  # as users call it
    start = time.perf_counter()
    out = enhance.enhance(image, "intensity", **source, qs_level=1.0, device="cpu", tile=args.tile,
                          progress=not args.no_progress, backend=args.backend)  # fmt: skip
    seconds = time.perf_counter() - start
    peak = peak_rss()
    result = {"size": args.size, "model": args.model, "backend": args.backend, "weights": weights,
              "tile": args.tile or AUTO_TILE,
              "seconds": seconds, "peak_rss_bytes": peak, "output_shape": list(out.shape),
              "nan_fraction": float(np.isnan(image).mean())}  # fmt: skip
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
