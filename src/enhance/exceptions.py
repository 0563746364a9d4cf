"""Warnings and errors specific to solar-enhance."""

__all__ = ["EnhanceUserWarning", "ModelNotTrainedError"]


class EnhanceUserWarning(UserWarning):
    """A warning about the data or the options a user passed to solar-enhance."""


class ModelNotTrainedError(LookupError):
    """A shipped model was asked for whose trained weights are not in the package."""
