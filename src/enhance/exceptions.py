"""Warnings and errors specific to solar-enhance."""

__all__ = ["EnhanceUserWarning", "ModelNotTrainedError"]


class EnhanceUserWarning(UserWarning):
    """A warning about the data or the options a user passed to solar-enhance.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("pixel scale 0.6 arcsec is not HMI's", EnhanceUserWarning)
    >>> caught[0].category.__name__
    'EnhanceUserWarning'
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
