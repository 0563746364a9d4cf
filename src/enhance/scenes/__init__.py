"""High-resolution scenes to train and validate on: synthetic fields and simulation snapshots."""

import lazy_loader

# The modules load on first use (``enhance.scenes.sources``), as in scikit-image.
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submodules=["sources", "synth"])
