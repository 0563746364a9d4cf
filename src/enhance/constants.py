"""The facts the whole package shares: data kinds, model sizes, HMI's pixel scale and noise, units.

Every module takes these from here, so that each is stated once.
"""

import astropy.units as u

__all__ = [
    "KINDS",
    "KIND_ALIASES",
    "VARIANTS",
    "MODEL_SIZES",
    "WIENER_SIZE",
    "WIENER_SYMMETRIC",
    "HMI_PIXEL_SCALE",
    "TARGET_PIXEL_SCALE",
    "HMI_NOISE",
    "GAUSS_PER_KG",
]

#: Data kinds: continuum intensity and the line-of-sight magnetic field.
KINDS = ("intensity", "blos")

#: sunpy's names of the same quantities (`sunpy.map.sources.HMIMap.measurement`), accepted as ``kind``.
KIND_ALIASES = {"continuum": "intensity", "magnetogram": "blos"}

#: Shipped model variants: the defaults ('full', 'light': Wiener-Enhance averaged over the 8 rotations and
#: flips, and one pass of it) and the networks of Díaz Baso & Asensio Ramos (2018) as published.
VARIANTS = ("full", "light", "paper", "paper-light")

#: Architecture of the paper's networks: Enhance (445,249 parameters) and its light version.
MODEL_SIZES = {"paper": {"depth": 5, "width": 64}, "paper-light": {"depth": 1, "width": 32}}

#: Architecture of the default models (`~enhance.models.hybrid.WienerEnhanceNet`), and whether each
#: averages over the 8 rotations and flips.
WIENER_SIZE = {"depth": 3, "width": 32, "taps": 21}
WIENER_SYMMETRIC = {"full": True, "light": False}

#: Pixel scale of HMI's continuum images and magnetograms.
HMI_PIXEL_SCALE = 0.504 * u.arcsec

#: Pixel scale of the enhanced (x2) grid.
TARGET_PIXEL_SCALE = HMI_PIXEL_SCALE / 2

#: HMI's noise per pixel as Díaz Baso & Asensio Ramos (2018) take it: 1e-3 of the quiet-Sun continuum
#: (I/Ic) and 10 G for the line-of-sight field.
HMI_NOISE = {"intensity": 1e-3, "blos": 10.0}

#: Magnetograms go through the networks in kG: gauss per network unit.
GAUSS_PER_KG = 1000.0
