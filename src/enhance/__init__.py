"""solar-enhance: deconvolve and super-resolve SDO/HMI images with the Enhance deep residual network.

Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5.
"""

from ._version import __version__
from .distributed import enhance_dask, enhance_files  # imports dask only when called
from .exceptions import EnhanceUserWarning, ModelNotTrainedError
from .inference import enhance
from .network import EnhanceNet, fold_batchnorm

__all__ = [
    "__version__",
    "enhance",
    "enhance_files",
    "enhance_dask",
    "EnhanceNet",
    "fold_batchnorm",
    "EnhanceUserWarning",
    "ModelNotTrainedError",
]
