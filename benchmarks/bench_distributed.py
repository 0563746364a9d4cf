"""Throughput of `enhance.enhance_files` on this machine: images per hour with 1 and 2 Dask workers.

    .venv/bin/python benchmarks/bench_distributed.py                  # 'full', 1024x1024, 4 images, 1 and 2 workers
    .venv/bin/python benchmarks/bench_distributed.py --sizes 1024 4096 --images 2 --device cuda --workers 1
    .venv/bin/python benchmarks/bench_distributed.py --sizes 4096 --images 2 --disk  # full disks, NaN off the limb

Each configuration starts the LocalCluster that ``enhance run --workers N`` starts (N processes,
``cores // N`` threads each, one thread per task: Dask sets OMP_NUM_THREADS=1, which onnxruntime's runner
of the default models follows too), loads the network on every worker first (``client.run``), then times
`enhance_files` over the images (FITS read, the noise level, inference, atomic FITS write). The network is
the shipped default 'full' (``--model light``: 'light'), or the paper's (``--model paper``, depth 5, width 64;
``paper-light``: depth 1, width 32), initialised and saved to a temporary weights file: trained weights
cost the same. Sizes that are not
measured are extrapolated from the largest measured one by pixel count, and the output says so. Last,
the number of such workers that keep up with HMI (a 4096x4096 continuum image and a magnetogram every
45 s: 3,840 images a day).
"""

import argparse
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from astropy.io import fits
from dask.system import CPU_COUNT
from distributed import Client
from full_disk import granulation, synthetic_disk

import enhance.inference.distributed
from enhance.inference.distributed import cached_network, enhance_files, local_cluster, summarize
from enhance.inference.pipeline import RunOptions
from enhance.models.pretrained import FACTORIES
from enhance.models.weights import save_weights

HMI_IMAGES_PER_DAY = 2 * 86400 / 45  # continuum + magnetogram every 45 s
HMI_SIZE = 4096


def _write_images(folder: Path, size: int, count: int, *, disk: bool = False) -> None:
    """``count`` square images of noisy granulation-like values, or with ``disk`` full disks with NaN beyond the
    limb (`full_disk.synthetic_disk`, as HMI's full-disk data: the off-limb pixels are not run)."""
    rng = np.random.default_rng(size)
    folder.mkdir(parents=True)
    for i in range(count):
        image = synthetic_disk(size, seed=i) if disk else granulation(size, rng).astype(np.float32)
        fits.writeto(folder / f"bench_{size}_{i}.fits", image, fits.Header({"BUNIT": "I/Ic"}))


def _preload(weights, **options) -> None:
    """Load the network into the worker's cache (`cached_network`); nothing comes back (a session cannot travel)."""
    cached_network(weights, **options)


def _measure(inputs: Path, out: Path, weights, *, model: str, n_workers: int, device: str, tile: int) -> dict:
    with local_cluster(n_workers) as cluster, Client(cluster) as client:
        if weights is None:  # the shipped model, as enhance_files will load it (the same cache key)
            options = RunOptions(device=device, tile=tile)
            client.run(_preload, None, kind="intensity", model=model, options=options)
        else:
            client.run(_preload, str(weights.resolve()), kind="intensity")  # load once per worker, untimed
        cpu_start = sum(client.run(time.process_time).values())
        start = time.perf_counter()
        records = enhance_files(inputs, out, kind="intensity", weights=weights, model=model, client=client,
                                device=device, tile=tile, overwrite=True, as_frame=False)  # fmt: skip
        wall = time.perf_counter() - start
        cpu = sum(client.run(time.process_time).values()) - cpu_start
        threads = next(iter(client.scheduler_info()["workers"].values()))["nthreads"]
    summary = summarize(records, wall_seconds=wall)
    summary["cpu_seconds_per_image"] = cpu / max(summary["done"], 1)
    if summary["failed"]:
        reasons = [r["reason"] for r in records if r["status"] == "failed"]
        msg = f"benchmark images failed: {reasons}"
        raise RuntimeError(msg)
    return {"threads": threads, "wall": wall, **summary}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024], help="image sizes to measure (default 1024)")
    parser.add_argument("--images", type=int, default=4, help="images per configuration (default 4)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--model", choices=("full", "light", "paper", "paper-light"), default="full",
                        help="a default model, the paper's network or paper-light (default full)")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, ...")
    parser.add_argument("--tile", type=int, default=512, help="tile size, as enhance uses above 1024^2 (default 512)")
    parser.add_argument("--disk", action="store_true", help="full disks with NaN beyond the limb instead of squares")
    parser.add_argument("--glibc-default-malloc", action="store_true",
                        help="workers without the malloc tuning of local_cluster (to compare)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.glibc_default_malloc:
        enhance.inference.distributed._WORKER_MALLOC = {}  # an A/B switch for this benchmark only

    device = "GPU " + torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{CPU_COUNT} CPU cores"
    print(f"# enhance_files throughput: {args.model} network, {device}, {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()[0]:.2f} at start")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        shipped = args.model in ("full", "light")
        weights = None if shipped else save_weights(FACTORIES[args.model]("intensity"), Path(tmp) / "w.safetensors",
                                                    kind="intensity")  # fmt: skip
        for size in args.sizes:
            inputs = Path(tmp) / f"in_{size}"
            _write_images(inputs, size, args.images, disk=args.disk)
            for n_workers in args.workers:
                result = _measure(inputs, Path(tmp) / f"out_{size}_{n_workers}", weights, model=args.model,
                                  n_workers=n_workers, device=args.device, tile=args.tile)  # fmt: skip
                rows.append({"size": size, "workers": n_workers, "measured": True, **result})
                print(f"measured {size}x{size}: {n_workers} worker(s) x {result['threads']} thread(s): "
                      f"{args.images} images in {result['wall']:.1f} s, {result['seconds_per_image']:.1f} s per task, "
                      f"{result['cpu_seconds_per_image']:.1f} worker CPU-s per image, "
                      f"{result['images_per_hour']:.0f} images/hour", flush=True)  # fmt: skip
    largest = max(args.sizes)
    if HMI_SIZE not in args.sizes:
        ratio = (HMI_SIZE / largest) ** 2
        for row in [r for r in rows if r["size"] == largest]:
            rows.append({**row, "size": HMI_SIZE, "measured": False, "images_per_hour": row["images_per_hour"] / ratio,
                         "seconds_per_image": row["seconds_per_image"] * ratio,
                         "cpu_seconds_per_image": row["cpu_seconds_per_image"] * ratio})  # fmt: skip

    shape = "full disk " if args.disk else ""
    print("\n| image | workers x threads | images/hour | s per image (one task) | worker CPU-s per image | |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for row in rows:
        note = "measured" if row["measured"] else f"extrapolated from {largest}x{largest} by pixel count"
        print(f"| {shape}{row['size']}x{row['size']} | {row['workers']} x {row['threads']} | "
              f"{row['images_per_hour']:.0f} | "
              f"{row['seconds_per_image']:.1f} | {row['cpu_seconds_per_image']:.1f} | {note} |")  # fmt: skip

    best = max((r for r in rows if r["size"] == HMI_SIZE), key=lambda r: r["images_per_hour"])
    gpu = args.device.startswith("cuda")
    unit = "GPU" if gpu else "core"
    units = best["workers"] if gpu else best["workers"] * best["threads"]  # one worker per GPU
    unit_seconds = units * 3600 / best["images_per_hour"]
    nodes = math.ceil(HMI_IMAGES_PER_DAY / (24 * best["images_per_hour"]))
    print(f"\nHMI cadence: {HMI_IMAGES_PER_DAY:.0f} images of {HMI_SIZE}x{HMI_SIZE} a day. This node "
          f"({device}, {best['workers']} worker(s) x {best['threads']} thread(s)) does {best['images_per_hour']:.1f} "
          f"images/hour, {unit_seconds:.0f} {unit}-seconds per image (wall): keeping up takes {nodes} such nodes, or "
          f"{math.ceil(HMI_IMAGES_PER_DAY * unit_seconds / 86400)} one-{unit} workers.")  # fmt: skip
    if not gpu:
        cpu = min(r["cpu_seconds_per_image"] for r in rows if r["size"] == HMI_SIZE)
        print(f"By the workers' CPU time ({cpu:.0f} CPU-seconds per image, which other load on this machine "
              f"inflates less): {math.ceil(HMI_IMAGES_PER_DAY * cpu / 86400)} one-core workers.")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
