"""The facts the whole package shares: data kinds, HMI's pixel scale and noise, the networks' units.

Every module takes these from here, so that each is stated once. What is particular to a shipped model (its
name, family, architecture, symmetry, file) is stated once too, in the model registry,
`enhance.models.registry`.
"""

import warnings

import astropy.units as u

__all__ = [
    "KINDS",
    "KIND_ALIASES",
    "HMI_PIXEL_SCALE",
    "TARGET_PIXEL_SCALE",
    "HMI_NOISE",
    "GAUSS_PER_KG",
    "NETWORK_UNIT",
    "HMI_NOISE_NETWORK",
    "VARIANTS",
    "WIENER_SYMMETRIC",
]

#: Data kinds: continuum intensity and the line-of-sight magnetic field.
KINDS = ("intensity", "blos")

#: sunpy's names of the same quantities (`sunpy.map.sources.HMIMap.measurement`), accepted as ``kind``.
KIND_ALIASES = {"continuum": "intensity", "magnetogram": "blos"}

#: Pixel scale of HMI's continuum images and magnetograms.
HMI_PIXEL_SCALE = 0.504 * u.arcsec

#: Pixel scale of the enhanced (x2) grid.
TARGET_PIXEL_SCALE = HMI_PIXEL_SCALE / 2

#: HMI's noise per pixel as Díaz Baso & Asensio Ramos (2018) take it: 1e-3 of the quiet-Sun continuum
#: (I/Ic) and 10 G for the line-of-sight field.
HMI_NOISE = {"intensity": 1e-3, "blos": 10.0}

#: Magnetograms go through the networks in kG: gauss per network unit.
GAUSS_PER_KG = 1000.0

#: Data units per network unit of each kind: continuum images go through the networks in units of their
#: quiet-Sun level (I/Ic), magnetograms in kG (`GAUSS_PER_KG` gauss).
NETWORK_UNIT = {"intensity": 1.0, "blos": GAUSS_PER_KG}

#: HMI's noise (`HMI_NOISE`) in the networks' units: 1e-3 I/Ic and 0.01 kG.
HMI_NOISE_NETWORK = {kind: HMI_NOISE[kind] / NETWORK_UNIT[kind] for kind in KINDS}

# Names of 0.4.0, kept for code written against it; they go in 0.6.0. Each is a view of the model registry
# (`enhance.models.registry.MODELS`), which `tests/test_registry.py` checks them against; the package
# itself reads the registry. `VARIANTS` and `WIENER_SYMMETRIC` stay silent (tests/test_pinned_outputs.py, which
# pins 0.4.0's outputs unchanged, imports them); the others warn.

#: The shipped models' names (0.4.0's name; now the keys of `enhance.models.registry.MODELS`).
VARIANTS = ("full", "light", "paper", "paper-light")

#: Whether each default model averages over the 8 rotations and flips (0.4.0's name; now ``symmetric`` of
#: `enhance.models.registry.ModelSpec`).
WIENER_SYMMETRIC = {"full": True, "light": False}

_DEPRECATED = {
    "MODEL_SIZES": {"paper": {"depth": 5, "width": 64}, "paper-light": {"depth": 1, "width": 32}},
    "WIENER_SIZE": {"depth": 3, "width": 32, "taps": 21},
}


def __getattr__(name):
    if name in _DEPRECATED:
        msg = (f"enhance.constants.{name} is deprecated and goes in 0.6.0: the architecture of each model is "
               "enhance.models.registry.MODELS[name].architecture")  # fmt: skip
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        return _DEPRECATED[name]
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
