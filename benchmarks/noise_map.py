"""Error of the 'full' and 'light' models told one noise level or the noise map, on held-out synthetic scenes.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/noise_map.py            # both kinds
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/noise_map.py --kind intensity

Continuum: three synthetic active regions (seeds 5101, 5104, 5108: neither training's nor the validation's),
degraded to HMI (`~enhance.training.datasets.degrade_frame`) with photon noise
``f x 1e-3 x sqrt(I)`` I/Ic; RMS error on the x2 grid in umbra, penumbra and quiet Sun (the scene's labels).
Magnetogram: a synthetic plage field seen from mu = 0.60 to 0.34 (``B mu``, its helioprojective header places
it there), with noise ``f x 10 G`` times the limb law (`~enhance.inference.noise_map.limb_noise`) or its
square (a steeper rise than the law assumes); RMS error in bands of mu. Both go through
`~enhance.inference.pipeline.enhance_array` with the noise measured, ``noise_map`` False and True.
"""

import argparse
import sys
import warnings

import astropy.units as u
import numpy as np

from enhance.exceptions import NoiseLevelWarning
from enhance.inference.noise_map import limb_noise
from enhance.inference.pipeline import RunOptions, enhance_array, resolve_network
from enhance.observation.degrade import bin_area
from enhance.scenes.synth import LABELS, MURAM_PIXEL_SCALE, generate_scene
from enhance.training.datasets import degrade_frame

FINE = float(MURAM_PIXEL_SCALE.to_value(u.arcsec))
RSUN = 960.0


def _enhance(image, kind, model, *, noise_map, header=None):
    options = RunOptions(qs_level=1.0 if kind == "intensity" else None, device="cpu", noise_map=noise_map)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoiseLevelWarning)
        network = resolve_network(kind, model=model)
        return enhance_array(image, kind=kind, network=network, options=options, header=header).astype(np.float64)


def _continuum_fields():
    fields = []
    for seed in (5101, 5104, 5108):
        scene = generate_scene((1200, 1200), kind="active_region", seed=seed)
        observed, target = degrade_frame(scene.continuum, MURAM_PIXEL_SCALE, kind="intensity")
        share = {name: bin_area((scene.labels == value).astype(float), 0.252 / FINE)[: target.shape[0],
                                                                                     : target.shape[1]]
                 for name, value in LABELS.items()}  # fmt: skip
        regions = {"umbra": share["umbra"] > 0.5, "penumbra": share["penumbra"] > 0.5,
                   "quiet Sun": share["quiet_sun"] > 0.5}  # fmt: skip
        fields.append((observed.astype(np.float64), target.astype(np.float64), regions))
    return fields


def _limb_field(seed=5102, width=2000):
    """A plage field from 0.60 to 0.34 of mu; its header, its mu on the input grid, bands of mu on the x2 grid."""
    scene = generate_scene((600, width), kind="plage", seed=seed)
    x0 = 770.0  # arcsec from disk centre of the field's left edge
    x_fine = x0 + (np.arange(width) + 0.5) * FINE
    frame = scene.bz * np.sqrt(1 - (x_fine / RSUN) ** 2)[None, :]
    observed, target = degrade_frame(frame, MURAM_PIXEL_SCALE, kind="blos", boundary="reflect")
    ny, nx = observed.shape
    header = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec", "CDELT1": 0.504,
              "CDELT2": 0.504, "CRPIX1": 1.0, "CRPIX2": (ny + 1) / 2, "CRVAL1": x0 + 0.252, "CRVAL2": 0.0,
              "RSUN_OBS": RSUN}  # fmt: skip
    mu_in = np.sqrt(1 - ((x0 + (np.arange(nx) + 0.5) * 0.504) / RSUN) ** 2)
    mu_out = np.sqrt(1 - ((x0 + (np.arange(2 * nx) + 0.5) * 0.252) / RSUN) ** 2)
    bands = {"mu 0.60-0.50": mu_out > 0.5, "0.50-0.42": (mu_out <= 0.5) & (mu_out > 0.42), "0.42-0.34": mu_out <= 0.42}
    return observed.astype(np.float64) * 1e3, target.astype(np.float64) * 1e3, header, mu_in, bands  # gauss


def _line(label, totals):
    parts = [f"{name} {np.sqrt(a / n):.5g} -> {np.sqrt(b / n):.5g} ({100 * (np.sqrt(b / a) - 1):+.1f} %)"
             for name, (a, b, n) in totals.items()]  # fmt: skip
    sys.stdout.write(f"{label}  " + "  ".join(parts) + "\n")
    sys.stdout.flush()


def continuum(models, factors):
    fields = _continuum_fields()
    for model in models:
        for factor in factors:
            totals = {}
            for index, (observed, target, regions) in enumerate(fields):
                rng = np.random.default_rng([7, index])
                noisy = observed + rng.normal(size=observed.shape) * factor * 1e-3 * np.sqrt(np.maximum(observed, 0))
                one = _enhance(noisy, "intensity", model, noise_map=False)
                mapped = _enhance(noisy, "intensity", model, noise_map=True)
                for name, mask in regions.items():
                    a, b, n = totals.get(name, (0.0, 0.0, 0))
                    totals[name] = (a + np.sum((one - target)[mask] ** 2), b + np.sum((mapped - target)[mask] ** 2),
                                    n + int(mask.sum()))  # fmt: skip
            _line(f"intensity {model} {factor:g}x HMI  RMS I/Ic one level -> map:", totals)


def magnetogram(models, factors):
    observed, target, header, mu_in, bands = _limb_field()
    for model in models:
        for power in (1, 2):
            for factor in factors:
                rng = np.random.default_rng([9, power])
                sigma = factor * 10.0 * (limb_noise(mu_in, sigma_centre=1.0) ** power)[None, :]
                noisy = observed + rng.normal(size=observed.shape) * sigma
                one = _enhance(noisy, "blos", model, noise_map=False, header=header)
                mapped = _enhance(noisy, "blos", model, noise_map=True, header=header)
                totals = {}
                for name, band in bands.items():
                    mask = np.broadcast_to(band[None, :], target.shape)
                    totals[name] = (np.sum((one - target)[mask] ** 2), np.sum((mapped - target)[mask] ** 2),
                                    int(mask.sum()))  # fmt: skip
                what = "the law" if power == 1 else "the law squared"
                _line(f"blos {model} {factor:g}x HMI, noise rising as {what}  RMS G one level -> map:", totals)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("intensity", "blos", "both"), default="both")
    parser.add_argument("--models", nargs="+", default=["light", "full"])
    parser.add_argument("--factors", nargs="+", type=float, default=[0.5, 1.0, 2.0, 3.0, 10.0])
    args = parser.parse_args(argv)
    if args.kind in ("intensity", "both"):
        continuum(args.models, args.factors)
    if args.kind in ("blos", "both"):
        magnetogram(args.models, [f for f in args.factors if f in (1.0, 3.0)] or args.factors)


if __name__ == "__main__":
    main()
