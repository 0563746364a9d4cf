"""Small shared checks, in the style of scikit-image's ``check_nD``.

Each helper names the argument it checks, the value it received and what it expected.
"""

import numbers

import numpy as np

__all__ = [
    "fill_nonfinite",
    "check_image",
    "check_positive",
    "check_integer",
    "check_angle",
    "check_choice",
    "supported_float_type",
]


def supported_float_type(dtype):
    """Return the float dtype that computations on ``dtype`` use.

    float32 and float64 are kept, float16 becomes float32, integers and booleans become float64
    (the policy of scikit-image's ``_supported_float_type``).

    Parameters
    ----------
    dtype : numpy.dtype or type
        The input's data type.

    Returns
    -------
    numpy.dtype
        float32 or float64.

    Examples
    --------
    >>> import numpy as np
    >>> supported_float_type(np.int16)
    dtype('float64')
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        return np.dtype(f"f{dtype.itemsize}")  # native byte order
    if dtype.kind == "f" and dtype.itemsize == 2:
        return np.dtype(np.float32)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    msg = f"image dtype must be integer or floating point, got {dtype}"
    raise TypeError(msg)


def check_image(image, *, name="image", allow_nonfinite=True):
    """Return ``image`` as a native-byte-order 2-D float array (a copy), or raise.

    Parameters
    ----------
    image : array_like
        The image to check.
    name : str
        The argument name used in error messages.
    allow_nonfinite : bool
        If False, NaN or infinite pixels raise a `ValueError`.

    Returns
    -------
    numpy.ndarray
        A 2-D float copy (float32 or float64, see `supported_float_type`) in native byte order.

    Examples
    --------
    >>> import numpy as np
    >>> check_image(np.ones((2, 3), dtype=">f4")).dtype
    dtype('float32')
    """
    if not isinstance(image, np.ndarray) and not hasattr(image, "__array__"):
        msg = f"{name} must be a 2-D array (ny, nx), got {type(image).__name__}"
        raise TypeError(msg)
    array = np.asarray(image)
    if array.ndim != 2:
        msg = f"{name} must be 2-D (ny, nx), got shape {array.shape}"
        raise ValueError(msg)
    if min(array.shape) < 1:
        msg = f"{name} must not be empty, got shape {array.shape}"
        raise ValueError(msg)
    dtype = supported_float_type(array.dtype)
    out = np.array(array, dtype=dtype, copy=True)
    if not allow_nonfinite and not np.all(np.isfinite(out)):
        n_bad = int(np.count_nonzero(~np.isfinite(out)))
        msg = f"{name} must be finite, got {n_bad} NaN or infinite pixels"
        raise ValueError(msg)
    return out


def check_positive(value, *, name):
    """Return ``value`` as a float if it is a finite number > 0, else raise `ValueError`.

    Parameters
    ----------
    value : float
        The number to check.
    name : str
        The argument name used in the error message.

    Returns
    -------
    float
        ``value``.

    Examples
    --------
    >>> check_positive(2, name="sigma")
    2.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"{name} must be a positive number, got {value!r}"
        raise TypeError(msg)
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        msg = f"{name} must be a positive number, got {value!r}"
        raise ValueError(msg)
    return value


def check_integer(value, *, name, minimum=1, unit=""):
    """Return ``value`` as an int if it is an integer (not a bool) >= ``minimum``, else raise `ValueError`.

    The message says "a positive integer" for ``minimum=1`` and "an integer >= minimum" otherwise.

    Parameters
    ----------
    value : int
        The number to check.
    name : str
        The argument name used in the error message.
    minimum : int
        The smallest value accepted.
    unit : str
        Unit named in the error message (e.g. ``'px'``).

    Returns
    -------
    int
        ``value``.

    Examples
    --------
    >>> check_integer(512, name="tile", minimum=8, unit="px")
    512
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        msg = f"{name} must be {expected}{unit}, got {value!r}"
        raise ValueError(msg)
    return int(value)


def check_angle(value, *, name):
    """Return an angle in arcsec from a `~astropy.units.Quantity` or a plain number of arcsec (> 0).

    Parameters
    ----------
    value : `~astropy.units.Quantity` or float
        An angle (any angular unit) or a number of arcsec.
    name : str
        The argument name used in the error message.

    Returns
    -------
    float
        The angle in arcsec.

    Examples
    --------
    >>> import astropy.units as u
    >>> check_angle(1 * u.arcmin, name="radius")
    60.0
    """
    import astropy.units as u

    if isinstance(value, u.Quantity):
        number = float(value.to_value(u.arcsec))
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        msg = f"{name} must be an angle (Quantity) or a number of arcsec, got {value!r}"
        raise TypeError(msg)
    if not (np.isfinite(number) and number > 0):
        msg = f"{name} must be positive, got {value!r}"
        raise ValueError(msg)
    return number


def fill_nonfinite(image, finite):
    """Replace non-finite pixels by their nearest finite neighbour (no artificial edge at the limb).

    Parameters
    ----------
    image : numpy.ndarray
        The image, any unit.
    finite : numpy.ndarray of bool
        ``np.isfinite(image)``.

    Returns
    -------
    numpy.ndarray
        A filled copy; ``image`` itself when every pixel is finite.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[1.0, np.nan, 3.0]])
    >>> fill_nonfinite(image, np.isfinite(image))
    array([[1., 1., 3.]])
    """
    if finite.all():
        return image
    if not finite.any():
        msg = "image has no finite pixels"
        raise ValueError(msg)
    from scipy import ndimage

    indices = ndimage.distance_transform_edt(~finite, return_distances=False, return_indices=True)
    return image[tuple(indices)]


def check_choice(value, choices, *, name):
    """Return ``value`` if it is one of ``choices``, else raise `ValueError` naming them.

    Parameters
    ----------
    value : object
        The value to check.
    choices : sequence
        The values accepted.
    name : str
        The argument name used in the error message.

    Returns
    -------
    object
        ``value``.

    Examples
    --------
    >>> check_choice("blos", ("intensity", "blos"), name="kind")
    'blos'
    """
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        msg = f"{name} must be one of {options}, got {value!r}"
        raise ValueError(msg)
    return value
