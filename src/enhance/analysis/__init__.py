"""Classical baselines, metrics, figures, diagnostics of an enhanced image, and validation."""

import lazy_loader

# The modules load on first use (``enhance.analysis.baselines``), as in scikit-image.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=[
        "baselines",
        "calibration",
        "diagnostics",
        "figures",
        "hmi_behaviour",
        "metrics",
        "spectra",
        "uncertainty_calibration",
        "validate",
    ],
)
