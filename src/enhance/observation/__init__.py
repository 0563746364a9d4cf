"""The observation model: HMI's PSF, the degradation to HMI's grid, the quiet-Sun level (numpy only)."""

import lazy_loader

# The modules load on first use (``enhance.observation.consistency``), as in scikit-image.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__, submodules=["consistency", "degrade", "fourier", "noise", "psf", "quiet_sun"]
)
