"""Training pairs from any scene source, the training loops, checkpoint averaging and the average of runs."""

import lazy_loader

# The modules load on first use (``enhance.training.datasets``), as in scikit-image.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__, submodules=["average", "datasets", "hybrid_loop", "linear_stage", "loop"]
)
