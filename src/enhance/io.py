"""FITS in and out: reading HMI files, the header of the x2 grid, and atomic writes."""

import contextlib
import gzip
import os
import re
import stat
import tempfile
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

try:  # POSIX only: elsewhere files are written without locks
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from . import constants, exceptions
from ._version import __version__
from .checks import check_positive
from .exceptions import DiskFullError, OutputExistsError

__all__ = [
    "read_fits",
    "read_map",
    "write_fits",
    "write_map",
    "upscale_header",
    "detect_kind",
    "resolve_kind",
    "check_header",
    "RSUN_SMALLEST",
    "pixel_scale",
    "gauss_factor",
    "provenance_cards",
    "written_by_enhance",
    "PROVENANCE_KEY",
    "CARD_COMMENTS",
    "fits_stem",
    "atomic_write",
    "check_replaceable",
    "check_new_file",
    "check_output",
    "fits_error_text",
    "limb_pixels",
    "disk_radius",
    "warn_near_limb",
    "LIMB_BAND",
    "UNCERTAINTY_EXTNAME",
    "uncertainty_hdu",
]

# Keys that describe the stored pixel values and become wrong once the data change.
_STALE_KEYS = (
    "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "DATAMIN", "DATAMAX", "DATAMEAN", "DATAMEDN",
    "DATARMS", "DATASKEW", "DATAKURT", "DATAVALS", "MISSVALS", "TOTVALS", "DATAP01", "DATAP10", "DATAP25",
    "DATAP75", "DATAP90", "DATAP95", "DATAP98", "DATAP99",
)  # fmt: skip
# Keys the written file sets itself, or that belong to another HDU type.
_SKIP_ON_WRITE = (
    "",
    "COMMENT",
    "HISTORY",
    "KEYCOMMENTS",
    "XTENSION",
    "PCOUNT",
    "GCOUNT",
    "EXTNAME",
    "SIMPLE",
    "EXTEND",
)
_GAUSS_UNITS = ("g", "gauss", "mx/cm^2", "mx cm-2", "mx/cm2")
#: BUNIT values of magnetograms in other field units: converted for Quantities and Maps, refused in files.
_FIELD_UNITS = ("kg", "t", "mt", "kgauss", "tesla")
_INTENSITY_UNITS = ("i/ic", "dn/s", "dn", "counts", "ct/s", "ct", "ic", "dimensionless", "erg/(cm2 s sr a)")
#: Header keyword that marks a file written by solar-enhance (its version); `written_by_enhance` reads it.
PROVENANCE_KEY = "ENH_VER"
#: Comments of the cards solar-enhance writes (`provenance_cards`, and the assumptions an enhancement made).
CARD_COMMENTS = {
    "ENH_VER": "solar-enhance version that wrote this file",
    "ENH_MODL": "model that enhanced the image",
    "ENH_KIND": "what was enhanced: intensity or blos",
    "ENH_REG": "model's registry name (or weights file)",
    "ENH_NOIS": "noise told the network, per input pixel",
    "ENH_NUNI": "unit of ENH_NOIS (I/Ic: of the quiet Sun)",
    "ENH_NSRC": "ENH_NOIS measured, nominal (HMI's) or given",
    "ENH_NWHY": "why ENH_NOIS",
    "ENH_QSTY": "quiet-Sun normalisation: level or surface",
    "ENH_QSRC": "quiet-Sun normalisation given or estimated",
    "ENH_QSLV": "quiet-Sun level, BUNIT (surface: its median)",
    "ENH_QSMN": "least value of the quiet-Sun surface, BUNIT",
    "ENH_QSMX": "greatest value of the quiet-Sun surface, BUNIT",
    "ENH_NOUT": "isolated outlier pixels replaced (3x3 median)",
    "ENH_UCAL": "calibration of the uncertainty (UNCERT)",
}
#: How far a pixel scale may be from HMI's (`enhance.constants.HMI_PIXEL_SCALE`) before the input is refused.
PIXEL_SCALE_TOLERANCE = 0.05
_ANGLE_TO_ARCSEC = {"arcsec": 1.0, "asec": 1.0, "arcsecond": 1.0, "arcmin": 60.0, "arcminute": 60.0, "deg": 3600.0,
                    "degree": 3600.0, "degrees": 3600.0, "rad": 206264.80624709636, "radian": 206264.80624709636,
                    "mas": 1e-3}  # fmt: skip
# Quantities HMI measures that the networks were not trained on: words of CONTENT/series and BUNITs.
_UNTRAINED = (
    (("DOPPLERGRAM", "HMI.V_"), ("cm/s", "m/s", "km/s"), "a Dopplergram"),
    (("LINEWIDTH", "HMI.LW_"), (), "a line-width map"),
    (("LINEDEPTH", "HMI.LD_"), (), "a line-depth map"),
    (("INCLINATION", "AZIMUTH", "DISAMBIG"), ("deg", "degree"), "a vector-field angle"),
)
_UMASK = os.umask(0o022)
os.umask(_UMASK)
IMAGE_HDUS = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)


def _image_hdu(hdul, path):
    for hdu in hdul:
        if isinstance(hdu, IMAGE_HDUS) and hdu.header.get("NAXIS", 0) > 0:
            try:
                data = hdu.data
            except (ValueError, TypeError, OSError) as err:
                msg = f"{path} is truncated or corrupt: {err}"
                raise ValueError(msg) from err
            if data is not None:
                return hdu
    kinds = ", ".join(type(hdu).__name__ for hdu in hdul)
    msg = f"{path} holds no image data (HDUs: {kinds})"
    raise ValueError(msg)


#: File name endings of FITS files, longest first.
FITS_SUFFIXES = (".fits.gz", ".fits.fz", ".fits", ".fit", ".fts")


def fits_stem(path) -> str:
    """A FITS file's name without its FITS suffix only, so JSOC names keep their time stamps.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file.

    Returns
    -------
    str
        The name without ``.fits``, ``.fits.gz``, ``.fits.fz`` (or ``.fit``, ``.fts``).

    Examples
    --------
    >>> fits_stem("hmi.M_45s.20240101_000000_TAI.2.magnetogram.fits")
    'hmi.M_45s.20240101_000000_TAI.2.magnetogram'
    """
    name = Path(path).name
    for suffix in FITS_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def read_fits(path):
    """Read the first HDU with image data from a FITS file.

    Handles RICE tile-compressed HMI files (``CompImageHDU``), big-endian data and integer data with
    BSCALE/BZERO/BLANK (BLANK pixels become NaN).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The FITS file.

    Returns
    -------
    data : `~numpy.ndarray`
        2-D float array in native byte order (float32 for float32 files, else float64).
    header : `~astropy.io.fits.Header`
        The image header (for a compressed HDU, the header of the uncompressed image).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not FITS, holds no image, or the image is not 2-D.

    Examples
    --------
    >>> from enhance.data import sample_path
    >>> data, header = read_fits(sample_path("blos"))
    >>> data.shape, data.dtype, header["CDELT1"]
    ((200, 200), dtype('float32'), 0.504)
    """
    path = Path(path)
    check_regular_file(path, what="input file")
    claimed, size = fits_extent(path)
    if claimed > size:  # before astropy reads (and allocates) what the headers claim
        msg = f"{path} is truncated or corrupt: its headers claim {claimed} bytes, but the file holds {size}"
        raise ValueError(msg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False) as hdul:
                hdu = _image_hdu(hdul, path)
                raw = hdu.data
                header = hdu.header.copy()
        except OSError as err:
            msg = f"{path} is not a readable FITS file: {fits_error_text(err)}"
            raise ValueError(msg) from err
    for warning in caught:
        if "truncated" in str(warning.message):  # astropy only warns; the data would be incomplete
            msg = f"{path} is truncated or corrupt: {warning.message}"
            raise ValueError(msg)
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    _check_cards(header, path)
    data = np.squeeze(raw) if raw.ndim > 2 else raw
    if data.ndim != 2:
        msg = f"{path}: the image must be 2-D (ny, nx), got shape {raw.shape}"
        raise ValueError(msg)
    if data.dtype.kind not in "iuf":
        msg = f"{path}: unsupported image dtype {data.dtype}"
        raise ValueError(msg)
    dtype = np.float32 if data.dtype.kind == "f" and data.dtype.itemsize == 4 else np.float64
    return np.array(data, dtype=dtype, copy=True), squeeze_header(header)


#: Header cards the enhancement reads (coordinates, the observer, the unit and what the image is): one whose value
#: FITS cannot parse is refused; any other such card (JSOC writes ``CRDER1 = nan``) is left out, with a warning.
_NEEDED_KEY = re.compile(
    r"^(CTYPE|CUNIT|CRPIX|CDELT|CRVAL|CROTA|NAXIS)\d?$|^(PC|CD)\d_\d$|^(LONPOLE|LATPOLE|BUNIT|"
    r"CONTENT|TELESCOP|INSTRUME|DATE-OBS|DATE_OBS|T_OBS|RSUN_OBS|RSUN_REF|DSUN_OBS|DSUN_REF|"
    r"HGLN_OBS|HGLT_OBS|CRLN_OBS|CRLT_OBS|R_SUN|X0_MP|Y0_MP|IMSCL_MP|BSCALE|BZERO|BLANK)$"
)


def _check_cards(header, path) -> None:
    """`ValueError` naming a header card the enhancement reads whose value astropy cannot parse (``CROTA2 = NAN``),
    found when the file is read and without astropy's advice to call ``.verify('fix')``; other such cards are
    removed from ``header`` with an `~enhance.exceptions.EnhanceUserWarning`."""
    unreadable = []
    for card in header.cards:
        try:
            card.value  # noqa: B018 - parsed on first access
        except fits.verify.VerifyError:
            if _NEEDED_KEY.match(card.keyword):
                msg = (f"{path}: header card {card.keyword} holds a value the FITS standard does not allow (NaN?); "
                       "fix it in the file")  # fmt: skip
                raise ValueError(msg) from None
            unreadable.append(card.keyword)
    for keyword in unreadable:
        del header[keyword]
    if unreadable:
        warnings.warn(
            f"{path}: header card(s) {', '.join(unreadable)} hold values the FITS standard does not allow "
            "(NaN?) and are left out of the output's header",
            exceptions.EnhanceUserWarning,
            stacklevel=3,
        )


#: astropy's hints to options of `astropy.io.fits.open` that solar-enhance does not pass (and its CLI cannot).
_OPEN_OPTION_HINT = re.compile(r"\.?\s*If this is really a FITS file, try with \w+=True\.?|,?\s*try with \w+=True\.?")


def fits_error_text(err) -> str:
    """astropy's message for a file it cannot read, without its hint to an option of `astropy.io.fits.open`
    (``ignore_missing_simple=True``) that `read_fits` does not take.

    Parameters
    ----------
    err : Exception
        The error astropy raised.

    Returns
    -------
    str
        Its message, without the hint.

    Examples
    --------
    >>> fits_error_text(OSError("No SIMPLE card. If this is really a FITS file, try with ignore_missing_simple=True"))
    'No SIMPLE card'
    """
    return _OPEN_OPTION_HINT.sub("", str(err)).strip()


def check_regular_file(path, *, what="input file", expected="a FITS file") -> None:
    """Raise `FileNotFoundError` if ``path`` is missing, `ValueError` naming it if it is a directory, FIFO, ...

    ``what`` names the file in the messages, ``expected`` what it should have been.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        msg = f"{what} not found: {path}"
        raise FileNotFoundError(msg) from None
    if not stat.S_ISREG(mode):
        msg = f"{what} {path} is {_nature(mode)}, not {expected}"
        raise ValueError(msg)


def _nature(mode) -> str:
    """What a file of ``mode`` (`os.stat_result.st_mode`) is, in words."""

    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")  # fmt: skip


def check_replaceable(path) -> None:
    """Refuse, with a `ValueError` naming it, an output ``path`` that exists and is not a regular file.

    An output replaces only a regular file, or nothing: never a device (``/dev/null``), a FIFO, a socket
    or a directory, nor a symbolic link to one of them.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The output file.

    Raises
    ------
    ValueError
        If ``path`` (followed through links) is a device, FIFO, socket or directory.

    Examples
    --------
    >>> check_replaceable("/dev/null")
    Traceback (most recent call last):
    ...
    ValueError: output /dev/null is a device, not a regular file: an output replaces only a regular file
    """

    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there, or a dangling link (replaced, not followed)
        return
    if not stat.S_ISREG(mode):
        msg = f"output {path} is {_nature(mode)}, not a regular file: an output replaces only a regular file"
        raise ValueError(msg)


#: Output names of compressed formats that `write_fits` cannot write.
_UNSUPPORTED_COMPRESSION = (".bz2", ".z", ".zip", ".xz", ".zst", ".lz", ".lzma", ".7z", ".tar", ".tgz")
#: Output names of other formats: the output is always FITS, and a name that says otherwise misleads.
_OTHER_FORMATS = (".txt", ".csv", ".json", ".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".pdf", ".svg", ".h5",
                  ".hdf5", ".hdf", ".nc", ".cdf", ".npy", ".npz", ".asdf", ".jp2", ".sav", ".mat", ".pkl", ".zarr",
                  ".py", ".md", ".html", ".xml", ".toml", ".yaml", ".yml")  # fmt: skip


def check_new_file(path, *, overwrite: bool = False) -> Path:
    """Refuse an existing ``path`` unless ``overwrite``: the rule of every file this package writes.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A file to write.
    overwrite : bool
        Whether an existing file may be replaced.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    `~enhance.exceptions.OutputExistsError`
        If ``path`` exists and ``overwrite`` is off (a `FileExistsError`).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as handle:
    ...     check_new_file(handle.name)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    enhance.exceptions.OutputExistsError: /... exists; use --overwrite (overwrite=True) to replace it
    """
    path = Path(path)
    if path.exists() and not overwrite:
        msg = f"{path} exists; use --overwrite (overwrite=True) to replace it"
        raise OutputExistsError(msg)
    return path


def check_output(target, *, source=None) -> None:
    """Refuse an output before any work: a name of another format, a special file, or the input itself.

    Parameters
    ----------
    target : str or `~pathlib.Path`
        The FITS file to write.
    source : str or `~pathlib.Path`, optional
        The input file: the output must not be the same file, by any path or hard link (same device and
        inode, `os.stat`).

    Raises
    ------
    ValueError
        For an empty name, a ``.bz2``, ``.xz``, ``.zip``, ... name or that of another format (``.txt``, ``.png``,
        ``.h5``, ...: only ``.fits``, ``.fits.gz`` and ``.fits.fz`` are written), an existing target that is not
        a regular file (`check_replaceable`), or the input itself.

    Examples
    --------
    >>> check_output("out.fits.bz2")
    Traceback (most recent call last):
    ...
    ValueError: out.fits.bz2: only .fits, .fits.gz (gzip) and .fits.fz (RICE, --compress) outputs can be written
    """
    if not str(target).strip():  # Path("") is the current directory
        msg = "output must name a file, got an empty name"
        raise ValueError(msg)
    name = Path(target).name.lower()
    if name.endswith(_UNSUPPORTED_COMPRESSION + _OTHER_FORMATS):
        msg = f"{target}: only .fits, .fits.gz (gzip) and .fits.fz (RICE, --compress) outputs can be written"
        raise ValueError(msg)
    check_replaceable(target)
    if source is None:
        return
    try:
        a, b = os.stat(source), os.stat(target)
    except OSError:  # either is missing: not the same file
        return
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
        msg = f"output {target} is the input {source} (the same file): write the result to another file"
        raise ValueError(msg)


def fits_extent(path) -> tuple[int, int]:
    """``(claimed, size)``: the bytes a FITS file's headers claim (every HDU's data, padded to 2880-byte
    blocks) and the bytes it holds. One completeness rule for reading and for skipping an existing output:
    a file is complete when ``claimed <= size``.

    Only headers are read. A gzip file claims nothing here (0): its size says nothing before decompression.
    A part that cannot be parsed as a header ends the walk; a file whose first header cannot be parsed
    claims 0 bytes (it is no FITS file, and not complete).
    """
    path = Path(path)
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if handle.read(2) == b"\x1f\x8b":
            return 0, size
        end = 0
        while end < size:
            handle.seek(end)
            try:
                header = fits.Header.fromfile(handle)
            except (OSError, ValueError, EOFError, UnicodeDecodeError):
                return end, size  # junk after the last HDU, or (end 0) no FITS at all: astropy says which
            naxis = int(header.get("NAXIS", 0) or 0)
            dims = [int(header.get(f"NAXIS{i}", 0) or 0) for i in range(1, naxis + 1)]
            if header.get("GROUPS") is True and dims and dims[0] == 0:
                dims = dims[1:]
            pixels = int(np.prod(dims, dtype=object)) if dims else 0
            item = abs(int(header.get("BITPIX", 8))) // 8
            groups, heap = int(header.get("GCOUNT", 1) or 1), int(header.get("PCOUNT", 0) or 0)
            nbytes = item * groups * (heap + pixels)
            end = handle.tell() + -(-nbytes // 2880) * 2880
    return end, size


def fits_complete(path) -> bool:
    """True if ``path`` is a FITS file that holds everything its headers claim (`fits_extent`)."""
    try:
        claimed, size = fits_extent(path)
    except OSError:
        return False
    return 0 < claimed <= size


# Per-axis keys moved with their axis when degenerate axes are squeezed away.
_AXIS_KEYS = ("NAXIS", "CTYPE", "CRPIX", "CDELT", "CRVAL", "CUNIT", "CROTA", "CNAME", "CRDER", "CSYER")


def squeeze_header(header):
    """The header of the 2-D image that remains once degenerate (length-1) axes are squeezed away.

    When a degenerate axis comes first (e.g. NAXIS1 = 1 with CTYPE1 = 'WAVE'), the image axes are
    renumbered 1 and 2 with their keys (CTYPE, CRPIX, CDELT, CRVAL, CUNIT, ..., PCi_j, CDi_j) and the
    degenerate axes' keys are dropped. Trailing degenerate axes are left to `upscale_header`.
    """
    naxis = int(header.get("NAXIS", 0) or 0)
    if naxis <= 2:
        return header
    keep = [i for i in range(1, naxis + 1) if int(header.get(f"NAXIS{i}", 1) or 1) != 1]
    if len(keep) != 2 or keep == [1, 2]:
        return header
    new = header.copy()
    values = {(name, i): header[f"{name}{i}"] for name in _AXIS_KEYS for i in keep if f"{name}{i}" in header}
    pairs = {(m, i, j): header[f"{m}{i}_{j}"] for m in ("PC", "CD") for i in keep for j in keep
             if f"{m}{i}_{j}" in header}  # fmt: skip
    for name in _AXIS_KEYS:
        for i in range(1, naxis + 1):
            new.remove(f"{name}{i}", ignore_missing=True, remove_all=True)
    for m in ("PC", "CD"):
        for i in range(1, naxis + 1):
            for j in range(1, naxis + 1):
                new.remove(f"{m}{i}_{j}", ignore_missing=True, remove_all=True)
    number = {old: index for index, old in enumerate(keep, 1)}
    new["NAXIS"] = 2
    for (name, i), value in values.items():
        new[f"{name}{number[i]}"] = value
    for (m, i, j), value in pairs.items():
        new[f"{m}{number[i]}_{number[j]}"] = value
    return new


def read_map(path):
    """Read a FITS file into a `sunpy.map.Map` (first image HDU; see `read_fits`).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The FITS file.

    Returns
    -------
    `sunpy.map.GenericMap`
        The Map (sunpy picks the class from the header, e.g. an ``HMIMap``).

    Examples
    --------
    >>> from enhance.data import sample_path
    >>> read_map(sample_path("intensity")).dimensions
    PixelPair(x=<Quantity 200. pix>, y=<Quantity 200. pix>)
    """
    import sunpy.map

    data, header = read_fits(path)
    return sunpy.map.Map(data, header)


def upscale_header(header, factor=2, *, history=None, shape=None, provenance=None):
    """Header of an image resampled onto a grid ``factor`` times finer, with the same sky coverage.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict-like (e.g. a Map's ``meta``)
        The input header; it is not modified.
    factor : int
        Super-resolution factor; 2 for Enhance.
    history : str, optional
        A HISTORY line to add (model name and package version).
    shape : (ny, nx), optional
        The input image's shape, where the header has no NAXISi (e.g. a Map's ``meta``).
    provenance : dict, optional
        Cards that mark the output as written by solar-enhance (`provenance_cards`).

    Returns
    -------
    Same type as ``header``
        A copy with NAXISi multiplied by ``factor``, CDELTi and CDi_j divided by it (PCi_j unchanged),
        ``CRPIXi' = factor (CRPIXi - 0.5) + 0.5`` (1-based FITS pixels: output pixel centres keep the
        world coordinates of the input grid), and stale data statistics removed.

    Notes
    -----
    Output pixel ``k`` (0-based) covers input pixels ``[k/f - 0.5, (k+1)/f - 0.5)``, so its centre is
    input pixel ``(k + 0.5)/f - 0.5``. This is sunpy's ``resample`` rule. A missing CRPIXi is the
    image centre, ``(NAXISi + 1) / 2``, where sunpy puts the reference pixel of such a header (the FITS
    default, 0, would shift the grid by half the field of view); a missing CDELTi is 1. Both are
    written out explicitly, but for a header whose CD matrix gives the scale without CDELT (a CDELT
    beside it would be read as the scale by sunpy).

    Examples
    --------
    >>> from astropy.io import fits
    >>> header = fits.Header({"NAXIS": 2, "NAXIS1": 200, "NAXIS2": 200, "CRPIX1": 100.5, "CDELT1": 0.504})
    >>> new = upscale_header(header, 2)
    >>> new["NAXIS1"], new["CRPIX1"], new["CDELT1"]
    (400, 200.5, 0.252)
    """
    factor = check_positive(factor, name="factor")
    new = header.copy()
    # A plain dict of lower-case keys (e.g. dict(smap.meta)) keeps its case; Header and MetaDict ignore it.
    lower = not isinstance(header, fits.Header) and any(isinstance(k, str) and k.islower() for k in header)

    def key(name):
        return name.lower() if lower else name

    for axis in (1, 2):  # the image axes; a degenerate third axis was squeezed away by read_fits
        if key(f"NAXIS{axis}") in header:
            new[key(f"NAXIS{axis}")] = int(round(header[key(f"NAXIS{axis}")] * factor))
        crpix = header.get(key(f"CRPIX{axis}"))
        if crpix is None:  # sunpy's rule: the reference pixel of a header without CRPIX is the image centre
            size = header.get(key(f"NAXIS{axis}")) if shape is None else shape[2 - axis]
            crpix = (float(size) + 1.0) / 2.0 if size is not None else 0.0
        new[key(f"CRPIX{axis}")] = factor * (float(crpix) - 0.5) + 0.5
        matrix = [key(f"CD{axis}_{other}") for other in (1, 2) if key(f"CD{axis}_{other}") in header]
        for name in matrix:
            new[name] = float(header[name]) / factor
        if key(f"CDELT{axis}") in header or not matrix:  # a CD matrix alone gives the scale: no CDELT added
            new[key(f"CDELT{axis}")] = float(header.get(key(f"CDELT{axis}"), 1.0)) / factor
    # HMI keys in pixel units: the solar radius, the image scale and the 0-based disk-centre pixel.
    if key("R_SUN") in header:
        new[key("R_SUN")] = float(header[key("R_SUN")]) * factor
    if key("IMSCL_MP") in header:
        new[key("IMSCL_MP")] = float(header[key("IMSCL_MP")]) / factor
    for name in ("X0_MP", "Y0_MP"):
        if key(name) in header:
            new[key(name)] = factor * (float(header[key(name)]) + 0.5) - 0.5
    if key("NAXIS") in header and int(header[key("NAXIS")] or 2) > 2:
        new[key("NAXIS")] = 2
        for axis in range(3, int(header[key("NAXIS")]) + 1):
            for name in (
                f"NAXIS{axis}",
                f"CRPIX{axis}",
                f"CDELT{axis}",
                f"CRVAL{axis}",
                f"CTYPE{axis}",
                f"CUNIT{axis}",
            ):
                if key(name) in new:
                    del new[key(name)]
    for name in _STALE_KEYS:
        if key(name) in new:
            del new[key(name)]
    for name, value in (provenance or {}).items():
        new[key(name)] = value
    if history:
        if isinstance(new, fits.Header):
            new.add_history(history)
        else:
            previous = new.get("history", "")
            new["history"] = f"{previous}\n{history}" if previous else history
    return new


def _get(header, name, default=None):
    """``header[name]`` for a FITS header, a Map's ``meta`` or a plain dict of upper- or lower-case keys."""
    for key in (name, name.lower()):
        if key in header:
            return header[key]
    return default


def _words(header) -> str:
    keys = ("CONTENT", "SERIES", "DSNAME", "OBJECT", "TELESCOP")
    return " ".join(str(_get(header, key, "") or "") for key in keys).upper()


def _bunit(header) -> str:
    return str(_get(header, "BUNIT", "") or "").strip()


def detect_kind(header, *, measurement=None):
    """Tell whether a header describes a continuum image ('intensity') or a magnetogram ('blos').

    Looks at a Map's ``measurement`` (when given), CONTENT, the JSOC series name (``hmi.M_*`` or
    ``hmi.Ic_*`` in TELESCOP/SERIES/ORIGIN keys), and BUNIT.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict-like
        The header.
    measurement : str, optional
        A Map's ``measurement``, read first.

    Returns
    -------
    {'intensity', 'blos'} or None
        None when none of them decides.

    Examples
    --------
    >>> detect_kind({"BUNIT": "Mx/cm2"}), detect_kind({"CONTENT": "CONTINUUM INTENSITY"})
    ('blos', 'intensity')
    """
    measurement = str(measurement or "").lower()
    if "magnetogram" in measurement:
        return "blos"
    if "continuum" in measurement or "intensity" in measurement:
        return "intensity"
    words = _words(header)
    if "MAGNETOGRAM" in words or "HMI.M_" in words or "HMI.B_" in words:
        return "blos"
    if "CONTINUUM" in words or "HMI.IC_" in words or "INTENSITY" in words:
        return "intensity"
    unit = _bunit(header).lower()
    if unit in (*_GAUSS_UNITS, *_FIELD_UNITS):
        return "blos"
    if unit in _INTENSITY_UNITS:
        return "intensity"
    return None


def untrained_quantity(header, *, measurement=None):
    """What ``header`` holds if it is a quantity the networks were not trained on (e.g. 'a Dopplergram'), else None."""
    words = f"{_words(header)} {str(measurement or '').upper()}"
    unit = _bunit(header).lower()
    for keywords, units, name in _UNTRAINED:
        if any(word in words for word in keywords) or unit in units:
            return name
    return None


def gauss_factor(unit) -> float:
    """Gauss per unit of a magnetogram's ``unit``: 1000 for kG, 1e4 for T.

    Parameters
    ----------
    unit : str or `~astropy.units.UnitBase`
        An astropy unit or a BUNIT string.

    Returns
    -------
    float
        The factor to gauss.

    Raises
    ------
    ValueError
        If ``unit`` is not a magnetic flux density.

    Examples
    --------
    >>> gauss_factor("kG"), gauss_factor("T"), gauss_factor("Mx/cm2")
    (1000.0, 10000.0, 1.0)
    """
    text = unit if isinstance(unit, str) else None
    if text is not None:
        if text.strip().lower() in _GAUSS_UNITS:
            return 1.0
        try:
            unit = u.Unit(text.replace("cm2", "cm^2"), parse_strict="raise")
        except ValueError:
            msg = f"magnetogram unit {text!r} is not a magnetic flux density (G, kG, T, mT or Mx/cm2)"
            raise ValueError(msg) from None
    try:
        factor = float(u.Unit(unit).to(u.G))
    except u.UnitConversionError:
        msg = f"magnetogram unit {unit} is not a magnetic flux density (G, kG, T, mT or Mx/cm2)"
        raise ValueError(msg) from None
    return 1.0 if abs(factor - 1.0) < 1e-12 else factor


def _arcsec_per(unit: str) -> float | None:
    """Arcsec per unit of a CUNIT (any spelling of an angle astropy reads: ``arcseconds``, ``radians``), or None
    for one that is not an angle."""
    text = unit.strip().lower()
    if text in _ANGLE_TO_ARCSEC:
        return _ANGLE_TO_ARCSEC[text]
    for name in (unit.strip(), unit.strip()[:-1] if text.endswith("s") else None):  # astropy reads no plurals
        try:
            found = u.Unit(name, parse_strict="raise") if name else None
        except ValueError:
            continue
        if found is not None:
            return float(found.to(u.arcsec)) if found.physical_type == "angle" else None
    return None


def pixel_scale(header):
    """The pixel scale of ``header`` in arcsec per pixel, ``(axis 1, axis 2)``, or None without one.

    Reads CDELTi with PCi_j, or CDi_j, in the units of CUNITi (arcsec when absent for helioprojective
    axes, as sunpy assumes; degrees for other celestial axes, as FITS does). The scale along pixel axis
    ``j`` is the length of column ``j`` of the CD matrix, so a rotated grid has its true scale.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict-like
        The header.

    Returns
    -------
    tuple of float or None
        Arcsec per pixel along each axis.

    Examples
    --------
    >>> pixel_scale({"CD1_1": 0.504 / 3600, "CD2_2": 0.504 / 3600, "CUNIT1": "deg", "CUNIT2": "deg"})
    (0.504, 0.504)
    """
    has_cd = any(_get(header, f"CD{i}_{j}") is not None for i in (1, 2) for j in (1, 2))
    if not has_cd and _get(header, "CDELT1") is None and _get(header, "CDELT2") is None:
        return None
    cdelt = [_get(header, f"CDELT{i}") for i in (1, 2)]
    cdelt = [c if c is not None else next(o for o in cdelt if o is not None) for c in cdelt] if not has_cd else cdelt
    factors = []
    for i in (1, 2):
        ctype = str(_get(header, f"CTYPE{i}", "") or "").upper()
        default = "arcsec" if ctype.startswith(("HPLN", "HPLT", "SOLAR")) or not ctype else "deg"
        factor = _arcsec_per(str(_get(header, f"CUNIT{i}", default) or default))
        if factor is None:
            return None  # not an angle (e.g. a projected map in Mm): no pixel scale in arcsec
        factors.append(factor)
    matrix = np.zeros((2, 2))
    for i in (1, 2):
        for j in (1, 2):
            if has_cd:
                value = float(_get(header, f"CD{i}_{j}", 0.0) or 0.0)
            else:
                pc = _get(header, f"PC{i}_{j}", 1.0 if i == j else 0.0)
                value = float(cdelt[i - 1]) * float(pc)  # a missing CDELT: square pixels
            matrix[i - 1, j - 1] = value * factors[i - 1]
    scales = np.hypot(matrix[0], matrix[1])  # the length of each column
    return float(round(scales[0], 12)), float(round(scales[1], 12))


def written_by_enhance(header):
    """The solar-enhance version that wrote ``header`` (its `PROVENANCE_KEY` card), or None.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict-like
        The header.

    Returns
    -------
    str or None
        The version, or None for a file solar-enhance did not write.

    Examples
    --------
    >>> import enhance
    >>> written_by_enhance(provenance_cards(model="full", kind="intensity")) == enhance.__version__
    True
    >>> written_by_enhance({"BUNIT": "G"}) is None
    True
    """
    value = _get(header, PROVENANCE_KEY)
    if value is not None:
        return str(value)
    history = _get(header, "HISTORY", "")
    text = str(history) if isinstance(history, str) else "\n".join(str(line) for line in history)
    found = re.search(r"solar-enhance (\S+): Enhance x2", text)
    return found.group(1) if found else None


def provenance_cards(*, model: str, kind: str) -> dict:
    """Header cards that mark an output of solar-enhance: its version, the model and the kind.

    Parameters
    ----------
    model : str
        The model that made the output ('full', 'light' or a weights file's name).
    kind : {'intensity', 'blos'}
        What was enhanced.

    Returns
    -------
    dict
        ``{PROVENANCE_KEY: version, "ENH_MODL": model, "ENH_KIND": kind}``.

    Examples
    --------
    >>> cards = provenance_cards(model="light", kind="blos")
    >>> cards["ENH_MODL"], cards["ENH_KIND"]
    ('light', 'blos')
    """
    return {PROVENANCE_KEY: __version__, "ENH_MODL": model[:68], "ENH_KIND": kind}


def _is_helioprojective(header) -> tuple[bool, str]:
    ctypes = [str(_get(header, f"CTYPE{i}", "") or "").strip().upper() for i in (1, 2)]
    if not any(ctypes):
        return True, "no CTYPE (sunpy reads it as helioprojective)"
    ok = all(c.startswith(("HPLN", "HPLT", "SOLAR-X", "SOLAR-Y", "SOLX", "SOLY")) for c in ctypes)
    return ok, f"CTYPE {ctypes[0]!r}, {ctypes[1]!r}"


#: Share of the solar radius inside the limb where the networks were not trained: the steep fall-off of
#: the continuum intensity (limb darkening beyond mu = 0.2) holds nothing like their training scenes.
LIMB_BAND = 0.02
#: Sun's radius (m), for a header that gives the observer's distance (DSUN_OBS) but no RSUN_OBS.
_RSUN_REF = 695700e3
#: The keys of a 2-D image's world coordinate system.
_WCS_KEY = re.compile(r"^(CTYPE|CUNIT|CRPIX|CDELT|CRVAL|CROTA)[12]$|^(PC|CD)[12]_[12]$|^(LONPOLE|LATPOLE)$")


#: The Sun's smallest apparent radius from SDO, arcsec: 695,700 km seen from 1.0167 au (aphelion) plus SDO's
#: geosynchronous orbit (42,000 km), which `limb_pixels` assumes for a header that gives neither RSUN_OBS nor DSUN_OBS.
RSUN_SMALLEST = 943.2
#: RSUN_OBS values (arcsec) believed: from about 10 au (100") to 0.027 au (36 000"; Parker Solar Probe's perihelion,
#: 0.046 au, sees about 21 000").
_RSUN_BELIEVED = (100.0, 36000.0)


def _rsun_arcsec(header, fallback=None):
    """The Sun's apparent radius in arcsec from RSUN_OBS (within `_RSUN_BELIEVED`), or RSUN_REF (default
    695,700 km) and DSUN_OBS; else ``fallback``."""
    rsun = _get(header, "RSUN_OBS")
    if isinstance(rsun, int | float) and not isinstance(rsun, bool) and _RSUN_BELIEVED[0] < rsun < _RSUN_BELIEVED[1]:
        return float(rsun)
    distance, radius = _get(header, "DSUN_OBS"), _get(header, "RSUN_REF", _RSUN_REF)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in (distance, radius)):
        return fallback
    if radius >= distance:
        return fallback
    return float(np.degrees(np.arcsin(radius / distance)) * 3600.0)


#: Degrees per unit of CUNIT, for `_farthest_arcsec`.
_DEGREES = {"arcsec": 1 / 3600, "arcmin": 1 / 60, "deg": 1.0, "rad": 180 / np.pi, "mas": 1 / 3.6e6}


def _farthest_arcsec(keys, shape) -> float:
    """An upper bound of the angular distance (arcsec) from disk centre of every pixel of a helioprojective
    gnomonic (``-TAN``) image of ``shape``, without a WCS; infinity where the header is of another kind.

    A pixel at intermediate coordinates ``r`` (degrees) lies ``arctan(r) <= r`` from the reference point (a
    zenithal projection: any LONPOLE), ``|r|``, convex in the pixel, peaks at a corner, and the reference point
    lies ``arccos(cos CRVAL1 cos CRVAL2)`` from disk centre: the triangle inequality adds the two.
    """
    try:
        ctypes = [str(keys.get(f"CTYPE{i}", "")).strip().upper() for i in (1, 2)]
        scale = {_DEGREES[str(keys[f"CUNIT{i}"]).strip().lower()] for i in (1, 2)}
        crpix = np.array([float(keys.get("CRPIX1", 0.0)), float(keys.get("CRPIX2", 0.0))])
        crval = np.radians([float(keys.get("CRVAL1", 0.0)), float(keys.get("CRVAL2", 0.0))]) * min(scale)
        matrix = _linear_part(keys)
    except (KeyError, TypeError, ValueError):
        return np.inf
    if not all(c.endswith("-TAN") for c in ctypes) or len(scale) != 1 or matrix is None:
        return np.inf
    corners = np.array([[x, y] for x in (1, shape[1]) for y in (1, shape[0])], dtype=float) - crpix
    reach = np.radians(np.hypot(*(matrix @ corners.T)).max() * min(scale))
    centre = np.arccos(np.clip(np.cos(crval[0]) * np.cos(crval[1]), -1.0, 1.0))
    bound = float(np.degrees(centre + reach) * 3600.0) * (1 + 1e-9)
    return bound if np.isfinite(bound) else np.inf


def _linear_part(keys):
    """The matrix from pixel offsets to intermediate coordinates (CUNIT) of CD, PC and CDELT, or CROTA2 and
    CDELT (Calabretta & Greisen 2002, eq. 188); None for a mixture of them."""
    has = {prefix: any(re.fullmatch(rf"{prefix}[12](_[12])?", k) for k in keys) for prefix in ("CD", "PC", "CROTA")}
    if has["CD"]:
        if has["PC"] or has["CROTA"]:
            return None
        return np.array([[float(keys.get(f"CD{i}_{j}", 0.0)) for j in (1, 2)] for i in (1, 2)])
    delta = np.array([float(keys["CDELT1"]), float(keys["CDELT2"])])
    if has["PC"]:
        return delta[:, None] * np.array([[float(keys.get(f"PC{i}_{j}", i == j)) for j in (1, 2)] for i in (1, 2)])
    if float(keys.get("CROTA1", keys.get("CROTA2", 0.0))) != float(keys.get("CROTA2", 0.0)):
        return None
    rho = np.radians(float(keys.get("CROTA2", 0.0)))
    return np.array([[np.cos(rho), -np.sin(rho)], [np.sin(rho), np.cos(rho)]]) * delta[None, :]


def limb_pixels(header, finite, *, within: float = LIMB_BAND) -> int:
    """How many pixels with data lie farther than ``1 - within`` solar radii from the disk centre.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict-like
        The image's header (a Map's ``meta``): helioprojective CTYPEs (HPLN, HPLT) say where the disk is, and
        RSUN_OBS, or DSUN_OBS, its radius. Without the CTYPEs the answer is 0; without a radius,
        `RSUN_SMALLEST` (the Sun at its farthest from Earth) is assumed.
    finite : (ny, nx) bool ndarray
        Where the image holds data.
    within : float
        The band inside the limb, as a share of the solar radius; default `LIMB_BAND` (2 %).

    Returns
    -------
    int
        The number of such pixels (counted on every pixel of images up to 1024 pixels a side, on a
        regular grid of about that many above).

    Examples
    --------
    >>> header = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec",
    ...           "CDELT1": 0.504, "CDELT2": 0.504, "CRPIX1": 10.5, "CRPIX2": 10.5, "CRVAL1": 975.0,
    ...           "CRVAL2": 0.0, "RSUN_OBS": 975.0}
    >>> limb_pixels(header, np.ones((20, 20), bool))  # the limb crosses the middle of the cut-out
    400
    """
    finite = np.asarray(finite, dtype=bool)
    found = _disk_keys(header, RSUN_SMALLEST)  # no pixel near the limb unwarned for want of the Sun's radius
    if found is None:
        return 0
    keys, rsun = found
    if _farthest_arcsec(keys, finite.shape) < (1.0 - within) * rsun:
        return 0  # the whole cut-out lies inside the band: no WCS needed (astropy.wcs takes 0.2 s to load)
    step = max(1, -(-max(finite.shape) // 1024))
    radius = _grid_radius(keys, rsun, finite.shape, step)
    if radius is None:
        return 0  # a header astropy cannot read gives no advice
    return int(np.count_nonzero((radius > 1.0 - within) & finite[::step, ::step])) * step * step


def disk_radius(header, shape) -> np.ndarray | None:
    """Each pixel's distance from the centre of the solar disk, in solar radii, from a helioprojective header.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict-like
        The image's header (a Map's ``meta``): helioprojective CTYPEs (HPLN, HPLT), the pixel scale and
        RSUN_OBS, or DSUN_OBS.
    shape : tuple of int
        ``(ny, nx)`` of the image.

    Returns
    -------
    (ny, nx) `~numpy.ndarray` or None
        The angular distance from disk centre over the Sun's apparent radius (above 1 off the disk), or None
        when the header does not place the image on the Sun or astropy cannot read it.

    Examples
    --------
    >>> header = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 0.504, "CDELT2": 0.504,
    ...           "CRPIX1": 1.0, "CRPIX2": 1.0, "CRVAL1": 480.0, "CRVAL2": 0.0, "RSUN_OBS": 960.0}
    >>> round(float(disk_radius(header, (2, 2))[0, 0]), 6)
    0.5
    """
    found = _disk_keys(header)
    return None if found is None else _grid_radius(*found, shape, 1)


def _disk_keys(header, fallback=None):
    """``(WCS keys, solar radius in arcsec)`` of a header that places its image on the Sun, else None; ``fallback``
    is the radius of a header that gives none."""
    rsun = _rsun_arcsec(header, fallback)
    ctypes = [str(_get(header, f"CTYPE{i}", "") or "").strip().upper() for i in (1, 2)]
    if rsun is None or not (ctypes[0].startswith("HPLN") and ctypes[1].startswith("HPLT")):
        return None
    keys = _scaled_wcs_keys(header)
    if keys is None:
        return None  # no pixel scale: where the pixels are is not known
    return {"CUNIT1": "arcsec", "CUNIT2": "arcsec", **keys}, rsun  # sunpy's reading of a helioprojective header


def _scaled_wcs_keys(header):
    """The header's WCS keys (`_WCS_KEY`), upper case, or None where they give no pixel scale (no CDELTi, no CD)."""
    keys = {str(k).upper(): v for k, v in dict(header).items() if _WCS_KEY.match(str(k).upper())}
    return keys if {"CDELT1", "CDELT2"} <= keys.keys() or "CD1_1" in keys else None


def _grid_radius(keys, rsun, shape, step):
    """Distance from disk centre (solar radii) of every ``step``-th pixel, through astropy's WCS; None where
    astropy cannot read the keys."""
    from astropy.wcs import WCS  # only near the limb or for a noise map: astropy.wcs takes 0.2 s to load

    rows, cols = np.mgrid[0 : shape[0] : step, 0 : shape[1] : step]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITSFixedWarning and the like
        try:
            lon, lat = WCS(fits.Header(keys)).celestial.pixel_to_world_values(cols, rows)
        except Exception:  # noqa: BLE001 - astropy raises many types for a header it cannot read
            return None
    lon, lat = (np.radians(np.asarray(value, dtype=float)) for value in (lon, lat))
    return np.degrees(np.arccos(np.clip(np.cos(lon) * np.cos(lat), -1.0, 1.0))) * 3600.0 / rsun


def warn_near_limb(header, finite, *, name: str) -> int:
    """Warn if pixels with data lie within `LIMB_BAND` of the solar radius of the limb, or beyond it
    (`limb_pixels`), where the networks were not trained.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict-like
        The image's header (a Map's ``meta``).
    finite : (ny, nx) bool ndarray
        Where the image holds data.
    name : str
        The image's name in the warning (its path).

    Returns
    -------
    int
        The number of such pixels.

    Warns
    -----
    `~enhance.exceptions.EnhanceUserWarning`
        If there are any.

    Examples
    --------
    >>> header = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 0.504, "CDELT2": 0.504, "CRPIX1": 2.5,
    ...           "CRPIX2": 2.5, "CRVAL1": 0.0, "CRVAL2": 0.0, "RSUN_OBS": 975.0}
    >>> warn_near_limb(header, np.ones((4, 4), bool), name="a cut-out at disk centre")
    0
    """
    count = limb_pixels(header, finite)
    if count:
        share = 100.0 * count / max(int(np.count_nonzero(finite)), 1)
        msg = (f"{name}: {count} pixels with data ({share:.2g} %) lie beyond {1 - LIMB_BAND:g} solar radii, within "
               f"{100 * LIMB_BAND:g} % of the radius from the limb or off the disk, where the networks were not "
               "trained; do not trust the output there")  # fmt: skip
        warnings.warn(msg, exceptions.EnhanceUserWarning, stacklevel=2)
    return count


def _frame_name(ctypes: str) -> str:
    if "CEA" in ctypes:
        return "a cylindrical equal-area (CEA) map, e.g. a SHARP or a synoptic map"
    if "CRLN" in ctypes or "CRLT" in ctypes:
        return "a Carrington (heliographic) map"
    if "HGLN" in ctypes or "HGLT" in ctypes:
        return "a Stonyhurst heliographic map"
    return "not a helioprojective image"


def check_header(header, *, kind, path="input", force=False, flag=False) -> None:
    """Refuse inputs the networks were not made for, saying what the input is and how to force it.

    Checks that the grid is helioprojective (not CEA, Carrington or Stonyhurst heliographic) with angular
    CUNITs, that the pixel scale (CDELT with PC, or CD, in any angle unit) is within 5 % of HMI's 0.504 arcsec, that
    the file was not written by solar-enhance (`written_by_enhance`), and that a continuum image is not
    a magnetogram by its header.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict-like
        The input's header (a Map's ``meta``).
    kind : {'intensity', 'blos'}
        The kind it will be enhanced as.
    path : str
        The name of the input in messages.
    force : bool
        Skip these checks.
    flag : bool
        Name the command-line options (``--force``, ``-t``) in messages instead of the Python keywords.

    Raises
    ------
    ValueError
        If a check fails.

    Examples
    --------
    >>> check_header({"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 0.504, "CDELT2": 0.504,
    ...               "CUNIT1": "arcsec", "CUNIT2": "arcsec"}, kind="intensity")
    >>> check_header({"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 20.0, "CDELT2": 20.0,
    ...               "CUNIT1": "arcsec", "CUNIT2": "arcsec"}, kind="intensity")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    _check_invertible(header, path)  # whatever force: no output can have a valid WCS then
    if force:
        return
    how = "pass --force" if flag else "pass force=True"
    version = written_by_enhance(header)
    if version is not None:
        scale = pixel_scale(header)
        at = f" at {scale[0]:.3g} arcsec/pixel" if scale else ""
        msg = (f"{path} was written by solar-enhance {version} ({PROVENANCE_KEY} card){at}: it is already "
               f"enhanced, and enhancing it again would not mean anything; {how} to run it anyway")  # fmt: skip
        raise ValueError(msg)
    ok, described = _is_helioprojective(header)
    if not ok:
        what = _frame_name(described.upper())
        msg = (f"{path} is {what} ({described}); the networks were trained on helioprojective HMI images "
               f"(HPLN-TAN/HPLT-TAN); enhance the image before remapping it, or {how} to run it anyway")  # fmt: skip
        raise ValueError(msg)
    for i in (1, 2):
        ctype = str(_get(header, f"CTYPE{i}", "") or "").upper()
        unit = str(_get(header, f"CUNIT{i}", "") or "").strip()
        if ctype.startswith(("HPLN", "HPLT")) and unit and _arcsec_per(unit) is None:
            msg = (f"{path} has CUNIT{i} = {unit!r}, not an angle: a helioprojective axis is in arcsec or degrees, "
                   f"and its pixel scale cannot be read; fix the header, or {how} to run it anyway")  # fmt: skip
            raise ValueError(msg)
    scale = pixel_scale(header)
    if scale is not None:
        hmi = constants.HMI_PIXEL_SCALE.to_value(u.arcsec)
        worst = max(scale, key=lambda value: abs(value - hmi))
        if abs(worst - hmi) > PIXEL_SCALE_TOLERANCE * hmi:
            msg = (f"{path} has a pixel scale of {worst:.6g} arcsec, more than 5 % from HMI's {hmi} "
                   "arcsec; the networks were trained on HMI's sampling (resample it to 0.504 arcsec/pixel "
                   f"first), or {how} to run it anyway")  # fmt: skip
            raise ValueError(msg)
    if kind == "intensity" and detect_kind(header) == "blos":
        flag_text = "-t blos" if flag else "kind='blos'"
        msg = (f"{path} looks like a magnetogram (BUNIT {_bunit(header)!r}, CONTENT "
               f"{str(_get(header, 'CONTENT', '') or '')!r}) but was given as intensity; use {flag_text}, or "
               f"{how} to run it as intensity")  # fmt: skip
        raise ValueError(msg)


def _check_invertible(header, path) -> None:
    """`ValueError` when the header's matrix from pixels to the sky (CDELT with PC or CROTA2, or CD) is singular:
    a zero CDELT, or a PC matrix of equal rows, puts every pixel on one line of the sky."""
    keys = _scaled_wcs_keys(header)
    if keys is None:
        return
    try:
        matrix = _linear_part(keys)
    except (TypeError, ValueError):  # values that are not numbers: refused elsewhere, with their key
        return
    if matrix is not None and np.all(np.isfinite(matrix)) and not abs(np.linalg.det(matrix)) > 0:
        msg = (f"{path}: its matrix from pixels to the sky (CDELT with PC or CROTA2, or CD) is singular, which "
               "puts every pixel on one line of the sky: not a valid WCS; fix the header")  # fmt: skip
        raise ValueError(msg)


def resolve_kind(requested, header, *, path="input", force=False, flag=None, measurement=None):
    """The data kind for ``requested`` ('intensity', 'blos' or 'auto'), checked against the header.

    'auto' reads the header (`detect_kind`). Quantities the networks were not trained on
    (Dopplergrams, line widths, vector-field angles) are refused, magnetograms in a file must be in
    gauss (BUNIT G, Gauss or Mx/cm^2, or no BUNIT), and `check_header` refuses the rest; ``force``
    skips these checks.

    Parameters
    ----------
    requested : {'intensity', 'blos', 'auto'}
        The kind asked for.
    header : `~astropy.io.fits.Header` or dict-like
        The input's header.
    path : str
        The name of the input in messages.
    force : bool
        Run inputs the checks would refuse.
    flag : bool, optional
        Name command-line options in messages (``-t``, ``--force``); default: when ``path`` is a file.
    measurement : str, optional
        A Map's ``measurement``, read before the header keys.

    Raises
    ------
    ValueError
        If ``requested`` is 'auto' and the header does not say (no BUNIT, CONTENT or series name), the
        input holds an untrained quantity, a magnetogram in a file is not in gauss, or `check_header`
        refuses the input.

    Returns
    -------
    {'intensity', 'blos'}
        The kind to enhance the input as.

    Examples
    --------
    >>> resolve_kind("auto", {"BUNIT": "G"})
    'blos'
    """
    flag = isinstance(path, str | os.PathLike) and path not in ("input", "map") if flag is None else flag
    how = "--force" if flag else "force=True"
    untrained = untrained_quantity(header, measurement=measurement)
    if untrained and not force:
        msg = (f"{path} is {untrained} (BUNIT {_bunit(header)!r}, CONTENT {str(_get(header, 'CONTENT', '') or '')!r});"
               " the networks were trained on continuum intensity and line-of-sight magnetograms only; pass "
               f"{'-t intensity|blos and --force' if flag else 'kind= and force=True'} to run it anyway")  # fmt: skip
        raise ValueError(msg)
    kind = detect_kind(header, measurement=measurement) if requested == "auto" else requested
    if kind is None:
        how_kind = "pass -t intensity or -t blos" if flag else "pass kind='intensity' or kind='blos'"
        msg = (
            f"{path}: kind='auto' cannot tell continuum from magnetogram (no BUNIT, CONTENT or series name); {how_kind}"
        )
        raise ValueError(msg)
    unit = _bunit(header)
    field_unit = bool(unit) and (_in_gauss(unit) or unit.lower() in _FIELD_UNITS)
    if kind == "intensity" and field_unit and detect_kind(header, measurement=measurement) != "blos" and not force:
        flag_text, content = "-t blos" if flag else "kind='blos'", str(_get(header, "CONTENT", "") or "")
        msg = (f"{path} is in {unit!r}, a magnetic field, but is taken for a continuum image (CONTENT {content!r}); "
               f"use {flag_text}, or {how} to run it as intensity")  # fmt: skip
        raise ValueError(msg)
    if kind == "blos" and unit and not _in_gauss(unit) and not force:
        if unit.lower() in _FIELD_UNITS and not flag:
            pass  # a Map or Quantity in kG/T: `enhance` converts it to gauss and back
        else:
            msg = (f"{path}: magnetograms must be in gauss, got BUNIT {unit!r}; convert the data to G first, or "
                   f"pass {how} if the values are in gauss")  # fmt: skip
            raise ValueError(msg)
    check_header(header, kind=kind, path=path, force=force, flag=flag)
    return kind


def _in_gauss(unit: str) -> bool:
    """Whether BUNIT ``unit`` is gauss by any spelling astropy reads as it (``'Mx cm^-2'``, ``'G'``)."""
    if unit.lower() in _GAUSS_UNITS:
        return True
    try:
        return gauss_factor(unit) == 1.0
    except ValueError:
        return False


def atomic_write(path, writer, *, overwrite=False):
    """Call ``writer(tmp_path)`` and move the result onto ``path`` only once it is complete.

    A failure leaves no partial file; an existing ``path`` is replaced only with ``overwrite``. Without
    ``overwrite`` the file is published with a hard link, which fails if ``path`` appeared meanwhile, so
    two concurrent writers cannot replace each other's output (where links are not supported, a rename
    after a last check).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file to publish.
    writer : callable
        ``writer(tmp_path)`` writes the complete file at ``tmp_path``.
    overwrite : bool
        Replace an existing ``path``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    `~enhance.exceptions.OutputExistsError`
        If ``path`` exists and ``overwrite`` is off.
    `~enhance.exceptions.DiskFullError`
        If the file system is full or the quota exhausted while the file is written (nothing is left).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = atomic_write(f"{folder}/notes.txt", lambda tmp: pathlib.Path(tmp).write_text("done"))
    ...     print(path.read_text())
    done
    """
    path = Path(path)
    check_replaceable(path)  # a device, FIFO or directory is never replaced, with or without overwrite
    check_new_file(path, overwrite=overwrite)
    if not path.parent.is_dir():
        msg = f"output directory not found: {path.parent}"
        raise FileNotFoundError(msg)
    with _disk_full(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_PART_SUFFIX, dir=path.parent)
    try:
        _lock(fd)  # held while the file is written: `remove_stale_parts` leaves it alone
        with _disk_full(path):
            writer(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        if overwrite:
            check_replaceable(path)  # again: it may have become one while the file was written
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        os.close(fd)
    return path


@contextlib.contextmanager
def _disk_full(path):
    """An `OSError` of a full file system or quota (by its errno) as a `~enhance.exceptions.DiskFullError`."""
    try:
        yield
    except OSError as err:
        if err.errno not in DiskFullError.ERRNOS or isinstance(err, DiskFullError):
            raise
        raise DiskFullError(err.errno, err.strerror or os.strerror(err.errno), str(path)) from err


_PART_SUFFIX = ".part"
# `atomic_write`'s temporary files: "." + the target's name + "." + mkstemp's 8 characters + ".part".
_PART_NAME = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.part$")


def _lock(fd, *, block=True) -> bool:
    """Take an exclusive `fcntl.flock` on ``fd``; False if another process holds it, or if the platform or
    file system has no flock (then a writer goes on unlocked and `remove_stale_parts` deletes nothing)."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except OSError:  # BlockingIOError: held elsewhere; ENOLCK etc.: no locks on this file system
        return False
    return True


def remove_stale_parts(directory, *, targets=None, min_age=5.0) -> list[Path]:
    """Delete the temporary ``.part`` files that `atomic_write` left in ``directory`` when its process was
    killed (SIGKILL, power loss), and return them.

    Only files of `atomic_write`'s own naming are touched (``.<name>.XXXXXXXX.part``, where ``<name>``
    ends with a FITS suffix or ``.csv``, or is one of ``targets``), and only those whose writer is gone:
    a writer holds an exclusive lock on its file until it is published, so a concurrent run's file in
    progress is left alone. Files modified less than ``min_age`` seconds ago are kept too (a writer locks
    its file just after creating it).
    """
    removed = []
    names = {Path(t).name for t in targets} if targets is not None else None
    for entry in Path(directory).iterdir():
        match = _PART_NAME.match(entry.name)
        if match is None:
            continue
        target = match["target"]
        if not (target.lower().endswith((*FITS_SUFFIXES, ".csv")) or (names and target in names)):
            continue
        try:
            fd = os.open(entry, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue  # a link, a FIFO, gone meanwhile
        try:
            info = os.fstat(fd)
            old = time.time() - info.st_mtime >= min_age
            if stat.S_ISREG(info.st_mode) and old and _lock(fd, block=False):
                entry.unlink(missing_ok=True)
                removed.append(entry)
        finally:
            os.close(fd)
    return removed


def _publish_new(tmp, path: Path) -> None:
    """Move ``tmp`` to ``path``, failing with `FileExistsError` if ``path`` exists, atomically."""
    try:
        os.link(tmp, path)  # atomic: fails if path exists
    except FileExistsError:
        msg = f"{path} exists; use --overwrite (overwrite=True) to replace it"
        raise OutputExistsError(msg) from None
    except OSError:  # no hard links on this file system
        check_new_file(path)
        os.replace(tmp, path)


def write_fits(path, data, header=None, *, overwrite=False, extra_hdus=(), quantize_step=None):
    """Write an image (and optional extra HDUs) to a FITS file atomically.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Destination.
    data : (ny, nx) `~numpy.ndarray`
        The image.
    header : `~astropy.io.fits.Header` or dict-like, optional
        Header cards to keep; structural keys are rewritten to match ``data``.
    overwrite : bool
        Replace an existing file; without it an existing file raises `FileExistsError`.
    extra_hdus : sequence of `~astropy.io.fits.ImageHDU`
        Further HDUs (e.g. a consistency map).
    quantize_step : float, optional
        Write the image RICE tile-compressed (a `~astropy.io.fits.CompImageHDU` in HDU 1, as JSOC serves
        HMI): float pixels are quantised with this absolute step, in the image's units (error at most
        half of it, uniform with a subtractive dither of fixed seed, so the file is reproducible; NaN and
        exact zeros are kept). Needed for a ``.fits.fz`` name; a ``.gz`` name is gzip-compressed whole.

    Raises
    ------
    ValueError
        For a ``.fz`` name without ``quantize_step``, or another compressed name (``.bz2``, ``.Z``, ...).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_fits(f"{folder}/out.fits", np.zeros((4, 6), np.float32), {"BUNIT": "G"})
    ...     data, header = read_fits(path)
    ...     print(data.shape, header["BUNIT"])
    (4, 6) G
    """
    path = Path(path)
    name = path.name.lower()
    check_output(path)
    if name.endswith(".fz") and quantize_step is None:
        msg = f"{path}: a .fz name means a tile-compressed file; pass quantize_step (--compress) or name it .fits"
        raise ValueError(msg)
    if quantize_step is not None and not (np.isfinite(quantize_step) and quantize_step > 0):
        msg = f"quantize_step must be a positive number, got {quantize_step!r}"
        raise ValueError(msg)
    card_header = fits.Header()
    if header is not None:
        for key, value in header.items() if isinstance(header, fits.Header) else dict(header).items():
            if key.upper() in _SKIP_ON_WRITE:
                continue
            comment = header.comments[key] if isinstance(header, fits.Header) else ""
            try:
                card_header[key] = _with_comment(key, value, comment or CARD_COMMENTS.get(key.upper(), ""))
            except (ValueError, TypeError, KeyError):
                continue  # not representable in FITS (e.g. a sunpy-only meta entry)
        if isinstance(header, fits.Header):
            for key in ("HISTORY", "COMMENT"):
                for value in header.get(key, []):
                    card_header.add_history(str(value)) if key == "HISTORY" else card_header.add_comment(str(value))
        else:
            for line in str(dict(header).get("history", "")).splitlines():
                if line:
                    card_header.add_history(line)
    if quantize_step is None:
        hdul = fits.HDUList([fits.PrimaryHDU(np.asarray(data), header=card_header), *extra_hdus])
    else:
        image = fits.CompImageHDU(np.asarray(data), header=card_header, compression_type="RICE_1",
                                  quantize_level=-float(quantize_step), quantize_method=2, dither_seed=1)  # fmt: skip
        hdul = fits.HDUList([fits.PrimaryHDU(), image, *extra_hdus])

    def writer(tmp):
        if not name.endswith(".gz"):
            hdul.writeto(tmp, overwrite=True, output_verify="silentfix")
            return

        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as handle:
            hdul.writeto(handle, output_verify="silentfix")

    return atomic_write(path, writer, overwrite=overwrite)


def _with_comment(key, value, comment):
    """``(value, comment)`` where the comment fits on one card beside the value, else ``value`` alone."""
    if not comment or len(key) > 8 or not isinstance(value, str | int | float):
        return value
    width = len(fits.Card(key, value).image.rstrip())  # a string too long for one card continues: no room
    return (value, comment) if width + 3 + len(comment) <= 80 else value


def write_map(path, smap, *, overwrite=False):
    """Write a `sunpy.map.Map` to FITS atomically (see `write_fits`).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Destination.
    smap : `sunpy.map.GenericMap`
        The Map; its data and ``meta`` are written.
    overwrite : bool
        Replace an existing file; without it an existing file raises `FileExistsError`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from enhance.data import sample_path
    >>> smap = read_map(sample_path("blos"))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     print(read_map(write_map(f"{folder}/copy.fits", smap)).dimensions == smap.dimensions)
    True
    """
    return write_fits(path, smap.data, smap.meta, overwrite=overwrite)


#: EXTNAME of the extension that holds the uncertainty of an enhanced image (``enhance run --uncertainty``).
UNCERTAINTY_EXTNAME = "UNCERT"


def uncertainty_hdu(sigma, header=None) -> fits.ImageHDU:
    """The standard deviation of each enhanced pixel's error as a FITS extension, on the image's grid.

    Parameters
    ----------
    sigma : (ny, nx) `~numpy.ndarray`
        The uncertainty, in the image's unit.
    header : `~astropy.io.fits.Header` or dict-like, optional
        The enhanced image's header: its coordinate keys and BUNIT are copied, so the extension has the
        image's WCS and unit.

    Returns
    -------
    `~astropy.io.fits.ImageHDU`
        EXTNAME `UNCERTAINTY_EXTNAME` ('UNCERT'), float32, with ``UTYPE = 'StdDevUncertainty'``: astropy's
        `~astropy.nddata.CCDData.read` reads the file as the image with this uncertainty.

    Examples
    --------
    >>> hdu = uncertainty_hdu(np.ones((4, 4)), {"BUNIT": "G", "CDELT1": 0.252})
    >>> hdu.name, hdu.header["BUNIT"], hdu.header["CDELT1"], hdu.header["UTYPE"]
    ('UNCERT', 'G', 0.252, 'StdDevUncertainty')
    """
    cards = fits.Header()
    items = header.items() if isinstance(header, fits.Header) else dict(header or {}).items()
    for key, value in items:
        if key.upper() in _SKIP_ON_WRITE or key.upper() in _STALE_KEYS or key.upper().startswith("NAXIS"):
            continue
        try:
            cards[key] = value
        except (ValueError, TypeError, KeyError):
            continue  # not representable in FITS (e.g. a sunpy-only meta entry)
    cards["EXTNAME"] = UNCERTAINTY_EXTNAME
    cards["UTYPE"] = ("StdDevUncertainty", "one standard deviation of each pixel's error")
    cards.add_comment("standard deviation of the error of each pixel of the enhanced image, in its unit (BUNIT)")
    return fits.ImageHDU(np.asarray(sigma, dtype=np.float32), header=cards)


def __getattr__(name):
    if name == "HMI_PIXEL_SCALE":  # 0.4.0's float copy of the fact; it goes in 0.6.0
        msg = ("enhance.io.HMI_PIXEL_SCALE is deprecated and goes in 0.6.0: use enhance.constants.HMI_PIXEL_SCALE "
               "(a Quantity, 0.504 arcsec)")  # fmt: skip
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        return constants.HMI_PIXEL_SCALE.to_value(u.arcsec)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
