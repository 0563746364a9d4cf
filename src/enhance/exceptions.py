"""Warnings and errors specific to solar-enhance.

`EnhanceUserWarning` derives from sunpy's `~sunpy.util.exceptions.SunpyUserWarning`, as aiapy's
``AIApyUserWarning`` does, so a filter on sunpy's warnings covers this package's too. The two warning
classes are defined on first use (the module's ``__getattr__``): importing sunpy costs a fifth of a second, which
``enhance run`` on a small cut-out does not pay unless it warns. Modules of the package therefore name them as
``exceptions.EnhanceUserWarning`` where they warn, not in an import at their top.

Every error of the package derives from `EnhanceError` and from the builtin it refines
(`OutputExistsError` is a `FileExistsError`, `DiskFullError` an `OSError`, ...), so that code which
catches the builtin keeps working and the command line tells them apart by type, never by message.
Each message is one line that names the file or the argument.
"""

import errno
import threading
import warnings

__all__ = [
    "EnhanceUserWarning",  # noqa: F822 - defined on first use (`__getattr__`)
    "NoiseLevelWarning",  # noqa: F822
    "EnhanceError",
    "ModelNotTrainedError",
    "OutputExistsError",
    "DiskFullError",
    "EnhancedInputError",
    "DataLeakageError",
    "IncompatibleOptionsError",
    "ClusterError",
    "UnsupportedOptionError",
]


class EnhanceError(Exception):
    """Base class of the errors solar-enhance raises; its message is one line.

    Examples
    --------
    >>> issubclass(OutputExistsError, EnhanceError) and issubclass(OutputExistsError, FileExistsError)
    True
    """


class ModelNotTrainedError(EnhanceError, LookupError):
    """A shipped model was asked for whose trained weights are not in the package.

    Examples
    --------
    >>> try:
    ...     raise ModelNotTrainedError("no trained weights for this model")
    ... except ModelNotTrainedError as err:
    ...     print(err)
    no trained weights for this model
    """


class OutputExistsError(EnhanceError, FileExistsError):
    """An output file exists and ``overwrite`` is off: it is left as it is.

    In a batch (`~enhance.inference.distributed.enhance_files`) the record of an input whose complete
    output exists is skipped with this error; a single output file that exists is refused with it.

    Examples
    --------
    >>> issubclass(OutputExistsError, FileExistsError)
    True
    """


class DiskFullError(EnhanceError, OSError):
    """The output's file system is full (``ENOSPC``) or its quota is exhausted (``EDQUOT``).

    Told by the `OSError`'s ``errno`` (one of ``DiskFullError.ERRNOS``), never by its message, which the
    system may give in any language.

    Examples
    --------
    >>> import errno, os
    >>> err = DiskFullError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out/a_enhanced.fits")
    >>> isinstance(err, OSError), err.errno in DiskFullError.ERRNOS, err.filename
    (True, True, 'out/a_enhanced.fits')
    """

    #: The ``errno`` values of a full disk.
    ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class EnhancedInputError(EnhanceError, ValueError):
    """An input is an output of solar-enhance (its header says so): enhancing it twice is refused.

    Examples
    --------
    >>> issubclass(EnhancedInputError, ValueError)
    True
    """


class DataLeakageError(EnhanceError, ValueError):
    """Training data would contain data kept for validation (a simulation's held-out rows).

    Examples
    --------
    >>> issubclass(DataLeakageError, ValueError)
    True
    """


class IncompatibleOptionsError(EnhanceError, ValueError):
    """Options that do not fit together (for the command line, a usage error: exit status 2).

    Examples
    --------
    >>> issubclass(IncompatibleOptionsError, ValueError)
    True
    """


class ClusterError(EnhanceError, RuntimeError):
    """A Dask cluster could not be started or reached.

    Examples
    --------
    >>> issubclass(ClusterError, RuntimeError)
    True
    """


class UnsupportedOptionError(EnhanceError, ValueError):
    """An option that cannot work for this input or way of running: the per-pixel uncertainty of a dask array,
    whose chunks each see only their part of the image.

    Examples
    --------
    >>> issubclass(UnsupportedOptionError, ValueError)
    True
    """


_WARNINGS = ("EnhanceUserWarning", "NoiseLevelWarning")


_DEFINING = threading.Lock()


def _define_warnings() -> None:
    """Define the warning classes (subclasses of sunpy's) in this module, once (two threads get one class)."""
    with _DEFINING:
        if "EnhanceUserWarning" not in globals():
            _make_warnings()


def _make_warnings() -> None:
    shown = warnings.showwarning
    from sunpy.util.exceptions import SunpyUserWarning  # sunpy's first import installs its logger's showwarning

    if warnings.showwarning is not shown and getattr(shown, "__module__", "warnings") != "warnings":
        warnings.showwarning = shown  # a handler of the caller's (the command line's one-line warnings) stays

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

    for cls in (EnhanceUserWarning, NoiseLevelWarning):
        cls.__qualname__ = cls.__name__  # as if defined at the module's top: pickling, docs, reprs
        globals()[cls.__name__] = cls


def __getattr__(name):
    if name in _WARNINGS:
        _define_warnings()
        return globals()[name]
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__():
    return sorted([*globals(), *_WARNINGS])
