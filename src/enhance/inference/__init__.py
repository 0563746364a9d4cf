"""`~enhance.inference.api.enhance` on arrays, Maps and files; tiling; batches and full disks with Dask."""

import lazy_loader

# The modules load on first use (``enhance.inference.distributed``), as in scikit-image.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__, submodules=["api", "distributed", "noise_map", "pipeline", "tiling", "uncertainty"]
)
