"""Small shared checks, in the style of scikit-image's ``check_nD``.

Each helper names the argument it checks, the value it received and what it expected.
"""

import numbers
import warnings

import astropy.units as u
import numpy as np
import scipy  # its submodules load when first used (scipy.ndimage: 0.15 s)

from . import exceptions
from .constants import KIND_ALIASES, KINDS
from .grid import on_output_grid

__all__ = [
    "fill_nonfinite",
    "check_image",
    "check_positive",
    "check_integer",
    "check_angle",
    "check_choice",
    "supported_float_type",
    "check_magnitude",
    "check_finite_output",
    "check_tile",
    "check_kind",
    "MAX_NORMALISED",
]

#: Largest magnitude a pixel may have once normalised (continuum: in units of its quiet-Sun level;
#: magnetogram: in kG). The Sun's brightest continuum pixels are about 1.5 times the quiet Sun and its
#: strongest fields about 5 kG; the network's output is about 1.5 times its largest input, so 1e6 leaves
#: float32 (3.4e38) thirty orders of magnitude of room. A larger value is no solar signal (a corrupt pixel,
#: or wrong units): it is refused before any work rather than carried to an overflow.
MAX_NORMALISED = 1e6


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

    indices = scipy.ndimage.distance_transform_edt(~finite, return_distances=False, return_indices=True)
    return image[tuple(indices)]


def check_magnitude(normalised, level, *, unit, limit=MAX_NORMALISED):
    """Raise `ValueError` if a finite image's largest pixel is more than ``limit`` times ``level``.

    Parameters
    ----------
    normalised : (ny, nx) ndarray
        The image, all finite (non-finite pixels already filled), in its own units.
    level : float or quiet-Sun surface
        What the network's unit is in the image's units: the quiet-Sun level, 1000 (G per kG), or a
        surface called as ``level(rows, factor=1)`` (its lowest value is used).
    unit : str
        The network's unit, for the message ('the quiet-Sun level' or 'kG').

    limit : float
        The largest ratio accepted.

    Raises
    ------
    ValueError
        If the image's largest absolute pixel exceeds ``limit * level``.

    Examples
    --------
    >>> import numpy as np
    >>> check_magnitude(np.full((4, 4), 2.0), 1.0, unit="the quiet-Sun level")
    >>> check_magnitude(np.full((4, 4), 1e9), 1.0, unit="the quiet-Sun level")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    peak = max(abs(float(np.max(normalised))), abs(float(np.min(normalised))))  # no |image| temporary
    if callable(level):
        rows = level.shape[0]
        level = min(float(np.min(level(slice(s, min(s + 256, rows)), factor=1))) for s in range(0, rows, 256))
    level = float(level)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        ratio = peak / level if level > 0 else float("inf")
    if not ratio <= limit:
        where = np.unravel_index(int(np.argmax(np.abs(normalised))), normalised.shape)
        value = float(normalised[where])  # with its sign
        msg = (f"image pixel {tuple(int(i) for i in where)} = {value:.3g} is {ratio:.3g} times {unit} "
               f"({level:.3g}); the network carries at most {limit:.0e} times it (solar pixels stay within a few): "
               "mask such pixels as NaN or fix the units")  # fmt: skip
        raise ValueError(msg)


def check_finite_output(result, finite):
    """Raise `ValueError` if ``result`` (2x the input grid) is not finite where the input was (``finite``).

    The promise that finite input gives finite output is kept by refusing, never by a silent NaN.

    Parameters
    ----------
    result : numpy.ndarray
        The output, ``(2 ny, 2 nx)``.
    finite : numpy.ndarray of bool
        Where the input ``(ny, nx)`` was finite.

    Raises
    ------
    ValueError
        If an output pixel of a finite input pixel is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> check_finite_output(np.zeros((4, 4)), np.ones((2, 2), bool))
    """
    if finite.all():
        bad = int(result.size - np.count_nonzero(np.isfinite(result)))
    else:
        expected = on_output_grid(finite)
        bad = int(np.count_nonzero(expected & ~np.isfinite(result)))
    if bad:
        msg = (f"the network gave {bad} non-finite output pixels for finite input (an overflow of its "
               "arithmetic: reduced precision, or weights that amplify too much); no output was written")  # fmt: skip
        raise ValueError(msg)


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


def check_tile(tile, *, margin: int):
    """Return ``tile`` if it is None or a positive integer, else raise `ValueError`; warn when it is smaller
    than the network's reach.

    Parameters
    ----------
    tile : int or None
        Tile size, input pixels.
    margin : int
        The network's receptive margin, input pixels on each side of a pixel that its output depends on.

    Returns
    -------
    int or None
        ``tile``.

    Warns
    -----
    `~enhance.exceptions.EnhanceUserWarning`
        If ``tile`` is smaller than the network's receptive field, ``2 margin + 1`` pixels: each tile is
        run with ``margin`` pixels of its neighbours on every side, so it costs ``((tile + 2 margin) /
        tile)**2`` times the work of a whole-image pass (169 for ``tile=3``, ``margin=18``). The warning
        names the smallest useful tile, ``2 margin + 1`` (at most 4 times the work).

    Examples
    --------
    >>> check_tile(512, margin=18)
    512
    """
    if tile is None:
        return None
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile < 1:
        msg = f"tile must be None or a positive number of input pixels, got {tile!r}"
        raise ValueError(msg)
    smallest = 2 * int(margin) + 1
    if tile < smallest:
        side = int(tile) + 2 * int(margin)
        msg = (f"tile={tile} is smaller than the network's reach ({smallest} input pixels across): each tile runs "
               f"on {side} x {side} pixels to keep {tile} x {tile}, {(side / tile) ** 2:.0f} times the work of one "
               f"pass; use tile >= {smallest} (at most 4 times), or no tile")  # fmt: skip
        warnings.warn(msg, exceptions.EnhanceUserWarning, stacklevel=1)
    return int(tile)


def check_kind(kind, *, auto: bool = True) -> str:
    """Return the data kind named by ``kind``: 'intensity' or 'blos' (or 'auto'), also under sunpy's names.

    Parameters
    ----------
    kind : str
        'intensity' or 'blos', sunpy's measurement names for them ('continuum', 'magnetogram', as
        `sunpy.map.sources.HMIMap.measurement` gives them; any case), or 'auto'.
    auto : bool
        Accept 'auto'.

    Returns
    -------
    str
        'intensity', 'blos' or 'auto'.

    Raises
    ------
    ValueError
        For any other name, e.g. a Dopplergram's measurement, which the networks were not trained on.

    Examples
    --------
    >>> check_kind("continuum"), check_kind("Magnetogram"), check_kind("blos")
    ('intensity', 'blos', 'blos')
    """

    name = kind.lower() if isinstance(kind, str) else kind
    if name in KINDS or (auto and name == "auto"):
        return name
    if name in KIND_ALIASES:
        return KIND_ALIASES[name]
    accepted = ", ".join([*(["'auto'"] if auto else []), *(f"{k!r} (or {a!r})" for a, k in KIND_ALIASES.items())])
    msg = (f"kind must be one of {accepted}, got {kind!r}; the networks were trained on continuum intensity and "
           "line-of-sight magnetograms only")  # fmt: skip
    raise ValueError(msg)
