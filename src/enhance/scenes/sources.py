"""High-resolution sources to train on: simulation or observation frames read from FITS, NumPy or HDF5.

A `Source` is a sequence of 2-D frames of one kind ('intensity': continuum in I/Ic; 'blos': the
line-of-sight or vertical field in gauss) at a known pixel scale. Frames are read lazily, one at a
time, so cubes larger than memory work. `SyntheticSource` serves scenes of `enhance.scenes.synth` the same way.

The MURaM quiet-Sun field of the Enhance paper is one such source::

    source = open_source("muram_qs_0.0662arcsec.fits")   # pixel scale from CDELT1/CUNIT1, divided by its mean
"""

import numbers
from pathlib import Path

import astropy.constants as const
import astropy.units as u
import numpy as np
import scipy  # its submodules load when first used (scipy.ndimage: 0.15 s)
from astropy.io import fits

from ..checks import check_angle, check_choice, check_integer
from ..constants import KINDS
from ..io import fits_error_text
from .synth import KINDS as SCENE_KINDS
from .synth import MURAM_PIXEL_SCALE, generate_scene

__all__ = [
    "KINDS",
    "KM_PER_ARCSEC",
    "Source",
    "ArraySource",
    "SyntheticSource",
    "VariedSource",
    "open_source",
    "from_array",
    "pixel_scale_from_header",
]

#: Kinds of data a source holds, as the networks name them ('continuum' and 'bz' are accepted aliases).
_ALIASES = {"intensity": "intensity", "continuum": "intensity", "blos": "blos", "bz": "blos"}
#: Kilometres on the Sun per arcsec seen from 1 AU, for simulation headers that give CDELT in km or Mm.
KM_PER_ARCSEC = float((const.au * np.tan((1 * u.arcsec).to_value(u.rad))).to_value(u.km))
_FIELD_UNITS = {"g": u.G, "gauss": u.G, "kg": u.kG, "t": u.T, "mt": u.mT, "mx/cm^2": u.G, "mx/cm2": u.G, "mx cm-2": u.G}


def canonical_kind(kind):
    if kind not in _ALIASES:
        options = ", ".join(repr(k) for k in _ALIASES)
        msg = f"kind must be one of {options}, got {kind!r}"
        raise ValueError(msg)
    return _ALIASES[kind]


def _angle_from(value, unit_name, *, where):
    """``value`` in ``unit_name`` (an angle or a length on the Sun) as arcsec."""
    name = (unit_name or "arcsec").strip()
    try:
        unit = u.Unit(name)
    except ValueError as err:
        msg = f"{where}: cannot read the pixel-scale unit {unit_name!r}"
        raise ValueError(msg) from err
    if unit.is_equivalent(u.arcsec):
        return float((value * unit).to_value(u.arcsec))
    if unit.is_equivalent(u.km):
        return float((value * unit).to_value(u.km)) / KM_PER_ARCSEC
    msg = f"{where}: the pixel-scale unit must be an angle or a length, got {unit_name!r}"
    raise ValueError(msg)


def pixel_scale_from_header(header, *, where="header"):
    """The pixel scale a FITS-like header gives, or None if it gives none.

    Reads CDELT1/CDELT2 (or CD1_1/CD2_2) with CUNIT1/CUNIT2 (arcsec when absent; degrees, and lengths
    on the Sun such as km or Mm for simulations, are converted). Both axes must agree within 0.1 %.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or mapping
        The header, or HDF5 attributes (a ``pixel_scale`` key in arcsec is also understood).
    where : str
        Name of the file, for error messages.

    Returns
    -------
    `~astropy.units.Quantity` or None
        Angular size of one pixel, arcsec; None when the header gives none.

    Examples
    --------
    >>> pixel_scale_from_header({"CDELT1": 48.0, "CDELT2": 48.0, "CUNIT1": "km", "CUNIT2": "km"}).round(4)
    <Quantity 0.0662 arcsec>
    """
    keys = {str(k).upper(): header[k] for k in header.keys()}
    if "PIXEL_SCALE" in keys:
        value = keys["PIXEL_SCALE"]
        return abs(float(np.asarray(value))) * u.arcsec
    scales = []
    for axis in (1, 2):
        value = keys.get(f"CDELT{axis}", keys.get(f"CD{axis}_{axis}"))
        if value is None:
            continue
        unit = keys.get(f"CUNIT{axis}")
        unit = unit.decode() if isinstance(unit, bytes) else unit
        scales.append(abs(_angle_from(float(np.asarray(value)), unit, where=where)))
    if not scales:
        return None
    if len(scales) == 2 and abs(scales[0] - scales[1]) > 1e-3 * max(scales):
        msg = f"{where}: pixels must be square, got {scales[0]:.6g} x {scales[1]:.6g} arcsec"
        raise ValueError(msg)
    if scales[0] <= 0:
        msg = f"{where}: the pixel scale must be positive, got {scales[0]!r}"
        raise ValueError(msg)
    return scales[0] * u.arcsec


def _field_unit(unit, *, where):
    if isinstance(unit, u.UnitBase):
        if not unit.is_equivalent(u.G):
            msg = f"{where}: unit must be a magnetic field unit, got {unit}"
            raise ValueError(msg)
        return unit
    name = str(unit).strip().lower()
    if name not in _FIELD_UNITS:
        msg = f"{where}: unknown magnetic field unit {unit!r}; use one of {sorted(_FIELD_UNITS)}"
        raise ValueError(msg)
    return _FIELD_UNITS[name]


class Source:
    """A sequence of 2-D frames of one kind at one pixel scale.

    Subclasses implement ``_read(index)``; `frame` converts to I/Ic or gauss and checks the result.

    Attributes
    ----------
    kind : {'intensity', 'blos'}
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel.
    periodic : bool
        Whether frames wrap around (simulation boxes, synthetic scenes): the observation model then
        convolves with ``boundary='wrap'``, else with ``'reflect'``.
    name : str

    Examples
    --------
    >>> import numpy as np
    >>> source = from_array(np.ones((3, 16, 16)), 0.0662, kind="intensity")
    >>> len(source), source.frame_shape, source.kind
    (3, (16, 16), 'intensity')
    """

    kind: str
    pixel_scale: u.Quantity
    periodic: bool = False
    name: str = "source"

    def __len__(self):
        raise NotImplementedError

    def _read(self, index):
        raise NotImplementedError

    @property
    def frame_shape(self):
        """Shape ``(ny, nx)`` of one frame, pixels.

        Examples
        --------
        >>> import numpy as np
        >>> from_array(np.ones((16, 24)), 0.0662).frame_shape
        (16, 24)
        """
        return self.frame(0).shape

    def frame(self, index):
        """Frame ``index`` as a 2-D float64 array in I/Ic ('intensity') or gauss ('blos').

        Parameters
        ----------
        index : int
            Which frame, from 0.

        Returns
        -------
        numpy.ndarray
            The frame, float64, I/Ic or gauss.

        Raises
        ------
        IndexError
            If ``index`` is out of range.
        ValueError
            If the frame holds NaN or infinite values.

        Examples
        --------
        >>> import numpy as np
        >>> source = from_array(np.full((2, 4, 4), 2.0), 0.0662, normalise="mean")
        >>> float(source.frame(1).mean())
        1.0
        """
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            msg = f"frame index must be an integer, got {index!r}"
            raise TypeError(msg)
        n = len(self)
        if not -n <= index < n:
            msg = f"frame index {index} out of range for {self.name} with {n} frames"
            raise IndexError(msg)
        data = np.array(self._read(int(index) % n), dtype=np.float64)  # a copy: callers may edit it
        if not np.all(np.isfinite(data)):
            msg = f"{self.name}: frame {index} holds {np.count_nonzero(~np.isfinite(data))} NaN or infinite pixels"
            raise ValueError(msg)
        return data

    def __getitem__(self, index):
        return self.frame(index)

    def __iter__(self):
        for index in range(len(self)):
            yield self.frame(index)

    def __repr__(self):
        scale = self.pixel_scale.to_value(u.arcsec)
        return f"<{type(self).__name__} {self.name!r}: {len(self)} {self.kind} frames at {scale:.4g} arcsec>"


class ArraySource(Source):
    """Frames from an array-like of shape (ny, nx) or (n, ny, nx), with a conversion to I/Ic or gauss.

    The array may be an ndarray, a memmap or an HDF5 dataset (through a reader). Use `open_source` or
    `from_array` rather than this constructor.

    Parameters
    ----------
    reader : callable
        ``reader(index)`` returns frame ``index`` as an array.
    count : int
        Number of frames.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel.
    kind : {'intensity', 'blos'}
        Continuum or field.
    scale_factor : float
        Factor to gauss for fields (e.g. 1000 for kG); 1 for continuum.
    normalise : {'none', 'mean', 'median'} or float
        How continuum frames become I/Ic: divided by their mean, median or a given level.
    name : str
        Name in messages and dataset attributes.
    periodic : bool
        Whether the frames wrap around (simulation boxes).

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> cube = np.ones((2, 8, 8))
    >>> source = ArraySource(lambda i: cube[i], 2, 0.0662 * u.arcsec, kind="intensity")
    >>> source.frame(0).shape
    (8, 8)
    """

    def __init__(
        self, reader, count, pixel_scale, *, kind, scale_factor=1.0, normalise="none", name="array", periodic=False
    ):
        self._reader = reader
        self._count = int(count)
        self.pixel_scale = pixel_scale
        self.kind = kind
        self._factor = float(scale_factor)
        self._normalise = normalise
        self.name = name
        self.periodic = bool(periodic)

    def __len__(self):
        return self._count

    def _read(self, index):
        data = np.asarray(self._reader(index), dtype=np.float64) * self._factor
        if data.ndim != 2:
            msg = f"{self.name}: frame {index} must be 2-D (ny, nx), got shape {data.shape}"
            raise ValueError(msg)
        if self.kind == "intensity":
            if self._normalise in ("mean", "median"):
                level = float(np.mean(data) if self._normalise == "mean" else np.median(data))
                if not level > 0:
                    msg = f"{self.name}: frame {index} has a non-positive {self._normalise} ({level}); cannot normalise"
                    raise ValueError(msg)
                data = data / level
            elif self._normalise != "none":
                data = data / float(self._normalise)
        return data


def _check_normalise(normalise, kind):
    if normalise == "auto":
        return "mean" if kind == "intensity" else "none"
    if kind == "blos" and normalise != "none":
        msg = f"normalise applies to continuum images only; for 'blos' use unit= instead, got normalise={normalise!r}"
        raise ValueError(msg)
    if isinstance(normalise, numbers.Real) and not isinstance(normalise, bool):
        if not (np.isfinite(normalise) and normalise > 0):
            msg = f"normalise must be a positive quiet-Sun level, got {normalise!r}"
            raise ValueError(msg)
        return float(normalise)
    return check_choice(normalise, ("auto", "mean", "median", "none"), name="normalise")


def _resolve_scale(pixel_scale, from_file, *, where):
    if pixel_scale is not None:
        return check_angle(pixel_scale, name="pixel_scale") * u.arcsec
    if from_file is None:
        msg = f"{where}: the file gives no pixel scale (CDELT1/CUNIT1 or a pixel_scale attribute); pass pixel_scale="
        raise ValueError(msg)
    return from_file


def _frames_of(shape, *, where):
    if len(shape) == 2:
        return 1
    if len(shape) == 3:
        return shape[0]
    msg = f"{where}: data must be a frame (ny, nx) or a cube (n, ny, nx), got shape {tuple(shape)}"
    raise ValueError(msg)


def _field_factor(kind, unit, header_unit, *, where):
    if kind != "blos":
        return 1.0
    chosen = unit if unit is not None else (header_unit or "G")
    return float((1 * _field_unit(chosen, where=where)).to_value(u.G))


def from_array(data, pixel_scale, *, kind="intensity", normalise="auto", unit=None, name="array", periodic=False):
    """Wrap an in-memory frame or cube as a `Source`.

    Parameters
    ----------
    data : array_like
        (ny, nx) or (n, ny, nx).
    pixel_scale : `~astropy.units.Quantity` or float
        Angular size of one pixel (a number is arcsec).
    kind : {'intensity', 'blos'}
        Continuum ('continuum' also accepted) or field ('bz' also accepted).
    normalise : {'auto', 'mean', 'median', 'none'} or float
        For continuum: divide each frame by its mean (right for quiet-Sun fields) or median, leave it
        ('none': already I/Ic), or divide by a given quiet-Sun level. 'auto' is 'mean' for continuum
        and 'none' for fields.
    unit : str or `~astropy.units.Unit`, optional
        Unit of a field ('G', 'kG', 'T', 'Mx/cm^2'); defaults to gauss.
    name : str
        A label for messages.
    periodic : bool
        Whether the frames wrap around (simulation boxes).

    Returns
    -------
    ArraySource
        The frames, read one at a time in I/Ic or gauss.

    Examples
    --------
    >>> import numpy as np
    >>> source = from_array(np.full((2, 8, 8), 5.0), 0.0662)
    >>> len(source), float(source.frame(1).mean())
    (2, 1.0)
    """
    kind = canonical_kind(kind)
    normalise = _check_normalise(normalise, kind)
    array = np.asarray(data)
    if array.dtype.kind not in "iuf":
        msg = f"data must be numeric, got dtype {array.dtype}"
        raise TypeError(msg)
    count = _frames_of(array.shape, where=name)
    reader = (lambda i: array) if array.ndim == 2 else (lambda i: array[i])
    factor = _field_factor(kind, unit, None, where=name)
    scale = _resolve_scale(pixel_scale, None, where=name)
    return ArraySource(
        reader, count, scale, kind=kind, scale_factor=factor, normalise=normalise, name=name, periodic=periodic
    )


def _open_fits(path, *, kind, pixel_scale, normalise, unit, periodic):
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            index = next(
                (i for i, hdu in enumerate(hdul) if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2),
                None,
            )
            if index is None:
                msg = f"{path} holds no image data"
                raise ValueError(msg)
            header = hdul[index].header.copy()
    except OSError as err:
        msg = f"{path} is not a readable FITS file: {fits_error_text(err)}"
        raise ValueError(msg) from err
    naxis = [header[f"NAXIS{i}"] for i in range(header["NAXIS"], 0, -1)]
    shape = tuple(n for n in naxis if n != 1) if len(naxis) > 3 else tuple(naxis)
    count = _frames_of(shape, where=str(path))

    def reader(i):
        with fits.open(path, memmap=True) as hdul:
            data = hdul[index].data if len(shape) == 2 else hdul[index].section[i]
            return np.array(np.squeeze(data), dtype=np.float64)

    factor = _field_factor(kind, unit, header.get("BUNIT"), where=str(path)) if kind == "blos" else 1.0
    scale = _resolve_scale(pixel_scale, pixel_scale_from_header(header, where=str(path)), where=str(path))
    return ArraySource(
        reader,
        count,
        scale,
        kind=kind,
        scale_factor=factor,
        normalise=normalise,
        name=Path(path).name,
        periodic=periodic,
    )


def _open_numpy(path, *, kind, pixel_scale, dataset, normalise, unit, periodic):
    if path.suffix == ".npz":
        with np.load(path) as archive:
            names = list(archive.files)
            key = dataset
            if key is None:
                arrays = [n for n in names if n != "pixel_scale"]
                if len(arrays) != 1:
                    msg = f"{path} holds several arrays {names}; choose one with dataset="
                    raise ValueError(msg)
                key = arrays[0]
            if key not in names:
                msg = f"{path} has no array {key!r}; it holds {names}"
                raise ValueError(msg)
            array = archive[key]
            stored = archive["pixel_scale"] if "pixel_scale" in names else None
        file_scale = abs(float(stored)) * u.arcsec if stored is not None else None
    else:
        array = np.load(path, mmap_mode="r")
        file_scale = None
    count = _frames_of(array.shape, where=str(path))
    reader = (lambda i: array) if array.ndim == 2 else (lambda i: array[i])
    factor = _field_factor(kind, unit, None, where=str(path))
    scale = _resolve_scale(pixel_scale, file_scale, where=str(path))
    return ArraySource(
        reader, count, scale, kind=kind, scale_factor=factor, normalise=normalise, name=path.name, periodic=periodic
    )


def _open_hdf5(path, *, kind, pixel_scale, dataset, normalise, unit, periodic):
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - depends on the environment
        msg = "reading HDF5 needs h5py: pip install 'solar-enhance[hdf5]'"
        raise ImportError(msg) from err
    with h5py.File(path, "r") as f:
        if dataset is None:
            found = []
            f.visititems(
                lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) and obj.ndim in (2, 3) else None
            )
            if len(found) != 1:
                msg = f"{path} holds {len(found)} image datasets {found}; choose one with dataset="
                raise ValueError(msg)
            dataset = found[0]
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            msg = f"{path} has no dataset {dataset!r}"
            raise ValueError(msg)
        node = f[dataset]
        shape = node.shape
        attrs = {**dict(f.attrs), **dict(node.attrs)}
    count = _frames_of(shape, where=f"{path}:{dataset}")

    def reader(i):
        with h5py.File(path, "r") as f:
            node = f[dataset]
            return node[()] if len(shape) == 2 else node[i]

    header_unit = attrs.get("BUNIT", attrs.get("unit"))
    header_unit = header_unit.decode() if isinstance(header_unit, bytes) else header_unit
    factor = _field_factor(kind, unit, header_unit, where=str(path))
    scale = _resolve_scale(pixel_scale, pixel_scale_from_header(attrs, where=str(path)), where=str(path))
    return ArraySource(
        reader,
        count,
        scale,
        kind=kind,
        scale_factor=factor,
        normalise=normalise,
        name=f"{path.name}:{dataset}",
        periodic=periodic,
    )


def open_source(path, *, kind="intensity", pixel_scale=None, dataset=None, normalise="auto", unit=None, periodic=False):
    """Open a FITS, NumPy (.npy, .npz) or HDF5 (.h5, .hdf5) file of frames as a `Source`.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file. A frame is (ny, nx); a cube is (n, ny, nx), frames along the first NumPy axis
        (the last FITS axis).
    kind : {'intensity', 'blos'}
        Continuum ('continuum' also accepted) or field ('bz' also accepted).
    pixel_scale : `~astropy.units.Quantity` or float, optional
        Angular size of one pixel (a number is arcsec). Overrides the file's CDELT1/CUNIT1 (FITS, HDF5
        attributes) or ``pixel_scale`` entry (.npz, HDF5 attribute); required when the file gives none.
    dataset : str, optional
        Array in an .npz or dataset in an HDF5 file; needed when the file holds more than one.
    normalise : {'auto', 'mean', 'median', 'none'} or float
        How continuum frames become I/Ic (see `from_array`).
    unit : str or `~astropy.units.Unit`, optional
        Unit of a field; defaults to the file's BUNIT, else gauss.
    periodic : bool
        Whether the frames wrap around (simulation boxes); real observations are not periodic.

    Returns
    -------
    ArraySource
        Reads one frame at a time.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file's format, shape or pixel scale is not usable.
    ImportError
        For HDF5 files when h5py is not installed.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     np.save(f"{folder}/bz.npy", np.zeros((4, 32, 32)))
    ...     source = open_source(f"{folder}/bz.npy", kind="blos", pixel_scale=0.0662)
    ...     print(len(source), source.frame(0).shape)
    4 (32, 32)
    """
    path = Path(path)
    if not path.is_file():
        msg = f"input file not found: {path}"
        raise FileNotFoundError(msg)
    kind = canonical_kind(kind)
    normalise = _check_normalise(normalise, kind)
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    options = {"kind": kind, "pixel_scale": pixel_scale, "normalise": normalise, "unit": unit, "periodic": periodic}
    if suffix in (".fits", ".fit", ".fts", ".fits.gz"):
        if dataset is not None:
            msg = f"dataset= does not apply to FITS files, got {dataset!r}"
            raise ValueError(msg)
        return _open_fits(path, **options)
    if suffix in (".npy", ".npz"):
        return _open_numpy(path, dataset=dataset, **options)
    if suffix in (".h5", ".hdf5", ".he5"):
        return _open_hdf5(path, dataset=dataset, **options)
    msg = f"unsupported file type {path.suffix!r} for {path}; use FITS, .npy, .npz or HDF5"
    raise ValueError(msg)


class SyntheticSource(Source):
    """Scenes of `enhance.scenes.synth.generate` as a source: frame ``i`` is the scene of seed ``(seed, i)``.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of each scene.
    kind : {'intensity', 'blos'}
        Which half of the scene the frames hold.
    scene : {'quiet_sun', 'plage', 'active_region', 'mixed'}
        Scene kind (see `enhance.scenes.synth.preset`).
    n_frames : int
        Number of distinct scenes.
    seed : int
        Frame ``i`` is a pure function of ``(seed, i)``.
    pixel_scale : `~astropy.units.Quantity`
        Defaults to MURaM's 0.0662 arcsec.
    **parameters
        Overrides of `enhance.scenes.synth.SceneParameters`.

    Examples
    --------
    >>> source = SyntheticSource((64, 64), kind="blos", n_frames=3, seed=1)
    >>> len(source), source.frame(2).shape
    (3, (64, 64))
    """

    periodic = True

    def __init__(
        self,
        shape,
        *,
        kind="intensity",
        scene="mixed",
        n_frames=100,
        seed=0,
        pixel_scale=MURAM_PIXEL_SCALE,
        **parameters,
    ):
        self.kind = canonical_kind(kind)
        check_choice(scene, SCENE_KINDS, name="scene")
        check_integer(n_frames, name="n_frames")
        check_integer(seed, name="seed", minimum=0)
        self.shape = tuple(shape)
        self.scene = scene
        self.seed = int(seed)
        self._count = int(n_frames)
        self.pixel_scale = _resolve_scale(pixel_scale, None, where="SyntheticSource")
        self._parameters = parameters
        self.name = f"synthetic {scene}"
        self._last = (None, None)

    def __len__(self):
        return self._count

    @property
    def frame_shape(self):
        """Shape ``(ny, nx)`` of one frame, pixels.

        Examples
        --------
        >>> SyntheticSource((32, 48), n_frames=2).frame_shape
        (32, 48)
        """
        return self.shape

    def scene_of(self, index):
        """The full `enhance.scenes.synth.Scene` behind frame ``index`` (the last one is cached).

        Parameters
        ----------
        index : int
            Which frame, from 0.

        Returns
        -------
        `~enhance.scenes.synth.Scene`
            Continuum, Bz, labels and parameters of the scene.

        Examples
        --------
        >>> source = SyntheticSource((32, 32), kind="blos", n_frames=2)
        >>> source.scene_of(1).bz.shape
        (32, 32)
        """
        if self._last[0] != index:
            scene = generate_scene(
                self.shape, self.pixel_scale, kind=self.scene, seed=[self.seed, index], **self._parameters
            )
            self._last = (index, scene)
        return self._last[1]

    def _read(self, index):
        scene = self.scene_of(index)
        return scene.continuum if self.kind == "intensity" else scene.bz


class VariedSource(Source):
    """Another source's frames, each seen at its own granulation contrast and resolution.

    Frame ``i`` is drawn from the wrapped source's frame ``i % len(source)``: continuum ``I`` (I/Ic)
    becomes ``I ** p`` with ``p`` log-uniform in ``power``, then is blurred by a Gaussian of a FWHM
    uniform in ``blur``. The power law is how a continuum image changes with wavelength in the Wien
    limit of the Planck function (``I_2 = I_1 ** (lambda_1 / lambda_2)`` for intensities relative to the
    quiet Sun), and so spans the contrasts of real scenes (observed at other wavelengths or heliocentric
    angles); the blur spans their resolution. Fields ('blos') keep their values and are only blurred.
    Frame ``i`` is a pure function of ``(seed, i)``.

    Parameters
    ----------
    source : Source
        The frames to vary.
    power : tuple of float
        ``(low, high)`` range of the contrast power ``p`` (continuum only); ``(1, 1)`` keeps it.
    blur : `~astropy.units.Quantity`
        ``(low, high)`` range of the FWHM of the Gaussian blur; defaults to none.
    copies : int
        Frames per frame of ``source`` (each with its own draw).
    seed : int
        Seed of the draws.
    fraction : float
        Share of the frames that are varied; the others are served as they are.

    Examples
    --------
    >>> import numpy as np
    >>> flat = from_array(np.full((8, 8), 1.0) + np.eye(8) * 0.1, 0.0662, normalise="none")
    >>> varied = VariedSource(flat, power=(2.0, 2.0), copies=3)
    >>> len(varied), round(float(varied.frame(2)[0, 0]), 4)  # 1.1 ** 2
    (3, 1.21)
    """

    def __init__(self, source, *, power=(1.0, 1.0), blur=(0.0, 0.0) * u.arcsec, copies=1, seed=0, fraction=1.0):
        if not isinstance(source, Source):
            msg = f"source must be a Source, got {type(source).__name__}"
            raise TypeError(msg)
        low, high = (float(v) for v in power)
        if not 0 < low <= high < 10:
            msg = f"power must be a range (low, high) with 0 < low <= high < 10, got {power!r}"
            raise ValueError(msg)
        fwhm = u.Quantity(blur, u.arcsec).to_value(u.arcsec)
        if fwhm.shape != (2,) or not 0 <= fwhm[0] <= fwhm[1] < 2:
            msg = f"blur must be a FWHM range (low, high) from 0 to 2 arcsec, got {blur!r}"
            raise ValueError(msg)
        check_integer(copies, name="copies")
        check_integer(seed, name="seed", minimum=0)
        if not 0 <= float(fraction) <= 1:
            msg = f"fraction must lie in [0, 1], got {fraction!r}"
            raise ValueError(msg)
        self.fraction = float(fraction)
        self.source, self.power, self.blur = source, (low, high), (float(fwhm[0]), float(fwhm[1]))
        self.copies, self.seed = int(copies), int(seed)
        self.kind, self.pixel_scale, self.periodic = source.kind, source.pixel_scale, source.periodic
        self.name = f"{source.name} (contrast power {low:g}-{high:g}, blur {fwhm[0]:g}-{fwhm[1]:g} arcsec)"

    def __len__(self):
        return len(self.source) * self.copies

    def draw(self, index):
        """The contrast power and the blur's FWHM (arcsec) of frame ``index``.

        Parameters
        ----------
        index : int
            Which frame, from 0.

        Returns
        -------
        tuple of float
            ``(power, fwhm)``.

        Examples
        --------
        >>> import numpy as np
        >>> VariedSource(from_array(np.ones((4, 4)), 0.0662), power=(0.5, 0.5)).draw(0)
        (0.5, 0.0)
        """
        rng = np.random.default_rng([self.seed, int(index)])
        power = float(np.exp(rng.uniform(np.log(self.power[0]), np.log(self.power[1]))))
        fwhm = float(rng.uniform(*self.blur))
        if self.fraction < 1 and rng.uniform() >= self.fraction:
            return 1.0, 0.0
        return power, fwhm

    def _read(self, index):
        data = self.source.frame(index % len(self.source))
        power, fwhm = self.draw(index)
        if self.kind == "intensity" and power != 1.0:
            data = np.clip(data, 0.0, None) ** power
        if fwhm > 0:
            sigma = fwhm / 2.3548200450309493 / self.pixel_scale.to_value(u.arcsec)
            data = scipy.ndimage.gaussian_filter(data, sigma, mode="wrap" if self.periodic else "reflect")
        return data
