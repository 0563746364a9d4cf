"""The held-out MURaM floors under other implementations of the paper's observation model.

The shipped continuum models were trained on `enhance.observation.degrade.degrade` (pixel-integrated PSF kernels in a
4.37" circle, exact area binning). An independent check may degrade the held-out field differently;
this prints PSNR (dB, against the same 28 cm Airy target) of the full and light models, best-iteration
Richardson-Lucy (this package's PSF) and bicubic for: this package's degradation; the paper's own kernel
construction (the PSF sampled at the centres of the 133 x 133 MURaM pixels of astropy's
``AiryDisk2DKernel(1.1 / 0.0662)`` grid, a square, normalised there); and kernels reaching 16" (the far
Lorentzian tail, which the paper's footprint leaves out). HMI noise as in `enhance validate`.

    .venv/bin/python training/observation_variants.py [--simulation ../shared/data/muram_qs_0.0662arcsec.fits]
"""

import argparse

import astropy.units as u
import numpy as np

from enhance.analysis.validate import evaluate_field
from enhance.models.pretrained import load_weights
from enhance.observation.degrade import bin_area, convolve, degrade
from enhance.observation.psf import WIDE_RADIUS, hmi_psf
from enhance.scenes.sources import open_source
from enhance.training.datasets import HELD_OUT_SEED, NOISE, SCALE, degrade_frame, split_rows


def paper_kernel(pixel_scale, half=66):
    """The HMI PSF sampled at pixel centres on a (2 half + 1)^2 square grid, normalised to unit sum."""
    rows, cols = np.indices((2 * half + 1, 2 * half + 1)) - half
    kernel = hmi_psf(np.hypot(rows, cols) * pixel_scale * u.arcsec)
    return kernel / kernel.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulation", default="../shared/data/muram_qs_0.0662arcsec.fits")
    args = parser.parse_args()
    networks = {variant: load_weights("intensity", variant) for variant in ("full", "light")}
    source = open_source(args.simulation, kind="intensity", normalise="mean")
    _, held = split_rows(source.frame(0))
    scale = float(source.pixel_scale.to_value(u.arcsec))
    ours, target = degrade_frame(held, source.pixel_scale, kind="intensity", boundary="reflect")
    square = bin_area(convolve(held, paper_kernel(scale), boundary="reflect"), 0.504 / scale)
    square = square[: ours.shape[0], : ours.shape[1]]
    wide, _ = degrade(held, source.pixel_scale, radius=WIDE_RADIUS, boundary="reflect")
    rng = np.random.default_rng(HELD_OUT_SEED)
    sigma = NOISE["intensity"] * SCALE["intensity"]
    print("degradation | full | light | RL (iterations) | bicubic | full - RL | full - bicubic | light - full")
    for name, observed in [("enhance.observation.degrade (shipped models' training)", ours),
                           ("paper's kernel: 133 x 133 px square, centre-sampled", square),
                           ("kernels to 16 arcsec", wide)]:  # fmt: skip
        noisy = (observed + rng.normal(0.0, sigma, observed.shape)).astype(np.float32)
        scores = {variant: evaluate_field(net, noisy, target, kind="intensity") for variant, net in networks.items()}
        full, light = scores["full"], scores["light"]
        rl, bicubic = full["richardson_lucy"]["psnr"], full["bicubic"]["psnr"]
        f, li = full["enhance"]["psnr"], light["enhance"]["psnr"]
        print(f"{name} | {f:.2f} | {li:.2f} | {rl:.2f} ({full['rl_best_iterations']}) | {bicubic:.2f} | "
              f"{f - rl:+.2f} | {f - bicubic:+.2f} | {li - f:+.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
