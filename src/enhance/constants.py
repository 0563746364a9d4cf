"""The facts the whole package shares: data kinds, model sizes, HMI's pixel scale and noise, units.

Every module takes these from here, so that each is stated once.
"""

import astropy.units as u

__all__ = [
    "KINDS",
    "VARIANTS",
    "MODEL_SIZES",
    "HMI_PIXEL_SCALE",
    "TARGET_PIXEL_SCALE",
    "HMI_NOISE",
    "GAUSS_PER_KG",
]

#: Data kinds: continuum intensity and the line-of-sight magnetic field.
KINDS = ("intensity", "blos")

#: Shipped model variants.
VARIANTS = ("full", "light")

#: Architecture of each variant: the paper's network (445,249 parameters) and the light one.
MODEL_SIZES = {"full": {"depth": 5, "width": 64}, "light": {"depth": 1, "width": 32}}

#: Pixel scale of HMI's continuum images and magnetograms.
HMI_PIXEL_SCALE = 0.504 * u.arcsec

#: Pixel scale of the enhanced (x2) grid.
TARGET_PIXEL_SCALE = HMI_PIXEL_SCALE / 2

#: HMI's noise per pixel as Díaz Baso & Asensio Ramos (2018) take it: 1e-3 of the quiet-Sun continuum
#: (I/Ic) and 10 G for the line-of-sight field.
HMI_NOISE = {"intensity": 1e-3, "blos": 10.0}

#: Magnetograms go through the networks in kG: gauss per network unit.
GAUSS_PER_KG = 1000.0
