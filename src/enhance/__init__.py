"""solar-enhance: deconvolve and super-resolve SDO/HMI images with the Enhance deep residual network.

Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5.

The package follows the data flow, each layer importing only from the layers below it
(``ARCHITECTURE.md``): `enhance.observation` (PSF, degradation, quiet-Sun level) ->
`enhance.scenes` (synthetic and simulated fields) -> `enhance.models` (network, weights) ->
`enhance.runtime` (fast graph, ONNX) -> `enhance.training` -> `enhance.inference` ->
`enhance.analysis` -> the command line. ``import enhance`` loads neither torch, dask nor
matplotlib: the names below are imported when first used.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

import lazy_loader

from ._version import __version__

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

#: The package's modules, loaded on first use as attributes (``enhance.io.read_fits``, ``enhance.observation.psf``).
SUBMODULES = ["analysis", "checks", "cli", "constants", "cores", "data", "demo", "exceptions", "inference", "io",
              "models", "observation", "runtime", "scenes", "training", "web"]  # fmt: skip
# Public names and the module that defines each, imported on first access (PEP 562, with lazy_loader).
_LAZY = {
    "inference.api": ["enhance"],
    "inference.distributed": ["enhance_files", "enhance_dask"],
    "models.network": ["EnhanceNet", "fold_batchnorm"],
    # sunpy's warning base class loads astropy: imported on first use too
    "exceptions": ["EnhanceUserWarning", "ModelNotTrainedError"],
}
__getattr__, _lazy_dir, _ = lazy_loader.attach(__name__, submodules=SUBMODULES, submod_attrs=_LAZY)


def __dir__():
    return sorted(set(globals()) | set(_lazy_dir()))


# Import paths of the flat layout before 0.4.0, kept for one release: ``import enhance.psf`` gives a
# module that forwards every attribute to ``enhance.observation.psf`` and warns once.
MOVED_MODULES = {
    "enhance.psf": "enhance.observation.psf",
    "enhance.degrade": "enhance.observation.degrade",
    "enhance.quiet_sun": "enhance.observation.quiet_sun",
    "enhance.synth": "enhance.scenes.synth",
    "enhance.sources": "enhance.scenes.sources",
    "enhance.network": "enhance.models.network",
    "enhance.weights": "enhance.models.weights",
    "enhance.export": "enhance.runtime.export",
    "enhance.ort_blocked": "enhance.runtime.ort_blocked",
    "enhance.datasets": "enhance.training.datasets",
    "enhance.train": "enhance.training.loop",
    "enhance.tiling": "enhance.inference.tiling",
    "enhance.distributed": "enhance.inference.distributed",
    "enhance.baselines": "enhance.analysis.baselines",
    "enhance.metrics": "enhance.analysis.metrics",
    "enhance.figures": "enhance.analysis.figures",
    "enhance.diagnostics": "enhance.analysis.diagnostics",
    "enhance.hmi_behaviour": "enhance.analysis.hmi_behaviour",
    "enhance.calibration": "enhance.analysis.calibration",
    "enhance.validate": "enhance.analysis.validate",
}


class _MovedModule(types.ModuleType):
    """A deprecated import path: attribute access goes to the module's new home."""

    def __init__(self, name, target):
        super().__init__(name, f"Deprecated alias of `{target}`.")
        self.__target = target

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self.__target), attr)

    def __dir__(self):
        return dir(importlib.import_module(self.__target))


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # The import system offers no alias for a moved module; a finder is its documented extension point.
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        target = MOVED_MODULES[spec.name]
        warnings.warn(
            f"{spec.name} is deprecated and will be removed in 0.6.0; import {target}",
            DeprecationWarning,
            stacklevel=2,
        )
        return _MovedModule(spec.name, target)

    def exec_module(self, module):
        pass


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
