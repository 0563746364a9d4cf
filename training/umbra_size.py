"""How much an umbra darkens under deconvolution, as a function of its size.

For synthetic sunspots of fixed umbral radius (granulation around them, no light bridge), degraded with
the package's observation model, prints the mean intensity change over the pixels of the HMI-like
image below 0.5 I/Ic (`enhance.analysis.hmi_behaviour.umbra_change`) for: the true target, the target the
observation model implies from the degraded image alone (`enhance.analysis.hmi_behaviour.implied_target`), and
the shipped full and light continuum models. Smaller umbrae receive more of the PSF's scattered light,
so the true change grows as they shrink: the paper's "3-7 % darker" describes its spots, not a constant.

    .venv/bin/python training/umbra_size.py [--radii 2 3 4 6 8 10 14] [--seeds 2] [--plot FILE.png]

The plot also marks the packaged HMI cut-out (its umbra change implied by the observation model and the
full model's, at the pixel-weighted mean equivalent radius of its umbrae) and the paper's 3-7 % band.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from enhance import enhance
from enhance.analysis.hmi_behaviour import UMBRA_THRESHOLD, implied_target, umbra_change
from enhance.data import sample_path
from enhance.io import atomic_write, read_fits
from enhance.observation.degrade import degrade
from enhance.scenes.synth import MURAM_PIXEL_SCALE, generate_scene

UMBRA_RATIO = 0.42  # umbral / penumbral radius (Solanki 2003)


def spot_scene(umbra_radius, seed):
    """A quiet-Sun field holding one sunspot of the given umbral radius (arcsec)."""
    r_penumbra = umbra_radius / UMBRA_RATIO
    fov = 1.05 * r_penumbra / 0.22  # generate_scene caps a spot's radius at 0.22 of the field
    n = int(np.ceil(fov / MURAM_PIXEL_SCALE.value / 8)) * 8
    return generate_scene((n, n), kind="quiet_sun", seed=seed, n_spots=1, spot_radius=(r_penumbra, r_penumbra),
                          umbra_ratio=(UMBRA_RATIO, UMBRA_RATIO), light_bridge_probability=0.0)  # fmt: skip


def hmi_sample_point():
    """The HMI sample's umbrae: mean equivalent radius (arcsec, weighted by pixels, as the umbra change
    is a mean over pixels) and the umbra changes implied by the observation model and given by the full model."""
    from scipy import ndimage

    image = read_fits(sample_path("intensity"))[0].astype(np.float64)
    labels, _ = ndimage.label(image < UMBRA_THRESHOLD)
    areas = np.bincount(labels.ravel())[1:]  # pixels of each umbra or pore
    radius = float(np.sum(areas * np.sqrt(areas * 0.504**2 / np.pi)) / areas.sum())
    full = enhance(image.astype(np.float32), "intensity", model="full")
    return radius, umbra_change(image, implied_target(image)), umbra_change(image, full)


def plot(rows, path):
    """Umbra change against umbral radius, one line per estimate, with the HMI sample and the paper's band."""
    from matplotlib.figure import Figure

    rows = np.asarray(rows, dtype=float)
    radii = np.unique(rows[:, 0])
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.axhspan(-7, -3, color="0.9", label="published (Díaz Baso & Asensio Ramos 2018)")
    labels = ("true target", "implied by the observation model", "full model", "light model")
    for column, (label, style) in enumerate(zip(labels, ("k-o", "C0--s", "C3-^", "C2-v"), strict=True), start=3):
        means = [100 * rows[rows[:, 0] == r, column].mean() for r in radii]
        ax.plot(radii, means, style, label=label, markersize=4)
    radius, implied, full = hmi_sample_point()
    ax.plot([radius], [100 * implied], "C0s", markersize=9, markerfacecolor="none", label="HMI sample: implied")
    ax.plot([radius], [100 * full], "C3^", markersize=9, markerfacecolor="none", label="HMI sample: full model")
    ax.set_xlabel("umbral radius (arcsec)")
    ax.set_ylabel("mean umbral intensity change (%)")
    ax.set_title("Umbral darkening by deconvolution against umbra size")
    ax.legend(fontsize=7)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110), overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radii", type=float, nargs="+", default=[2, 3, 4, 6, 8, 10, 14], help="umbral radii (arcsec)")
    parser.add_argument("--seeds", type=int, default=2, help="spots per radius")
    parser.add_argument("--plot", type=Path, help="also draw the table into this PNG file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("umbral radius (arcsec) | seed | umbra pixels | true target | implied by the observation model | "
          "full model | light model")  # fmt: skip
    rows = []
    for radius in args.radii:
        for seed in range(args.seeds):
            scene = spot_scene(radius, seed)
            observed, target = degrade(scene.continuum, scene.pixel_scale, boundary="wrap")
            changes = [umbra_change(observed, target), umbra_change(observed, implied_target(observed))]
            for model in ("full", "light"):
                changes.append(umbra_change(observed, enhance(observed, "intensity", model=model, qs_level=1.0)))
            cells = " | ".join(f"{100 * c:+.1f} %" for c in changes)
            pixels = int((observed < UMBRA_THRESHOLD).sum())
            print(f"{radius:g} | {seed} | {pixels} | {cells}", flush=True)
            rows.append([radius, seed, pixels, *changes])
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
