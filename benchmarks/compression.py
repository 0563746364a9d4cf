"""Size and error of RICE-compressed outputs (``enhance run --compress``) on the shipped samples and on a
synthetic 1024x1024 continuum image and magnetogram.

    .venv/bin/python benchmarks/compression.py

Each image is enhanced once by the full model with `enhance.enhance_files`, written plain (float32)
and with ``compress=True``; the table gives both file sizes, their ratio, and the largest and rms
difference between the two outputs in units of HMI's noise (1e-3 of the quiet-Sun level for the
continuum, 10 G for the magnetogram).
"""

import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from enhance.constants import HMI_NOISE
from enhance.data import sample_path
from enhance.inference.distributed import enhance_files
from enhance.observation.quiet_sun import estimate_qs_level


def synthetic(folder: Path) -> list[Path]:
    """An HMI-like 1024x1024 active-region continuum image and magnetogram (HMI noise added)."""
    import astropy.units as u

    from enhance.observation.degrade import degrade
    from enhance.scenes.synth import generate

    continuum, bz = generate((4096, 4096), 0.126 * u.arcsec, kind="active_region", seed=3)
    paths = []
    for kind, hires, unit, noise in (("intensity", continuum, "I/Ic", 1e-3), ("blos", bz, "G", 10.0)):
        observed = degrade(hires, 0.126 * u.arcsec, noise=noise, rng=np.random.default_rng(1))[0]
        header = fits.Header({"BUNIT": unit, "CDELT1": 0.504, "CDELT2": 0.504, "CUNIT1": "arcsec",
                              "CUNIT2": "arcsec", "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN"})  # fmt: skip
        path = folder / f"synthetic_{kind}.fits"
        fits.PrimaryHDU(np.asarray(observed, np.float32), header=header).writeto(path)
        paths.append(path)
    return paths


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = [sample_path("intensity"), sample_path("blos"), *synthetic(tmp)]
        plain = enhance_files(inputs, tmp / "plain", as_frame=False)
        packed = enhance_files(inputs, tmp / "packed", compress=True, as_frame=False)
        print(f"{'image':<28} {'output':>11} {'float32 MB':>10} {'RICE MB':>8} {'ratio':>6} "
              f"{'max err/noise':>13} {'rms err/noise':>13}")  # fmt: skip
        for a, b in zip(plain, packed, strict=True):
            assert a["status"] == b["status"] == "done", (a["reason"], b["reason"])
            exact, lossy = fits.getdata(a["output"]), fits.getdata(b["output"], 1)
            level = estimate_qs_level(fits.getdata(a["input"])) if a["kind"] == "intensity" else 1.0
            noise = HMI_NOISE[a["kind"]] * level
            error = (lossy - exact)[np.isfinite(exact)] / noise
            size_a, size_b = Path(a["output"]).stat().st_size, Path(b["output"]).stat().st_size
            print(f"{Path(a['input']).name:<28} {exact.shape[0]:>5}x{exact.shape[1]:<5} {size_a / 1e6:>10.2f} "
                  f"{size_b / 1e6:>8.2f} {size_a / size_b:>6.2f} {np.abs(error).max():>13.3f} "
                  f"{np.sqrt(np.mean(error**2)):>13.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
