"""Training pairs from any scene source, the training loop, and checkpoint averaging."""

import lazy_loader

# The modules load on first use (``enhance.training.datasets``), as in scikit-image.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__, submodules=["datasets", "hybrid_loop", "linear_stage", "loop"]
)
