"""What `make bench` prints around its table: the machine, and one verdict line per target.

A verdict line reads ``PASS``, ``FAIL`` or ``NOT MEASURED``, then what was measured, the value and the target,
so that a reader (or ``grep -E '^(PASS|FAIL|NOT MEASURED)'``) sees every target of the run at once.
"""

import os
import platform
import shlex
import subprocess
import sys

__all__ = ["machine", "verdict_line", "command_line"]

#: The CPU flags that change the kernels onnxruntime, OpenBLAS and MKL run.
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")


def machine() -> dict:
    """The CPU (``lscpu``'s model name), its vector flags, cores, Python, package and library versions.

    >>> sorted(machine())[:3]
    ['avx2', 'avx512', 'cores']
    """
    import numpy as np
    import onnxruntime
    import torch

    import enhance

    model, flags = platform.processor() or platform.machine(), set()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        lscpu = ""
    for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            model = value.strip()
        elif key.strip() == "Flags":
            flags = set(value.split())
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "vector_flags": [flag for flag in VECTOR_FLAGS if flag in flags],
        "enhance": enhance.__version__,
        "versions": f"Python {platform.python_version()}, numpy {np.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, torch {torch.__version__}",
    }


def machine_line(info: dict) -> str:
    """One line: CPU model, cores, AVX2/AVX-512 and the versions."""
    avx = f"AVX2 {'yes' if info['avx2'] else 'no'}, AVX-512 {'yes' if info['avx512'] else 'no'}"
    return (f"machine: {info['cpu']}, {info['cores']} cores, {avx} (flags: {' '.join(info['vector_flags'])}) | "
            f"solar-enhance {info['enhance']} | {info['versions']}")  # fmt: skip


def command_line() -> str:
    """The command that ran this benchmark, as typed."""
    return " ".join(shlex.quote(part) for part in [sys.executable, *sys.argv])


def verdict_line(passed, what: str, measured: str, target: str) -> str:
    """``PASS``/``FAIL``/``NOT MEASURED`` (``passed`` True, False or None), what, the measured value, the target.

    >>> verdict_line(True, "light 400x400 vs sgemm", "0.91", ">= 0.85")
    'PASS light 400x400 vs sgemm: 0.91 (target >= 0.85)'
    >>> verdict_line(None, "GPU full disk", "no CUDA GPU", "< 1 s")
    'NOT MEASURED GPU full disk: no CUDA GPU (target < 1 s)'
    """
    status = "NOT MEASURED" if passed is None else ("PASS" if passed else "FAIL")
    return f"{status} {what}: {measured} (target {target})"
