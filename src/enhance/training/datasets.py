"""Training pairs: HMI-like input patches and their x2 targets, cut from any high-resolution source.

A frame of a `~enhance.scenes.sources.Source` goes through the observation model
(`enhance.observation.degrade.degrade`): the input is the frame seen by HMI at 0.504 arcsec, the
target the frame seen by a 28 cm telescope at 0.252 arcsec. Aligned patches are cut from both (50 x
50 -> 100 x 100 by default), rotated by a multiple of 90 degrees and flipped identically, normalised
per kind (continuum in I/Ic, field in kG), and the input gets Gaussian noise at HMI's level (1e-3
I/Ic, 10 G). Sample ``i`` of a dataset is a pure function of ``(seed, i)``: the same seed gives the
same pairs in any order, on any worker.

`PairDataset` streams pairs on the fly (a `torch.utils.data.Dataset`); `build_hdf5` writes them to
an HDF5 file once, atomically and with a progress bar, and `HDF5PairDataset` reads such a file back.

References
----------
Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5, Sect. 3 (training data, noise levels, kG units).
"""

import collections
import numbers
from pathlib import Path

import astropy.units as u
import numpy as np
import torch
from tqdm.auto import tqdm

from .._version import __version__
from ..checks import check_integer
from ..constants import HMI_NOISE, KINDS, NETWORK_UNIT
from ..exceptions import DataLeakageError
from ..io import atomic_write
from ..observation.degrade import HMI_PIXEL_SCALE, degrade
from ..observation.psf import DEFAULT_RADIUS
from ..scenes.sources import Source, SyntheticSource, canonical_kind, from_array, open_source

__all__ = [
    "NOISE",
    "SCALE",
    "UNITS",
    "degrade_frame",
    "cut_pair",
    "make_pair",
    "PairDataset",
    "HELD_OUT_SEED",
    "SIMULATION_HOLDOUT",
    "split_rows",
    "recipe_sources",
    "build_hdf5",
    "HDF5PairDataset",
    "validation_pairs",
    "input_noise_for",
]

#: Standard deviation of the noise added to inputs, in the units of the source (I/Ic; gauss): HMI's
#: specification as used by Díaz Baso & Asensio Ramos (2018): 1e-3 I/Ic and 10 G.
NOISE = HMI_NOISE
#: Factor from source units to network units: continuum stays in I/Ic, fields go from gauss to kG.
SCALE = {kind: 1.0 / NETWORK_UNIT[kind] for kind in KINDS}
#: Units of the normalised pairs.
UNITS = {"intensity": "I/Ic", "blos": "kG"}


def _check_patch(patch):
    return check_integer(patch, name="patch", minimum=2, unit=" (input pixels)")


def _noise_level(noise, kind):
    if noise is None:
        return NOISE[kind]
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not np.isfinite(noise) or noise < 0:
        msg = f"noise must be a standard deviation >= 0 in the source's units (I/Ic or G), got {noise!r}"
        raise ValueError(msg)
    return float(noise)


@u.quantity_input
def degrade_frame(
    frame,
    pixel_scale: u.arcsec,
    *,
    kind: str = "intensity",
    radius: u.arcsec = DEFAULT_RADIUS,
    hmi_params=None,
    boundary: str = "wrap",
):
    """Degrade a whole frame once and normalise both images for the network.

    Parameters
    ----------
    frame : (ny, nx) array_like
        Continuum in I/Ic or field in gauss, at ``pixel_scale``.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel of ``frame``; finer than 0.252 arcsec.
    kind : {'intensity', 'blos'}
        Selects the normalisation (`SCALE`): I/Ic stays, gauss becomes kG.
    radius : `~astropy.units.Quantity`
        Half-width of the PSF kernels; defaults to `~enhance.observation.psf.DEFAULT_RADIUS` (4.37 arcsec).
    hmi_params : dict, optional
        HMI PSF parameters (see `enhance.observation.psf.hmi_psf`); defaults to the Enhance values.
    boundary : {'wrap', 'reflect'}
        'wrap' for periodic frames (synthetic scenes, simulation boxes), 'reflect' otherwise.

    Returns
    -------
    observed, target : `~numpy.ndarray`
        float32, noise-free, at 0.504 and 0.252 arcsec; target pixels ``2i:2i+2, 2j:2j+2`` cover input
        pixel ``(i, j)``.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> observed, target = degrade_frame(np.full((120, 120), 1500.0), 0.0662 * u.arcsec, kind="blos")
    >>> observed.shape, target.shape, round(float(observed.mean()), 6)
    ((15, 15), (30, 30), 1.5)
    """
    kind = canonical_kind(kind)
    observed, target = degrade(frame, pixel_scale, radius=radius, hmi_params=hmi_params, boundary=boundary)
    factor = SCALE[kind]
    return (observed * factor).astype(np.float32), (target * factor).astype(np.float32)


def cut_pair(observed, target, *, rng, patch=50, augment=True, noise=0.0, position=None):
    """Cut an aligned pair of patches, augment it and add noise to the input.

    Parameters
    ----------
    observed, target : `~numpy.ndarray`
        Outputs of `degrade_frame` (target twice the size of observed).
    rng : `numpy.random.Generator`
        Source of the position, the augmentation and the noise.
    patch : int
        Input patch size in pixels (the target patch has ``2 * patch``); defaults to 50.
    augment : bool
        Apply the same random rotation by ``k * 90`` degrees and the same random flip to both patches.
    noise : float
        Standard deviation of the Gaussian noise added to the input, in the normalised units (I/Ic or kG).
    position : tuple of int, optional
        Top-left input pixel ``(row, col)``; drawn from ``rng`` when None.

    Returns
    -------
    x : `~numpy.ndarray`
        (patch, patch) float32 input.
    y : `~numpy.ndarray`
        (2 patch, 2 patch) float32 target.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = cut_pair(np.zeros((60, 60)), np.zeros((120, 120)), rng=rng, patch=50)
    >>> x.shape, y.shape, x.dtype
    ((50, 50), (100, 100), dtype('float32'))
    """
    patch = _check_patch(patch)
    observed = np.asarray(observed)
    target = np.asarray(target)
    m, n = observed.shape
    if target.shape != (2 * m, 2 * n):
        msg = f"target must have twice the shape of observed {observed.shape}, got {target.shape}"
        raise ValueError(msg)
    if patch > min(m, n):
        msg = f"patch of {patch} px does not fit in a degraded frame of {observed.shape} px; use a larger frame"
        raise ValueError(msg)
    if position is None:
        row, col = int(rng.integers(0, m - patch + 1)), int(rng.integers(0, n - patch + 1))
    else:
        row, col = (int(v) for v in position)
        if not (0 <= row <= m - patch and 0 <= col <= n - patch):
            msg = f"position {position} puts a {patch} px patch outside the frame {observed.shape}"
            raise ValueError(msg)
    x = observed[row : row + patch, col : col + patch]
    y = target[2 * row : 2 * (row + patch), 2 * col : 2 * (col + patch)]
    if augment:
        k = int(rng.integers(0, 4))
        x, y = np.rot90(x, k), np.rot90(y, k)
        if rng.integers(0, 2):
            x, y = x[:, ::-1], y[:, ::-1]
    x = np.array(x, dtype=np.float32)
    y = np.array(y, dtype=np.float32)
    if noise > 0:
        x += rng.normal(0.0, noise, x.shape).astype(np.float32)
    return x, y


@u.quantity_input
def make_pair(
    frame,
    pixel_scale: u.arcsec,
    *,
    rng,
    kind: str = "intensity",
    patch: int = 50,
    augment: bool = True,
    noise: float | None = None,
    radius: u.arcsec = DEFAULT_RADIUS,
    hmi_params=None,
    boundary: str = "wrap",
):
    """One training pair from one high-resolution frame: degrade, cut, augment, add noise.

    Degrades the whole frame on every call; to cut many patches from one frame, call `degrade_frame`
    once and `cut_pair` many times (which `PairDataset` does).

    Parameters
    ----------
    frame : (ny, nx) array_like
        Continuum in I/Ic or field in gauss.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel of ``frame`` (finer than 0.252 arcsec).
    rng : `numpy.random.Generator`
        Source of every random draw.
    kind : {'intensity', 'blos'}
    patch : int
        Input patch size; the target is ``2 * patch``. Defaults to 50 (-> 100).
    augment : bool
        Random rotation by k * 90 degrees and flip, the same for input and target.
    noise : float, optional
        Noise standard deviation in the frame's units (I/Ic or G); defaults to `NOISE` (HMI's level).
    radius, hmi_params, boundary
        Passed to `degrade_frame`.

    Returns
    -------
    x, y : `~numpy.ndarray`
        float32 patches (patch, patch) and (2 patch, 2 patch) in I/Ic or kG.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from enhance.scenes.synth import generate
    >>> continuum, bz = generate((400, 400), seed=1)
    >>> x, y = make_pair(continuum, 0.0662 * u.arcsec, rng=np.random.default_rng(0), patch=20)
    >>> x.shape, y.shape
    ((20, 20), (40, 40))
    """
    kind = canonical_kind(kind)
    level = _noise_level(noise, kind) * SCALE[kind]
    observed, target = degrade_frame(
        frame, pixel_scale, kind=kind, radius=radius, hmi_params=hmi_params, boundary=boundary
    )
    return cut_pair(observed, target, rng=rng, patch=patch, augment=augment, noise=level)


class PairDataset(torch.utils.data.Dataset):
    """Training pairs streamed from one or more sources; sample ``i`` is a pure function of ``(seed, i)``.

    Samples ``i`` in ``[k * patches_per_frame, (k + 1) * patches_per_frame)`` come from the same frame
    (frame ``k`` of a fixed, seed-dependent order of all frames of all sources, cycling when there are
    more samples than frames), so that each degraded frame is computed once and reused from a small
    cache. For a DataLoader that shuffles, give it a sampler that keeps these runs together, or build
    an HDF5 file with `build_hdf5` first.

    Parameters
    ----------
    sources : `~enhance.scenes.sources.Source` or sequence of them
        All of the same kind; each at a pixel scale finer than 0.252 arcsec.
    n_samples : int
        Length of the dataset.
    seed : int
        Seed of every random draw.
    patch : int
        Input patch size (target ``2 * patch``); defaults to 50.
    augment : bool
        Random 90-degree rotations and flips, identical for input and target.
    noise : float, optional
        Input noise in the sources' units (I/Ic, G); defaults to HMI's level (`NOISE`).
    patches_per_frame : int
        Consecutive samples cut from one frame; defaults to 64.
    radius : `~astropy.units.Quantity`
        PSF kernel half-width; defaults to `~enhance.observation.psf.DEFAULT_RADIUS` (4.37 arcsec).
    hmi_params : dict, optional
        HMI PSF parameters.
    cache_frames : int
        Degraded frames kept in memory.

    Examples
    --------
    >>> from enhance.scenes.sources import SyntheticSource
    >>> data = PairDataset(SyntheticSource((400, 400), n_frames=2), n_samples=4, patch=20, seed=0)
    >>> x, y = data[3]
    >>> tuple(x.shape), tuple(y.shape), x.dtype
    ((1, 20, 20), (1, 40, 40), torch.float32)
    """

    def __init__(
        self,
        sources,
        *,
        n_samples: int,
        seed: int = 0,
        patch: int = 50,
        augment: bool = True,
        noise: float | None = None,
        patches_per_frame: int = 64,
        radius: u.Quantity = DEFAULT_RADIUS,
        hmi_params=None,
        cache_frames: int = 4,
    ):
        sources = [sources] if isinstance(sources, Source) else list(sources)
        if not sources or not all(isinstance(s, Source) for s in sources):
            msg = f"sources must be a Source or a non-empty sequence of Sources, got {sources!r}"
            raise TypeError(msg)
        kinds = {s.kind for s in sources}
        if len(kinds) != 1:
            msg = f"all sources must hold the same kind of data, got {sorted(kinds)}"
            raise ValueError(msg)
        for name, value in (
            ("n_samples", n_samples),
            ("patches_per_frame", patches_per_frame),
            ("cache_frames", cache_frames),
        ):
            check_integer(value, name=name)
        check_integer(seed, name="seed", minimum=0)
        self.sources = sources
        self.kind = kinds.pop()
        self.n_samples = int(n_samples)
        self.seed = int(seed)
        self.patch = _check_patch(patch)
        self.augment = bool(augment)
        self.noise = _noise_level(noise, self.kind)
        self.patches_per_frame = int(patches_per_frame)
        self.radius = radius
        self.hmi_params = None if hmi_params is None else dict(hmi_params)
        self.cache_frames = int(cache_frames)
        # All (source, frame) pairs in a seed-dependent order.
        frames = [(s, f) for s in range(len(sources)) for f in range(len(sources[s]))]
        # Distinct seed sequences: [seed, 0] orders the frames, [seed, 1, i] draws sample i.
        order = np.random.default_rng([self.seed, 0]).permutation(len(frames))
        self._frames = [frames[k] for k in order]
        self._cache = collections.OrderedDict()

    def __len__(self):
        return self.n_samples

    def frame_of(self, index):
        """``(source index, frame index)`` that sample ``index`` is cut from.

        Parameters
        ----------
        index : int
            The sample.

        Returns
        -------
        tuple of int
            ``(source index, frame index)``.

        Examples
        --------
        >>> from enhance.scenes.sources import SyntheticSource
        >>> data = PairDataset(SyntheticSource((400, 400), n_frames=2), n_samples=4, patch=20, seed=0)
        >>> data.frame_of(0) == data.frame_of(3)  # 64 samples per frame by default
        True
        """
        return self._frames[(index // self.patches_per_frame) % len(self._frames)]

    def _degraded(self, key):
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        source = self.sources[key[0]]
        pair = degrade_frame(
            source.frame(key[1]),
            source.pixel_scale,
            kind=self.kind,
            radius=self.radius,
            hmi_params=self.hmi_params,
            boundary="wrap" if source.periodic else "reflect",
        )
        self._cache[key] = pair
        while len(self._cache) > self.cache_frames:
            self._cache.popitem(last=False)
        return pair

    def pair(self, index):
        """Sample ``index`` as NumPy arrays.

        Parameters
        ----------
        index : int
            The sample, ``0 <= index < len(self)``.

        Returns
        -------
        x : numpy.ndarray
            ``(patch, patch)`` float32 input, I/Ic or kG, with noise.
        y : numpy.ndarray
            ``(2 patch, 2 patch)`` float32 target, I/Ic or kG.

        Examples
        --------
        >>> from enhance.scenes.sources import SyntheticSource
        >>> data = PairDataset(SyntheticSource((400, 400), n_frames=2), n_samples=4, patch=20, seed=0)
        >>> x, y = data.pair(0)
        >>> x.shape, y.shape
        ((20, 20), (40, 40))
        """
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            msg = f"sample index must be an integer, got {index!r}"
            raise TypeError(msg)
        if not 0 <= index < self.n_samples:
            msg = f"sample index {index} out of range for a dataset of {self.n_samples} samples"
            raise IndexError(msg)
        observed, target = self._degraded(self.frame_of(int(index)))
        rng = np.random.default_rng([self.seed, 1, int(index)])
        return cut_pair(
            observed, target, rng=rng, patch=self.patch, augment=self.augment, noise=self.noise * SCALE[self.kind]
        )

    def __getitem__(self, index):
        x, y = self.pair(index)
        return torch.from_numpy(x[None]), torch.from_numpy(y[None])

    def __iter__(self):
        for index in range(self.n_samples):
            yield self[index]

    def attributes(self):
        """Metadata that describe the pairs (written to HDF5 files by `build_hdf5`).

        Returns
        -------
        dict
            Kind, unit, patch size, noise, seed, observation model and sources (JSON-serialisable values).

        Examples
        --------
        >>> from enhance.scenes.sources import SyntheticSource
        >>> data = PairDataset(SyntheticSource((400, 400), n_frames=2), n_samples=4, patch=20, seed=0)
        >>> data.attributes()["kind"]
        'intensity'
        """
        return {
            "kind": self.kind,
            "unit": UNITS[self.kind],
            "input_pixel_scale_arcsec": float(HMI_PIXEL_SCALE.to_value(u.arcsec)),
            "target_pixel_scale_arcsec": float(HMI_PIXEL_SCALE.to_value(u.arcsec)) / 2,
            "noise": self.noise * SCALE[self.kind],
            "seed": self.seed,
            "patch": self.patch,
            "augment": self.augment,
            "patches_per_frame": self.patches_per_frame,
            "psf_radius_arcsec": float(u.Quantity(self.radius).to_value(u.arcsec)),
            "hmi_params": repr(self.hmi_params),
            "sources": repr([repr(s) for s in self.sources]),
            "package_version": __version__,
        }


def build_hdf5(path, dataset, *, overwrite=False, progress=True, chunk=256):
    """Write all pairs of a `PairDataset` to an HDF5 file, atomically, with a progress bar.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output file. Nothing is left behind if writing fails.
    dataset : PairDataset
        The pairs to write (its length, seed, patch size, noise...).
    overwrite : bool
        Replace an existing file; otherwise an existing file raises `FileExistsError`.
    progress : bool
        Show a tqdm progress bar.
    chunk : int
        Number of pairs per HDF5 chunk along the first axis.

    Returns
    -------
    `~pathlib.Path`
        The written file, with datasets ``inputs`` (n, p, p) and ``targets`` (n, 2p, 2p), float32, in
        I/Ic or kG, and the dataset's `PairDataset.attributes` as file attributes.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ImportError
        If h5py is not installed.

    Examples
    --------
    >>> import tempfile
    >>> from enhance.scenes.sources import SyntheticSource
    >>> data = PairDataset(SyntheticSource((400, 400), n_frames=2), n_samples=4, patch=20, seed=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = build_hdf5(f"{folder}/pairs.h5", data, progress=False)
    ...     print(len(HDF5PairDataset(path)))
    4
    """
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - depends on the environment
        msg = "writing HDF5 needs h5py: pip install 'solar-enhance[hdf5]'"
        raise ImportError(msg) from err
    if not isinstance(dataset, PairDataset):
        msg = f"dataset must be a PairDataset, got {type(dataset).__name__}"
        raise TypeError(msg)
    n, p = len(dataset), dataset.patch
    rows = max(1, min(int(chunk), n))

    def writer(tmp):
        with h5py.File(tmp, "w", locking=False) as f:  # atomic_write holds its own lock on tmp
            inputs = f.create_dataset("inputs", shape=(n, p, p), dtype="f4", chunks=(rows, p, p))
            targets = f.create_dataset("targets", shape=(n, 2 * p, 2 * p), dtype="f4", chunks=(rows, 2 * p, 2 * p))
            for key, value in dataset.attributes().items():
                f.attrs[key] = value
            with tqdm(total=n, desc=f"pairs -> {Path(path).name}", unit="pair", disable=not progress) as bar:
                for start in range(0, n, rows):
                    stop = min(start + rows, n)
                    pairs = [dataset.pair(i) for i in range(start, stop)]
                    inputs[start:stop] = np.stack([x for x, _ in pairs])
                    targets[start:stop] = np.stack([y for _, y in pairs])
                    bar.update(stop - start)

    return atomic_write(path, writer, overwrite=overwrite)


class HDF5PairDataset(torch.utils.data.Dataset):
    """Pairs written by `build_hdf5`, as tensors (1, p, p) and (1, 2p, 2p).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The HDF5 file.
    kind : {'intensity', 'blos'}, optional
        What the pairs must hold: a file whose ``kind`` attribute says otherwise raises `ValueError`.

    Attributes
    ----------
    attrs : dict
        The file's attributes (kind, unit, noise, seed...).

    Examples
    --------
    >>> import tempfile
    >>> from enhance.scenes.sources import SyntheticSource
    >>> data = PairDataset(SyntheticSource((400, 400), n_frames=2), n_samples=4, patch=20, seed=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     pairs = HDF5PairDataset(build_hdf5(f"{folder}/pairs.h5", data, progress=False))
    ...     x, y = pairs[0]
    ...     print(tuple(x.shape), tuple(y.shape), pairs.attrs["kind"])
    (1, 20, 20) (1, 40, 40) intensity
    """

    def __init__(self, path, *, kind=None):
        try:
            import h5py
        except ImportError as err:  # pragma: no cover - depends on the environment
            msg = "reading HDF5 needs h5py: pip install 'solar-enhance[hdf5]'"
            raise ImportError(msg) from err
        self.path = Path(path)
        if not self.path.is_file():
            msg = f"input file not found: {self.path}"
            raise FileNotFoundError(msg)
        with h5py.File(self.path, "r") as f:
            missing = [name for name in ("inputs", "targets") if name not in f]
            if missing:
                msg = f"{self.path} is not a pair file: it lacks {missing}"
                raise ValueError(msg)
            self._n = f["inputs"].shape[0]
            self.attrs = dict(f.attrs)
        if kind is not None and self.attrs.get("kind") not in (None, kind):
            msg = f"{self.path} holds {self.attrs['kind']} pairs, not {kind} ones"
            raise ValueError(msg)
        self._file = None

    def __len__(self):
        return self._n

    def __getitem__(self, index):
        import h5py

        if self._file is None:  # opened lazily, once per DataLoader worker
            self._file = h5py.File(self.path, "r")
        x = np.asarray(self._file["inputs"][index], dtype=np.float32)
        y = np.asarray(self._file["targets"][index], dtype=np.float32)
        return torch.from_numpy(x[None]), torch.from_numpy(y[None])

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None
        return state


#: Synthetic scenes of this seed are kept for validation; training sources use other seeds.
HELD_OUT_SEED = 2_718_281
#: Fraction of a simulation field's rows (the last ones) held out of training.
SIMULATION_HOLDOUT = 0.25


def split_rows(frame, *, holdout=SIMULATION_HOLDOUT):
    """Split a field into its training rows and its held-out last rows.

    Parameters
    ----------
    frame : numpy.ndarray
        The field, ``(ny, nx)``.
    holdout : float
        Fraction of the rows held out, from the bottom (the last rows).

    Returns
    -------
    train : numpy.ndarray
        The first rows.
    held_out : numpy.ndarray
        The last ``holdout`` of the rows.

    Examples
    --------
    >>> import numpy as np
    >>> train, held = split_rows(np.zeros((100, 8)))
    >>> train.shape, held.shape
    ((75, 8), (25, 8))
    """
    frame = np.asarray(frame)
    cut = int(round(frame.shape[0] * (1 - holdout)))
    return frame[:cut], frame[cut:]


def recipe_sources(kind, *, simulation=None, held_out=False, n_frames=128, shape=(1000, 1000), seed=0,
                   simulation_weight=16, files=(), pixel_scale=None):  # fmt: skip
    """The sources of the shipped models' recipe: synthetic scenes plus a simulation field's rows.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or field.
    simulation : str or `~pathlib.Path`, optional
        A continuum simulation field (e.g. the MURaM quiet Sun); used for ``kind='intensity'`` only.
        Training uses its first rows, validation its last `SIMULATION_HOLDOUT` (`split_rows`).
    held_out : bool
        The validation sources (scenes of `HELD_OUT_SEED`, the held-out rows) instead of the training ones.
    n_frames : int
        Number of synthetic scenes ('mixed': quiet Sun, plage and active regions in random blends).
    shape : tuple of int
        Shape of a synthetic scene at 0.0662 arcsec per pixel.
    seed : int
        Seed of the training scenes (must differ from `HELD_OUT_SEED`).
    simulation_weight : int
        How many times the simulation field is listed among the frames, so that its patches make up a
        useful share of the pairs (one field against ``n_frames`` scenes).
    files : sequence of str or `~pathlib.Path`
        More FITS, NumPy or HDF5 frames or cubes (`~enhance.scenes.sources.open_source`), used whole:
        nothing of them is held out.
    pixel_scale : float, optional
        Arcsec per pixel of the ``files`` whose header gives none.

    Returns
    -------
    list of `~enhance.scenes.sources.Source`
        The synthetic scenes, the simulation field's rows when given, and the ``files``.

    Raises
    ------
    `~enhance.exceptions.DataLeakageError`
        If ``simulation`` is one of the ``files``: its held-out rows would be trained on.

    Examples
    --------
    >>> sources = recipe_sources("blos", n_frames=4, shape=(200, 200))
    >>> len(sources), sources[0].kind
    (1, 'blos')
    """
    kind = canonical_kind(kind)
    if not held_out and seed == HELD_OUT_SEED:
        msg = f"seed {seed} is the held-out seed; training scenes must use another one"
        raise ValueError(msg)
    _check_held_out(simulation, files)
    sources = [SyntheticSource(shape, kind=kind, scene="mixed", n_frames=n_frames,
                               seed=HELD_OUT_SEED if held_out else seed)]  # fmt: skip
    if simulation is not None and kind == "intensity":
        field = open_source(simulation, kind="intensity", normalise="mean")
        train_rows, held_rows = split_rows(field.frame(0))
        label = f"{Path(simulation).name} ({'held-out' if held_out else 'training'} rows)"
        rows = held_rows if held_out else train_rows
        part = from_array(rows, field.pixel_scale, kind="intensity", normalise="none", name=label)
        sources += [part] * (1 if held_out else simulation_weight)
    return sources + [open_source(path, kind=kind, pixel_scale=pixel_scale) for path in files]


def _check_held_out(simulation, files) -> None:
    """`~enhance.exceptions.DataLeakageError` if the field whose rows are held out is also used whole."""
    if simulation is not None and any(Path(path).resolve() == Path(simulation).resolve() for path in files):
        msg = f"{simulation} is both the simulation and one of the files: its held-out rows would be trained on"
        raise DataLeakageError(msg)


def validation_pairs(path=None, *, kind: str, simulation=None, n_samples: int = 512):
    """The validation pairs of ``enhance train`` and ``enhance average``.

    Parameters
    ----------
    path : str or `~pathlib.Path`, optional
        An HDF5 file of pairs (`build_hdf5`); None builds the default set.
    kind : {'intensity', 'blos'}
        What the pairs hold.
    simulation : str or `~pathlib.Path`, optional
        A simulation field whose held-out rows join the default set (`recipe_sources`).
    n_samples : int
        Pairs of the default set.

    Returns
    -------
    `HDF5PairDataset` or list of (input, target)
        ``path``'s pairs, or ``n_samples`` patches (32 pixels, HMI's noise, no augmentation) of the
        held-out scenes, generated once so that every evaluation sees the same pairs.

    Examples
    --------
    >>> import tempfile
    >>> from enhance.scenes.sources import SyntheticSource
    >>> data = PairDataset(SyntheticSource((400, 400), n_frames=2), n_samples=4, patch=20, seed=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     pairs = validation_pairs(build_hdf5(f"{folder}/val.h5", data, progress=False), kind="intensity")
    ...     print(len(pairs))
    4
    """
    if path:
        return HDF5PairDataset(path)
    held = recipe_sources(kind, simulation=simulation, held_out=True, n_frames=15, shape=(600, 600))
    per_frame = max(1, n_samples // sum(len(s) for s in held))
    stream = PairDataset(held, n_samples=n_samples, patch=32, noise=NOISE[kind], patches_per_frame=per_frame,
                         seed=1, augment=False)  # fmt: skip
    return [stream[i] for i in range(len(stream))]


def input_noise_for(train_data, input_noise):
    """The input noise training adds to ``train_data``: none if the pairs already hold noise and none was asked for.

    Pairs built with ``enhance dataset build --noise`` (an HDF5 file whose ``noise`` attribute is
    positive) carry HMI's noise already; adding the recipe's noise again at every step would double it.

    Parameters
    ----------
    train_data : dataset
        The training pairs; an `HDF5PairDataset` says in ``attrs`` what noise it holds.
    input_noise : float or None
        ``TrainConfig.input_noise``: None for the recipe's default.

    Returns
    -------
    float or None
        0.0 for noisy pairs with ``input_noise`` None, else ``input_noise``.

    Examples
    --------
    >>> class Noisy:
    ...     attrs = {"noise": 0.001}
    >>> input_noise_for(Noisy(), None), input_noise_for(Noisy(), 0.002), input_noise_for([], None)
    (0.0, 0.002, None)
    """
    attrs = getattr(train_data, "attrs", None) or {}
    if input_noise is None and float(attrs.get("noise", 0.0) or 0.0) > 0:
        return 0.0
    return input_noise
