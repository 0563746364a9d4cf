"""`make bench` on a CUDA GPU, when PyTorch sees one: the model table and a 4096x4096 full disk with 'full'.

Everything runs through `enhance.enhance` with ``device="cuda"`` (the PyTorch back-end), as a user calls it:
the result comes back to the host as a numpy array, so each time includes the transfers and ends with the
GPU's work done. Each case is warmed up once (cuDNN picks its algorithms) and then timed ``rounds`` times;
the best counts.

    .venv/bin/python benchmarks/gpu.py [--rounds 3]
"""

import argparse
import json
import sys
import time

import numpy as np
import torch

import enhance

__all__ = ["gpu_present", "gpu_cases"]

#: The full disk with 'full' on a GPU, seconds (issue 29).
FULL_DISK_TARGET_S = 1.0


def gpu_present() -> tuple[bool, str]:
    """Whether PyTorch sees a CUDA GPU, and its name or why not."""
    if not torch.cuda.is_available():
        return False, f"no CUDA GPU present (torch {torch.__version__}: torch.cuda.is_available() is False)"
    return True, torch.cuda.get_device_name()


def _best(fn, rounds: int) -> float:
    fn()  # warm-up: cuDNN's algorithm search, the allocator
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gpu_cases(images: dict, disk: np.ndarray, *, rounds: int = 3) -> dict:
    """Seconds of each shipped model on each image, and of the full disk with 'full', on the GPU.

    Parameters
    ----------
    images : dict of int to `~numpy.ndarray`
        Square test images by size (400, 1024).
    disk : `~numpy.ndarray`
        The 4096x4096 synthetic full disk (`full_disk.synthetic_disk`).
    rounds : int
        Timed rounds per case.

    Returns
    -------
    dict
        ``{"device": name, "cases": {"full 400": seconds, ...}, "full_disk": seconds, "full_disk_tile": tile}``.
    """
    present, name = gpu_present()
    if not present:
        return {"device": None, "reason": name}
    cases = {}
    for size, image in images.items():
        for model in ("full", "light", "paper", "paper-light"):
            cases[f"{model} {size}"] = _best(
                lambda image=image, model=model: enhance.enhance(image, "intensity", model=model, device="cuda"), rounds
            )
    full_disk = _best(lambda: enhance.enhance(disk, "intensity", model="full", device="cuda", qs_level=1.0), rounds)
    return {"device": name, "cases": cases, "full_disk": full_disk, "full_disk_tile": "enhance's default"}


def main() -> int:
    from full_disk import synthetic_disk
    from run import quiet_sun

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    images = {400: quiet_sun(400), 1024: quiet_sun(1024, seed=1)}
    print(json.dumps(gpu_cases(images, synthetic_disk(4096), rounds=args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
