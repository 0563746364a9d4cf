"""Warnings and errors specific to solar-enhance.

`EnhanceUserWarning` derives from sunpy's `~sunpy.util.exceptions.SunpyUserWarning`, as aiapy's
``AIApyUserWarning`` does, so a filter on sunpy's warnings covers this package's too.
"""

from sunpy.util.exceptions import SunpyUserWarning

__all__ = ["EnhanceUserWarning", "ModelNotTrainedError", "NoiseLevelWarning", "UnsupportedOptionError"]


class EnhanceUserWarning(SunpyUserWarning):
    """A warning about the data or the options a user passed to solar-enhance.

    A subclass of `~sunpy.util.exceptions.SunpyUserWarning` (and so of `UserWarning`).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("pixel scale 0.6 arcsec is not HMI's", EnhanceUserWarning)
    >>> caught[0].category.__name__
    'EnhanceUserWarning'
    """


class NoiseLevelWarning(EnhanceUserWarning):
    """The noise measured on an image is far from HMI's at the image's labelled pixel scale.

    Data binned to 1.008 arcsec per pixel but labelled 0.504, or data from another instrument, read as
    many times HMI's noise: the network then smooths what it was meant to sharpen. Passing the noise
    level (``noise=``) decides it and silences this warning.

    Examples
    --------
    >>> issubclass(NoiseLevelWarning, EnhanceUserWarning)
    True
    """


class ModelNotTrainedError(LookupError):
    """A shipped model was asked for whose trained weights are not in the package.

    Examples
    --------
    >>> try:
    ...     raise ModelNotTrainedError("no trained weights for this model")
    ... except ModelNotTrainedError as err:
    ...     print(err)
    no trained weights for this model
    """


class UnsupportedOptionError(ValueError):
    """An option that cannot work for this input or way of running: the per-pixel uncertainty of a dask array,
    whose chunks each see only their part of the image.

    Examples
    --------
    >>> issubclass(UnsupportedOptionError, ValueError)
    True
    """
