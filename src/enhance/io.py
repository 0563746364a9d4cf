"""FITS in and out: reading HMI files, the header of the x2 grid, and atomic writes."""

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from .checks import check_positive

__all__ = [
    "read_fits",
    "read_map",
    "write_fits",
    "write_map",
    "upscale_header",
    "detect_kind",
    "resolve_kind",
    "fits_stem",
    "atomic_write",
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
    """
    path = Path(path)
    if not path.is_file():
        msg = f"input file not found: {path}"
        raise FileNotFoundError(msg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False) as hdul:
                hdu = _image_hdu(hdul, path)
                raw = hdu.data
                header = hdu.header.copy()
        except OSError as err:
            msg = f"{path} is not a readable FITS file: {err}"
            raise ValueError(msg) from err
    for warning in caught:
        if "truncated" in str(warning.message):  # astropy only warns; the data would be incomplete
            msg = f"{path} is truncated or corrupt: {warning.message}"
            raise ValueError(msg)
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    data = np.squeeze(raw) if raw.ndim > 2 else raw
    if data.ndim != 2:
        msg = f"{path}: the image must be 2-D (ny, nx), got shape {raw.shape}"
        raise ValueError(msg)
    if data.dtype.kind not in "iuf":
        msg = f"{path}: unsupported image dtype {data.dtype}"
        raise ValueError(msg)
    dtype = np.float32 if data.dtype.kind == "f" and data.dtype.itemsize == 4 else np.float64
    return np.array(data, dtype=dtype, copy=True), header


def read_map(path):
    """Read a FITS file into a `sunpy.map.Map` (first image HDU; see `read_fits`)."""
    import sunpy.map

    data, header = read_fits(path)
    return sunpy.map.Map(data, header)


def upscale_header(header, factor=2, *, history=None):
    """Header of an image resampled onto a grid ``factor`` times finer, with the same sky coverage.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict-like (e.g. a Map's ``meta``)
        The input header; it is not modified.
    factor : int
        Super-resolution factor; 2 for Enhance.
    history : str, optional
        A HISTORY line to add (model name and package version).

    Returns
    -------
    Same type as ``header``
        A copy with NAXISi multiplied by ``factor``, CDELTi and CDi_j divided by it (PCi_j unchanged),
        ``CRPIXi' = factor (CRPIXi - 0.5) + 0.5`` (1-based FITS pixels: output pixel centres keep the
        world coordinates of the input grid), and stale data statistics removed.

    Notes
    -----
    Output pixel ``k`` (0-based) covers input pixels ``[k/f - 0.5, (k+1)/f - 0.5)``, so its centre is
    input pixel ``(k + 0.5)/f - 0.5``. This is sunpy's ``resample`` rule; missing CRPIX and CDELT take
    their FITS defaults (0 and 1) and are written out explicitly.

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
        new[key(f"CRPIX{axis}")] = factor * (float(header.get(key(f"CRPIX{axis}"), 0.0)) - 0.5) + 0.5
        new[key(f"CDELT{axis}")] = float(header.get(key(f"CDELT{axis}"), 1.0)) / factor
        for other in (1, 2):
            if key(f"CD{axis}_{other}") in header:
                new[key(f"CD{axis}_{other}")] = float(header[key(f"CD{axis}_{other}")]) / factor
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
    if history:
        if isinstance(new, fits.Header):
            new.add_history(history)
        else:
            previous = new.get("history", "")
            new["history"] = f"{previous}\n{history}" if previous else history
    return new


def detect_kind(header):
    """Tell whether a header describes a continuum image ('intensity') or a magnetogram ('blos').

    Looks at CONTENT, the JSOC series name (``hmi.M_*`` or ``hmi.Ic_*`` in TELESCOP/SERIES/ORIGIN keys),
    and BUNIT. Returns None when none of them decides.
    """
    words = " ".join(str(header.get(key, "")) for key in ("CONTENT", "SERIES", "DSNAME", "OBJECT", "TELESCOP"))
    words = words.upper()
    if "MAGNETOGRAM" in words or "HMI.M_" in words or "HMI.B_" in words:
        return "blos"
    if "CONTINUUM" in words or "HMI.IC_" in words or "INTENSITY" in words:
        return "intensity"
    unit = str(header.get("BUNIT", "")).strip().lower()
    if unit in (*_GAUSS_UNITS, "kg", "t", "mt"):
        return "blos"
    if unit in ("i/ic", "dn/s", "dn", "counts", "ic"):
        return "intensity"
    return None


def resolve_kind(requested, header, *, path="input"):
    """The data kind for ``requested`` ('intensity', 'blos' or 'auto'), checked against the header.

    'auto' reads the header (`detect_kind`). Magnetograms must be in gauss (BUNIT G, Gauss or
    Mx/cm^2, or no BUNIT). A pixel scale (CDELT1 in arcsec) more than 5 % away from HMI's 0.504 arcsec
    gives an `~enhance.exceptions.EnhanceUserWarning`: the network only knows HMI's sampling.

    Raises
    ------
    ValueError
        If ``requested`` is 'auto' and the header does not say (no BUNIT, CONTENT or series name), or a
        magnetogram is not in gauss.
    """
    kind = detect_kind(header) if requested == "auto" else requested
    if kind is None:
        msg = (f"{path}: kind='auto' cannot tell continuum from magnetogram (no BUNIT, CONTENT or series name); "
               "pass kind= in Python, or pass -t on the command line")  # fmt: skip
        raise ValueError(msg)
    unit = str(header.get("BUNIT", "") or "").strip()
    if kind == "blos" and unit and unit.lower() not in _GAUSS_UNITS:
        msg = f"{path}: magnetograms must be in gauss, got BUNIT {unit!r}; convert the data to G first"
        raise ValueError(msg)
    scale, scale_unit = header.get("CDELT1"), str(header.get("CUNIT1", "arcsec") or "arcsec").strip().lower()
    if scale is not None and scale_unit in ("arcsec", "asec") and abs(abs(float(scale)) - 0.504) > 0.05 * 0.504:
        import warnings

        from .exceptions import EnhanceUserWarning

        msg = (f"{path}: pixel scale {abs(float(scale))} arcsec is not HMI's 0.504 arcsec; the network was trained "
               "on HMI's sampling and its output will not mean much")  # fmt: skip
        warnings.warn(msg, EnhanceUserWarning, stacklevel=2)
    return kind


def atomic_write(path, writer, *, overwrite=False):
    """Call ``writer(tmp_path)`` and move the result onto ``path`` only once it is complete.

    A failure leaves no partial file; an existing ``path`` is replaced only with ``overwrite``. Without
    ``overwrite`` the file is published with a hard link, which fails if ``path`` appeared meanwhile, so
    two concurrent writers cannot replace each other's output (where links are not supported, a rename
    after a last check).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        msg = f"{path} exists; use --overwrite (overwrite=True) to replace it"
        raise FileExistsError(msg)
    if not path.parent.is_dir():
        msg = f"output directory not found: {path.parent}"
        raise FileNotFoundError(msg)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _publish_new(tmp, path: Path) -> None:
    """Move ``tmp`` to ``path``, failing with `FileExistsError` if ``path`` exists, atomically."""
    try:
        os.link(tmp, path)  # atomic: fails if path exists
    except FileExistsError:
        msg = f"{path} exists; use --overwrite (overwrite=True) to replace it"
        raise FileExistsError(msg) from None
    except OSError:  # no hard links on this file system
        if path.exists():
            msg = f"{path} exists; use --overwrite (overwrite=True) to replace it"
            raise FileExistsError(msg) from None
        os.replace(tmp, path)


def write_fits(path, data, header=None, *, overwrite=False, extra_hdus=()):
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
    """
    card_header = fits.Header()
    if header is not None:
        for key, value in header.items() if isinstance(header, fits.Header) else dict(header).items():
            if key.upper() in _SKIP_ON_WRITE:
                continue
            try:
                card_header[key] = value
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
    primary = fits.PrimaryHDU(np.asarray(data), header=card_header)
    hdul = fits.HDUList([primary, *extra_hdus])
    return atomic_write(
        path, lambda tmp: hdul.writeto(tmp, overwrite=True, output_verify="silentfix"), overwrite=overwrite
    )


def write_map(path, smap, *, overwrite=False):
    """Write a `sunpy.map.Map` to FITS atomically (see `write_fits`)."""
    return write_fits(path, smap.data, smap.meta, overwrite=overwrite)
