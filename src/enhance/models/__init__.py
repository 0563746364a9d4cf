"""The networks (PyTorch modules) and their weights: Wiener-Enhance (the default models), the paper's Enhance,
safetensors I/O and the shipped-model registry."""

import lazy_loader

# The modules load on first use (``enhance.models.architecture``), as in scikit-image.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__, submodules=["architecture", "hybrid", "network", "pretrained", "registry", "runner", "weights"]
)
