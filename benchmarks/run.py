"""`make bench`: how fast Enhance runs on this machine, measured against the machine itself.

Everything in the table is measured in one run, so that the ratios hold on a shared or busy machine:

* the reference limit: single-precision matrix-multiply throughput (4096x4096, PyTorch/MKL and numpy's
  OpenBLAS, the latter also with its native kernel), the best of all rounds;
* the default models, 'full' and 'light' (Wiener-Enhance: `enhance.models.hybrid.WienerEnhanceNet`,
  depth 3, width 32, a 21x21 polyphase linear stage and a residual CNN; 'full' runs the CNN 8 times, on
  the rotations and flips of the input, 'light' once), through ``enhance.enhance(image, "intensity",
  model=...)`` (PyTorch) on 400x400 and 1024x1024 images: seconds and achieved GFLOP/s on the
  count of `flops.wiener_flops` (155 GFLOP for 400x400 through 'full', 20 through 'light');
* the paper's networks, 'paper' (EnhanceNet depth 5, width 64) and 'paper-light' (depth 1, width 32),
  the same way: seconds and achieved GFLOP/s on the paper's nominal count (`flops.enhance_flops`,
  177 GFLOP for 400x400 through 'paper');
* what each optimisation buys (the network alone, 400x400, the paper's network): the plain PyTorch port,
  BatchNorm folded, channels-last, `enhance.runtime.graph.InferenceNet`, the same graph on onnxruntime, with
  padding and sums kept in onnxruntime's blocked layout (`enhance.runtime.ort_blocked`), and one band of rows
  per core, each on a single-threaded onnxruntime call (what `enhance` runs for an EnhanceNet);
* reduced precision (bfloat16, float16 autocast) and the onnxruntime backend on the paper's network, with
  their error against the float32 PyTorch path;
* Richardson-Lucy, 20 iterations on the x2 grid, on the same image;
* the peer: the paper's networks in Keras/TensorFlow with random weights, from their own virtual
  environment (``benchmarks/.venv-keras``, built by ``make bench``);
* a 4096x4096 full disk through the tiled path with the paper's network: time and peak memory (a
  separate process, `full_disk.py`).

Every target is printed last as one verdict line, ``PASS``, ``FAIL`` or ``NOT MEASURED``, what was measured, the
value and the target:

* the default models, 'full' and 'light', at 0.85 or more of the best matmul throughput (numpy's OpenBLAS run
  with its native kernel, ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``, or PyTorch's MKL, whichever is
  faster in this run) on 400x400 and 1024x1024, with the noise level given (the network's own work) and as
  ``enhance.enhance`` is called by default (the noise level measured on the image first);
* the paper's network at 0.85 or more of it, 'paper-light' 6 times faster than 'paper', 'paper' 1.6 times
  faster than its Keras peer, the default 'full' model at most twice the time of 'paper' on the same 400x400
  image, and 'full' with its per-pixel uncertainty (``uncertainty=True``) at most 3 times the time of 'full';
* a 4096x4096 full disk (`full_disk.py`, each model in a process of its own): 'full' in no more than the
  paper's network's time in the same run and in under 3 GB of peak resident memory, 'paper' under 6 GB;
* on a CUDA GPU, when PyTorch sees one: the 4096x4096 full disk with 'full' in under 1 s, and the model table
  on that GPU (`gpu_cases`); without one the line says so;
* ``enhance run --model light`` on the 200x200 sample from the shell in at most 1.5 x (a bare numpy +
  onnxruntime + astropy process that reads and writes the same file + the in-process time of the
  enhancement) (`first_pixel.py`).

The shipped weights are used when they exist, initialised networks otherwise (the same arithmetic).
Timings interleave the cases over several rounds and keep each case's best, because other processes
may share the CPU; the load average is printed before and after.

    .venv/bin/python benchmarks/run.py [--rounds 3] [--quick] [--no-keras] [--no-full-disk] [--no-gpu] [--json out.json]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from first_pixel import TARGET as FIRST_PIXEL_TARGET  # noqa: E402
from first_pixel import first_pixel  # noqa: E402
from flops import enhance_flops, wiener_flops  # noqa: E402
from full_disk import granulation, network, synthetic_disk  # noqa: E402
from gpu import FULL_DISK_TARGET_S, gpu_cases  # noqa: E402
from report import command_line, machine, machine_line, verdict_line  # noqa: E402

import enhance  # noqa: E402
from enhance.analysis.baselines import rl_super_resolve  # noqa: E402
from enhance.constants import HMI_NOISE  # noqa: E402
from enhance.inference.pipeline import auto_backend  # noqa: E402
from enhance.inference.tiling import run_tiled  # noqa: E402
from enhance.models.network import fold_batchnorm, receptive_margin  # noqa: E402
from enhance.models.registry import MODELS, registry_entry  # noqa: E402
from enhance.runtime.graph import InferenceNet  # noqa: E402
from enhance.scenes.synth import generate  # noqa: E402

KERAS_PYTHON = HERE / ".venv-keras" / "bin" / "python"
MATMUL_SIZE = 4096
TARGETS = {"paper_vs_matmul": 0.85, "paper_light_vs_paper": 6.0, "paper_vs_keras": 1.6, "full_disk_gb": 6.0,
           "full_vs_paper": 2.0, "uncertainty_vs_full": 3.0, "default_vs_matmul": 0.85, "full_disk_full_gb": 3.0,
           "full_disk_full_vs_paper": 1.0}  # fmt: skip
#: The matmul rows that make the reference (numpy's OpenBLAS with its native kernel, PyTorch's MKL): the better of them.
REFERENCE = ("torch (MKL)", "numpy (OpenBLAS, native kernel)")
PAPER = MODELS["paper"].architecture


def model_flops(model: str, size: int) -> int:
    """Nominal FLOPs of the shipped variant ``model`` on a ``size`` x ``size`` image (`flops`)."""
    spec = MODELS[model]
    if spec.family == "paper":
        return enhance_flops(size, size, **spec.architecture)
    exact = registry_entry("intensity", model).model_card()["architecture"].get("exact_constants", False)
    return wiener_flops(size, size, **spec.architecture, passes=8 if spec.symmetric else 1, exact_constants=exact)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def matmul_torch(n: int = MATMUL_SIZE) -> float:
    """GFLOP/s of a float32 n x n matrix product in PyTorch (MKL), the best of three."""
    a, b = torch.rand(2, n, n).unbind(0)
    a @ b
    return 2 * n**3 / min(_timed(lambda: a @ b) for _ in range(3)) / 1e9


def matmul_numpy(*, native: bool, n: int = MATMUL_SIZE) -> float:
    """GFLOP/s of numpy's float32 matrix product in a fresh process; ``native`` unsets OPENBLAS_CORETYPE.

    Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to keep old OpenBLAS builds safe; they
    slow a current one down, so the native figure is the machine's real throughput.
    """
    env = dict(os.environ)
    if native:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    script = (
        "import time, numpy as np\n"
        f"a, b = np.random.default_rng(0).random((2, {n}, {n}), dtype=np.float32)\n"
        "a @ b\n"
        "times = []\n"
        "for _ in range(3):\n"
        "    t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)\n"
        f"print(2 * {n}**3 / min(times) / 1e9)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout)


def quiet_sun(size: int, *, seed: int = 0) -> np.ndarray:
    """A quiet-Sun-like continuum image (I/Ic about 1, `full_disk.granulation`) with one dark spot."""
    image = granulation(size, np.random.default_rng(seed))
    y, x = np.ogrid[:size, :size]
    image[np.hypot(y - size / 3, x - size / 3) < size / 10] *= 0.3
    return image.astype(np.float32)


class Case:
    """One timed thing: a callable run once per round (short ones repeated); the best time counts."""

    def __init__(self, name, fn, *, image=None, flops=None, note="", once=False):
        self.name, self.fn, self.image, self.flops, self.note, self.once = name, fn, image, flops, note, once
        self.times = []

    def run(self):
        if self.once and self.times:
            return
        seconds = _timed(self.fn)
        # A call right after another case (or the matmuls) runs on cold caches and a CPU clocked down by
        # the heavy kernels before it: repeat it within the round, as timeit does, at least once and for
        # about half a second, and keep the best.
        for _ in range(max(1, min(20, int(0.5 / max(seconds, 1e-3))))):
            seconds = min(seconds, _timed(self.fn))
        self.times.append(seconds)

    @property
    def seconds(self):
        return min(self.times)


def _module_only(module, image, *, channels_last=False):
    """The network alone on a normalised image, as a plain PyTorch user would run it."""
    x = torch.from_numpy(image)[None, None]
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def run():
        with torch.no_grad():
            module(x)

    return run


def keras_peer(size: int, repeats: int):
    """The Keras timings (dict per model), or the reason why there are none."""
    if not KERAS_PYTHON.exists():
        return None, f"not installed: {KERAS_PYTHON.parent.parent} is missing (make bench builds it)"
    command = [str(KERAS_PYTHON), str(HERE / "keras_peer.py"), "--size", str(size), "--repeats", str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"failed: {last}"
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {r["model"]: r for r in results}, ""


def full_disk(size: int, model: str):
    """`full_disk.py` in a process of its own: its JSON result, with the child's ``ru_maxrss`` (bytes) added."""
    command = [sys.executable, str(HERE / "full_disk.py"), "--size", str(size), "--model", model]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:  # the progress bar shows
        output = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        return None
    result = json.loads(output.strip().splitlines()[-1])
    result["ru_maxrss_bytes"] = usage.ru_maxrss * 1024  # kB on Linux
    return result


def full_disks(size: int, rounds: int) -> dict:
    """'paper' and 'full' on the full disk, interleaved ``rounds`` times: each model's fastest run (None if one
    failed), with ``runs`` and the seconds of every run."""
    runs = {"paper": [], "full": []}
    for _ in range(rounds):
        for model in runs:
            runs[model].append(full_disk(size, model))
    best = {}
    for model, results in runs.items():
        if any(result is None for result in results):
            best[model] = None
            continue
        best[model] = {**min(results, key=lambda r: r["seconds"]), "runs": len(results),
                       "all_seconds": [r["seconds"] for r in results],
                       "peak_rss_bytes": max(r["peak_rss_bytes"] for r in results)}  # fmt: skip
    return best


def _through_enhance(image, model, nets, *, noise=False):
    """``enhance.enhance(image, "intensity", model=...)`` as users call it; the initialised network if not shipped.

    With ``noise``, the noise level and the quiet-Sun level are given, so that only the network and the
    pipeline around it are timed (`enhance.observation.noise.measure_noise` is not)."""
    if noise:
        given = {"noise": HMI_NOISE["intensity"], "qs_level": 1.0}
        return lambda: enhance.enhance(image, "intensity", model=model, device="cpu", **given)
    if nets[model][1] == "shipped":
        return lambda: enhance.enhance(image, "intensity", model=model, device="cpu")
    return lambda: enhance.enhance(image, "intensity", network=nets[model][0], device="cpu")


def model_cases(add, nets, small, large, *, quick):
    """The four shipped models through `enhance.enhance` on 400x400 (and 1024x1024 unless ``quick``)."""
    notes = {
        "full": "Wiener-Enhance, 8 CNN passes (the rotations and flips)",
        "light": "Wiener-Enhance, one CNN pass",
        "paper": "EnhanceNet depth 5, width 64",
        "paper-light": "EnhanceNet depth 1, width 32",
    }
    for size, image in ((400, small),) if quick else ((400, small), (1024, large)):
        for model, what in notes.items():
            call = f"model={model!r}" if nets[model][1] == "shipped" else "network=<initialised>"
            auto = auto_backend(nets[model][0], precision="float32", device="cpu")
            note = f"{what}: enhance.enhance(..., {call}), backend 'auto' = {auto}" if size == 400 else ""
            add(f"{model} {size}", _through_enhance(image, model, nets), image=size, flops=model_flops(model, size),
                note=note)  # fmt: skip
            if MODELS[model].family == "wiener-enhance" and nets[model][1] == "shipped":
                note = "enhance.enhance(..., noise=HMI's, qs_level=1): the network's own work" if size == 400 else ""
                add(f"{model} {size} noise given", _through_enhance(image, model, nets, noise=True), image=size,
                    flops=model_flops(model, size), note=note)  # fmt: skip
    if nets["full"][1] == "shipped":
        add("full + uncertainty 400", lambda: enhance.enhance(small, "intensity", model="full", device="cpu",
                                                               uncertainty=True),
            image=400, note="enhance.enhance(..., model='full', uncertainty=True): result and sigma")  # fmt: skip


def paper_paths(add, nets, small, reference) -> dict:
    """The paper's networks on the other backends and precisions; the errors against the default path."""
    paper_net, flops = nets["paper"][0], model_flops("paper", 400)
    torch_out = enhance.enhance(small, network=paper_net, device="cpu", backend="torch")
    errors = {"torch vs auto": float(np.abs(torch_out - reference).max())}
    for name in ("paper", "paper-light"):
        net = nets[name][0]
        add(f"{name} 400 torch", lambda net=net: enhance.enhance(small, network=net, device="cpu", backend="torch"),
            image=400, flops=model_flops(name, 400), note="backend 'torch' (InferenceNet)")  # fmt: skip
    for precision in ("bfloat16", "float16"):
        out = enhance.enhance(small, network=paper_net, device="cpu", precision=precision)
        errors[precision] = float(np.abs(out - torch_out).max())
        run = lambda p=precision: enhance.enhance(small, network=paper_net, device="cpu", precision=p)  # noqa: E731
        slow = " (no fp16 convolutions on this CPU: timed once)" if precision == "float16" else ""
        add(f"paper 400 {precision}", run, image=400, flops=flops, once=precision == "float16",
            note=f"torch autocast; max |error| {errors[precision]:.1e} I/Ic{slow}")  # fmt: skip
    return errors


def step_cases(add, net, small, errors) -> None:
    """What each optimisation buys: the paper's network alone on the normalised 400x400 image."""
    normalised = small / enhance.inference.pipeline.estimate_qs_level(small)
    flops = model_flops("paper", 400)
    add("plain PyTorch port", _module_only(net.eval(), normalised), image=400, flops=flops,
        note="network only: eval(), NCHW")  # fmt: skip
    add("+ BatchNorm folded", _module_only(fold_batchnorm(net), normalised), image=400, flops=flops,
        note="network only")  # fmt: skip
    add("+ channels-last", _module_only(fold_batchnorm(net), normalised, channels_last=True), image=400,
        flops=flops, note="network only")  # fmt: skip
    add("+ InferenceNet", _module_only(InferenceNet(net), normalised), image=400, flops=flops,
        note="network only: framed buffers, phase up-sampling")  # fmt: skip
    try:
        from enhance.runtime.export import onnx_network

        plain, session = onnx_network(net, blocked=False), onnx_network(net)
        batch = normalised[None, None]
        add("onnxruntime session", lambda: plain(batch), image=400, flops=flops,
            note=f"network only: same graph on MLAS; max |diff| vs torch {errors['torch vs auto']:.1e}")  # fmt: skip
        add("+ blocked layout", lambda: session(batch), image=400, flops=flops,
            note=f"network only: padding and sums kept in MLAS's NCHWc layout (layout: {session.layout})")  # fmt: skip
        single, threads = onnx_network(net, threads=1), torch.get_num_threads()
        bands = lambda: run_tiled(normalised, single, tile=None, margin=receptive_margin(PAPER["depth"]),  # noqa: E731
                                  device="cpu", workers=threads)  # fmt: skip
        add("+ one band per core", bands, image=400, flops=flops,
            note=f"network only: {threads} single-threaded onnxruntime calls at once (enhance's CPU path)")  # fmt: skip
    except ImportError as err:
        print(f"onnxruntime rows skipped: {err}")


def measure(cases, rounds: int) -> dict:
    """Run every case ``rounds`` times, interleaved with the matmuls; each matmul's GFLOP/s per round."""
    matmul = {"torch (MKL)": [], "numpy (OpenBLAS, environment)": [], "numpy (OpenBLAS, native kernel)": []}
    for case in cases.values():  # warm-up: primitive caches, first-touch allocations
        if not case.once:
            case.fn()
    for round_ in range(rounds):
        print(f"round {round_ + 1}/{rounds} ...", file=sys.stderr, flush=True)
        matmul["torch (MKL)"].append(matmul_torch())
        matmul["numpy (OpenBLAS, environment)"].append(matmul_numpy(native=False))
        matmul["numpy (OpenBLAS, native kernel)"].append(matmul_numpy(native=True))
        for case in cases.values():
            case.run()
    return matmul


def main() -> int:
    parser = argparse.ArgumentParser(description="Enhance speed on this machine (see the module docstring).")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each case keeps its best")
    parser.add_argument("--quick", action="store_true", help="2 rounds, no 1024x1024, no full disk, no Keras")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras/TensorFlow peer")
    parser.add_argument("--no-full-disk", action="store_true", help="skip the 4096x4096 tiled runs")
    parser.add_argument("--no-gpu", action="store_true", help="skip the CUDA GPU cases even where there is a GPU")
    parser.add_argument("--disk-rounds", type=int, default=2, help="full-disk runs of each model, interleaved")
    parser.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    load_before = os.getloadavg()

    nets = {name: network(name) for name in ("full", "light", "paper", "paper-light")}
    weights = ", ".join(f"{name} {state}" for name, (_, state) in nets.items())
    small, large = quiet_sun(400), quiet_sun(1024, seed=1)
    reference = enhance.enhance(small, network=nets["paper"][0], device="cpu")
    cases = {}

    def add(key, fn, **kwargs):
        cases[key] = Case(key, fn, **kwargs)

    model_cases(add, nets, small, large, quick=args.quick)
    errors = paper_paths(add, nets, small, reference)
    step_cases(add, nets["paper"][0], small, errors)
    rl_note = "20 iterations on the x2 grid (enhance.analysis.baselines.rl_super_resolve)"
    add("Richardson-Lucy 400", lambda: rl_super_resolve(small, n_iter=20), image=400, note=rl_note)
    add("synthetic scene 1000", lambda: generate((1000, 1000), kind="active_region", seed=0), image=1000,
        once=True, note="enhance.scenes.synth.generate, an active region at 0.0662 arcsec/px "
        "(continuum + Bz)")  # fmt: skip

    matmul = measure(cases, rounds)
    best_matmul = {name: max(values) for name, values in matmul.items()}
    limit = max(best_matmul[name] for name in REFERENCE)
    keras, keras_note = (None, "skipped (--no-keras)") if args.no_keras or args.quick else keras_peer(400, 3)
    disks = {} if args.no_full_disk or args.quick else full_disks(4096, args.disk_rounds)
    gpu = (
        {"device": None, "reason": "skipped (--no-gpu)"}
        if args.no_gpu
        else gpu_cases(
            {400: small, 1024: large} if not args.quick else {400: small}, synthetic_disk(4096), rounds=rounds
        )
    )
    first = first_pixel(rounds)  # `enhance run --model light` from the shell, against a bare process
    load_after = os.getloadavg()

    info = machine()
    print()
    print(f"command: {command_line()} | {rounds} rounds, best of each | torch {torch.get_num_threads()} threads")
    print(machine_line(info))
    print(f"weights: {weights}")
    print(f"load average (1, 5, 15 min): before {_load(load_before)}, after {_load(load_after)}")
    print_table(table_rows(matmul, limit, cases, keras, keras_note, disks, gpu))
    print()
    for line in (
        _verdicts(cases, best_matmul, keras, disks, keras_note) + _gpu_verdicts(gpu) + [_first_pixel_verdict(first)]
    ):
        print(line)
    if args.json:
        record = {"machine": info, "command": command_line(), "matmul_gflops": matmul, "limit_gflops": limit,
                  "load_before": load_before, "load_after": load_after, "weights": weights, "errors": errors,
                  "keras": keras, "full_disk": disks, "gpu": gpu, "first_pixel": first,
                  "cases": {c.name: {"times": c.times, "flops": c.flops} for c in cases.values()}}  # fmt: skip
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


def table_rows(matmul, limit, cases, keras, keras_note, disks, gpu) -> list[tuple]:
    """One tuple per row: case, image, seconds, GFLOP, GFLOP/s, fraction of the matmul limit, notes."""
    rows, best_matmul = [], {name: max(values) for name, values in matmul.items()}
    for name, value in best_matmul.items():
        note = "the reference when the best" if name in REFERENCE else "as the environment sets OpenBLAS (not used)"
        note += f"; rounds {min(matmul[name]):.1f}-{value:.1f} GFLOP/s"
        rows.append((f"matmul {name}", f"{MATMUL_SIZE}^2", "", "", f"{value:.1f}", f"{value / limit:.2f}", note))
    for case in cases.values():
        gflops = case.flops / 1e9 if case.flops else None
        rate = f"{gflops / case.seconds:.1f}" if gflops else ""
        ratio = f"{gflops / case.seconds / limit:.2f}" if gflops else ""
        size = f"{case.image}^2"
        spread = f"; rounds {min(case.times):.3f}-{max(case.times):.3f} s" if len(case.times) > 1 else ""
        rows.append((case.name, size, f"{case.seconds:.3f}", f"{gflops:.1f}" if gflops else "", rate, ratio,
                     case.note + spread))  # fmt: skip
    if keras:
        for model, result in keras.items():
            gflops = model_flops(model, 400) / 1e9
            rate = gflops / result["seconds"]
            by_way = result["seconds_by_way"]
            others = ", ".join(f"{way} {t:.2f} s" for way, t in by_way.items() if way != result["way"])
            note = f"TensorFlow {result['tensorflow']}, {result['way']} (fastest; {others}), random weights"
            rows.append((f"Keras {model} (peer)", "400^2", f"{result['seconds']:.3f}", f"{gflops:.1f}", f"{rate:.1f}",
                         f"{rate / limit:.2f}", note))  # fmt: skip
    else:
        rows.append(("Keras (peer)", "400^2", "", "", "", "", keras_note))
    for model, disk in disks.items():
        rows.append(_disk_row(model, disk, limit))
    for name, seconds in gpu.get("cases", {}).items():
        model, size = name.rsplit(" ", 1)
        gflops = model_flops(model, int(size)) / 1e9
        rows.append((f"GPU {name}", f"{size}^2", f"{seconds:.4f}", f"{gflops:.1f}", f"{gflops / seconds:.0f}", "",
                     f"{gpu['device']}, enhance.enhance(..., device='cuda')"))  # fmt: skip
    if gpu.get("full_disk") is not None:
        gflops = model_flops("full", 4096) / 1e9
        note = f"{gpu['device']}, tiles: {gpu['full_disk_tile']}"
        rows.append(("GPU full full disk", "4096^2", f"{gpu['full_disk']:.3f}", f"{gflops:.0f}",
                     f"{gflops / gpu['full_disk']:.0f}", "", note))  # fmt: skip
    return rows


def _disk_row(model, disk, limit) -> tuple:
    if disk is None:
        return (f"{model} full disk, tiled", "4096^2", "", "", "", "", "failed: see the output above")
    gflops = model_flops(model, 4096) / 1e9
    note = f"tile {disk['tile']}, peak RSS {_peak(disk) / 1e9:.2f} GB (VmHWM), best of {disk['runs']} runs"
    return (f"{model} full disk, tiled", "4096^2", f"{disk['seconds']:.1f}", f"{gflops:.0f}",
            f"{gflops / disk['seconds']:.1f}", f"{gflops / disk['seconds'] / limit:.2f}", note)  # fmt: skip


def _peak(disk) -> int:
    """The child's peak resident memory, bytes: its own high-water mark (VmHWM).

    Its ``ru_maxrss`` (from ``os.wait4``, kept in the JSON) starts from this process's resident size when it
    was started (Linux keeps the larger of the two across fork and exec), so it says nothing here."""
    return disk["peak_rss_bytes"]


def print_table(rows) -> None:
    header = ("case", "image", "seconds", "GFLOP", "GFLOP/s", "x matmul", "notes")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _load(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _verdicts(cases, best_matmul, keras, disks, keras_note="") -> list[str]:
    paper, paper_light, full = (cases[f"{name} 400"].seconds for name in ("paper", "paper-light", "full"))
    limit_name = max(REFERENCE, key=best_matmul.get)
    limit = best_matmul[limit_name]
    reference = f"of {limit:.1f} GFLOP/s ({limit_name}, the better of it and {REFERENCE[REFERENCE[0] == limit_name]})"
    lines = []
    for name in [n for n in cases if re.fullmatch(r"(full|light) \d+( noise given)?", n)]:
        model, size = name.split(" ")[:2]
        ratio = model_flops(model, int(size)) / 1e9 / cases[name].seconds / limit
        how = "noise level given" if name.endswith("given") else "noise measured, as called by default"
        what, target = f"default '{model}' {size}x{size} ({how}) vs matmul", f">= {TARGETS['default_vs_matmul']}"
        lines.append(verdict_line(ratio >= TARGETS["default_vs_matmul"], what, f"{ratio:.3f} {reference}", target))
    ratio = model_flops("paper", 400) / 1e9 / paper / limit
    lines += [
        verdict_line(ratio >= TARGETS["paper_vs_matmul"], "paper 400x400 vs matmul", f"{ratio:.3f} {reference}",
                     f">= {TARGETS['paper_vs_matmul']}"),
        verdict_line(paper / paper_light >= TARGETS["paper_light_vs_paper"], "paper-light speed-up over paper",
                     f"{paper / paper_light:.1f}x", f">= {TARGETS['paper_light_vs_paper']}"),
        verdict_line(full / paper <= TARGETS["full_vs_paper"], "default 'full' 400x400 time / paper's",
                     f"{full / paper:.2f}", f"<= {TARGETS['full_vs_paper']:g}"),
    ]  # fmt: skip
    if "full + uncertainty 400" in cases:
        ratio, target = cases["full + uncertainty 400"].seconds / full, TARGETS["uncertainty_vs_full"]
        lines.append(verdict_line(ratio <= target, "'full' + uncertainty 400x400 time / 'full''s", f"{ratio:.2f}",
                                  f"<= {target:g}"))  # fmt: skip
    if keras and "paper" in keras:
        speedup = keras["paper"]["seconds"] / paper
        lines.append(verdict_line(speedup >= TARGETS["paper_vs_keras"], "paper speed-up over Keras", f"{speedup:.2f}x",
                                  f">= {TARGETS['paper_vs_keras']}"))  # fmt: skip
    else:
        target = f">= {TARGETS['paper_vs_keras']}"
        lines.append(verdict_line(None, "paper speed-up over Keras", f"no Keras peer ({keras_note})", target))
    return lines + _disk_verdicts(disks)


def _disk_verdicts(disks) -> list[str]:
    """The full disk: 'full' in no more than the paper's time and under 3 GB, 'paper' under 6 GB."""
    paper, full = disks.get("paper"), disks.get("full")
    target = f"<= {TARGETS['full_disk_full_vs_paper']:g} x paper's, same run"
    if not (paper and full):
        why = "skipped (--quick or --no-full-disk)" if not disks else "a run failed: see the output above"
        return [
            verdict_line(None, "4096x4096 full disk, 'full' time", why, target),
            verdict_line(None, "4096x4096 full disk, 'full' peak RSS", why, f"< {TARGETS['full_disk_full_gb']} GB"),
        ]
    ratio = full["seconds"] / paper["seconds"]
    full_gb, paper_gb = _peak(full) / 1e9, _peak(paper) / 1e9
    return [
        verdict_line(ratio <= TARGETS["full_disk_full_vs_paper"], "4096x4096 full disk, 'full' time",
                     f"{full['seconds']:.1f} s = {ratio:.2f} x paper's {paper['seconds']:.1f} s", target),
        verdict_line(full_gb < TARGETS["full_disk_full_gb"], "4096x4096 full disk, 'full' peak RSS",
                     f"{full_gb:.2f} GB", f"< {TARGETS['full_disk_full_gb']} GB"),
        verdict_line(paper_gb < TARGETS["full_disk_gb"], "4096x4096 full disk, 'paper' peak RSS",
                     f"{paper_gb:.2f} GB", f"< {TARGETS['full_disk_gb']} GB"),
    ]  # fmt: skip


def _gpu_verdicts(gpu) -> list[str]:
    what, target = "GPU 4096x4096 full disk with 'full'", f"< {FULL_DISK_TARGET_S:g} s"
    if gpu.get("full_disk") is None:
        return [verdict_line(None, what, gpu.get("reason", "not run"), target)]
    seconds = gpu["full_disk"]
    return [verdict_line(seconds < FULL_DISK_TARGET_S, what, f"{seconds:.3f} s on {gpu['device']}", target)]


def _first_pixel_verdict(result) -> str:
    budget = result["bare"] + result["in_process"]
    ratio = result["command"] / budget
    measured = (f"{result['command']:.2f} s = {ratio:.2f} x (bare numpy+onnxruntime+astropy FITS read/write "
                f"{result['bare']:.2f} s + in-process {result['in_process']:.2f} s)")  # fmt: skip
    return verdict_line(ratio <= FIRST_PIXEL_TARGET, "first pixel: enhance run --model light on the 200x200 sample",
                        measured, f"<= {FIRST_PIXEL_TARGET} x")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
