"""The files shipped with the package: HMI sample cut-outs, trained weights, model cards.

`sample_path` gives the two SDO/HMI active-region cut-outs (200 x 200 pixels at 0.504 arcsec) that
the demo, the documentation and the tests use.
"""

from importlib import resources
from pathlib import Path

from ..io import read_fits

__all__ = ["SAMPLES", "data_dir", "sample_path", "sample_map"]

#: Sample cut-out file of each data kind.
SAMPLES = {"intensity": "hmi_continuum_ar.fits", "blos": "hmi_blos_ar.fits"}


def data_dir() -> Path:
    """The package's data folder.

    Returns
    -------
    `~pathlib.Path`
        The folder holding the sample cut-outs, the weights files and their registry.

    Examples
    --------
    >>> (data_dir() / "models.json").is_file()
    True
    """
    return Path(str(resources.files("enhance") / "data"))


def sample_path(kind: str = "intensity") -> Path:
    """Path of the shipped HMI sample cut-out of one kind.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        The continuum image (I/Ic) or the line-of-sight magnetogram (gauss).

    Returns
    -------
    `~pathlib.Path`
        The FITS file inside the installed package.

    Examples
    --------
    >>> sample_path("blos").name
    'hmi_blos_ar.fits'
    """
    if kind not in SAMPLES:
        msg = f"kind must be one of {sorted(SAMPLES)}, got {kind!r}"
        raise ValueError(msg)
    return data_dir() / SAMPLES[kind]


def sample_map(kind: str = "intensity"):
    """The shipped HMI sample cut-out of one kind as a `sunpy.map.Map` (an ``HMIMap``; see `sample_path`).

    Its header is JSOC-style with a nominal date and pointing (see ``README.md`` in this folder).

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        The continuum image (I/Ic) or the line-of-sight magnetogram (gauss).

    Returns
    -------
    `sunpy.map.GenericMap`
        The Map, 200 x 200 pixels at 0.504 arcsec.

    Examples
    --------
    >>> sample_map("blos").measurement
    'magnetogram'
    """
    import sunpy.map

    data, header = read_fits(sample_path(kind))
    return sunpy.map.Map(data, header)
