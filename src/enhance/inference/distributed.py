"""Scale out on Dask: many FITS files (`~enhance.inference.distributed.enhance_files`) and one image too big for
one task (`~enhance.inference.distributed.enhance_dask`).

`enhance_files` runs one task per file, on this process, on a `dask.distributed.LocalCluster` it
starts, or on any running Dask cluster. Each worker loads the network from the weights file once and
keeps it (a per-process cache keyed by the file and the kind). Outputs are written atomically; an output
that exists and is complete is skipped; a file that fails is recorded with its reason and the others go
on. A CSV manifest beside the outputs records every file.

`enhance_dask` maps the network over the chunks of a `dask.array` with an overlap equal to the network's
receptive-field margin, so the lazy result equals whole-image inference.

Dask is optional (``pip install 'solar-enhance[dask]'``): it is imported only inside the functions that
need it, and `enhance_files` without ``client`` or ``n_workers`` runs serially without it.
"""

import contextlib
import csv
import dataclasses
import errno
import glob
import importlib.util
import io
import os
import re
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path

import numpy as np
from astropy.io import fits
from tqdm.auto import tqdm

try:  # POSIX only: elsewhere the last writer of the manifest wins
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

import stat

from .. import exceptions
from .._version import __version__
from ..checks import check_choice, check_kind, check_tile, fill_nonfinite, supported_float_type
from ..constants import GAUSS_PER_KG
from ..exceptions import (
    ClusterError,
    DiskFullError,
    EnhancedInputError,
    EnhanceError,
    IncompatibleOptionsError,
    OutputExistsError,
    UnsupportedOptionError,
)
from ..io import (
    FITS_SUFFIXES,
    IMAGE_HDUS,
    PROVENANCE_KEY,
    atomic_write,
    check_output,
    check_regular_file,
    fits_complete,
    fits_stem,
    provenance_cards,
    read_fits,
    remove_stale_parts,
    resolve_kind,
    uncertainty_hdu,
    upscale_header,
    warn_near_limb,
    write_fits,
    written_by_enhance,
)
from ..models.registry import MODELS, file_sha256
from ..observation.consistency import consistency_hdu
from ..observation.quiet_sun import QuietSunSurface, check_qs_level, normalisation_from_samples, qs_stride
from ..runtime.export import load_weights_file
from ..runtime.runners import as_runner
from ..scenes.sources import pixel_scale_from_header
from .pipeline import (
    KINDS,
    NOISE_CROP,
    QS_LEVEL_IS_CONTINUUM,
    NoiseChoice,
    RunOptions,
    assumption_cards,
    check_values,
    enhance_array,
    history_cards,
    network_margin,
    network_noise,
    quantize_step,
    registry_cards,
    resolve_network,
    run_options,
    sequence_noise,
)
from .uncertainty import filter_bank

__all__ = [
    "enhance_files",
    "enhance_dask",
    "shared_noise_levels",
    "find_inputs",
    "is_batch",
    "check_batch_output",
    "prepare_output",
    "Status",
    "output_path",
    "summarize",
    "MANIFEST_NAME",
    "MANIFEST_FIELDS",
]

#: File name of the manifest written into the output directory.
MANIFEST_NAME = "enhance_manifest.csv"
#: Columns of the manifest, one row per input file and run (re-runs append rows: the manifest keeps history).
MANIFEST_FIELDS = (
    "input", "output", "status", "kind", "model", "version", "finished", "seconds", "worker", "reason",
)  # fmt: skip
_GLOB_CHARS = frozenset("*?[")


# numpydoc reads Enum's call signature (value, names, module, ...) as the class's parameters.
class Status(StrEnum):  # numpydoc ignore=PR01
    """What became of one input of `enhance_files`: its record's ``status``, the manifest's column.

    A `str` enum: ``Status.DONE == "done"``, the manifest holds the word, and a record prints it as the
    word too (its ``repr`` is the string's). A record's ``error`` says why an input was skipped or failed
    (`~enhance.exceptions.OutputExistsError` for a complete output that exists,
    `~enhance.exceptions.DiskFullError` for a full disk, ...).

    Examples
    --------
    >>> Status.SKIPPED == "skipped", Status("failed") is Status.FAILED, [Status.DONE]
    (True, True, ['done'])
    """

    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"

    __repr__ = str.__repr__  # records print as the manifest reads


#: Default of ``no_progress_timeout``: seconds without any file finishing before a Dask batch gives up.
DEFAULT_TIMEOUT = 1800.0

# Per-process network cache: each Dask worker process loads a network once and reuses it for every
# task it runs. Keys are (weights file, its mtime and size, kind) or ("shipped", kind, model).
_NETWORKS: dict = {}
_LOADS: Counter = Counter()
_HITS: Counter = Counter()
_LOCK = threading.Lock()


def cached_network(weights, *, kind, model="full", options=None):
    """The network for ``kind`` from ``weights`` (a path) or the shipped ``model``, loaded once per process.

    ``options`` (`~enhance.inference.pipeline.RunOptions`) say how a shipped model will run (`resolve_network`)."""
    if weights is None:
        key = ("shipped", kind, options and (options.backend, options.device, options.precision), model)
    else:
        path = Path(weights).resolve()
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, kind)
    with _LOCK:  # one load per process, even with several threads per worker
        net = _NETWORKS.get(key)
        if net is None:
            shipped = weights is None
            net = resolve_network(kind, model=model, options=options) if shipped else _load_file(path, kind=kind)
            _NETWORKS[key] = net
            _LOADS[_cache_name(key)] += 1
        else:
            _HITS[_cache_name(key)] += 1
    return net


def _load_file(path, *, kind):
    """The network in a weights file, safetensors or ONNX, as ``enhance run --weights`` loads it."""
    return load_weights_file(path, kind=kind)


def _cache_name(key):
    return f"{key[0]}::{key[-1]}" if key[0] == "shipped" else f"{key[0]}::{key[3]}"


def network_cache_info():
    """Loads and reuses of this process's network cache (run it on every worker with ``client.run``)."""
    import torch

    with _LOCK:
        return {
            "loads": dict(_LOADS),
            "hits": dict(_HITS),
            "pid": os.getpid(),
            "torch_threads": torch.get_num_threads(),
        }


def _worker_name():
    distributed = sys.modules.get("distributed")  # a Dask worker has imported it: never imported for this
    try:
        return distributed.get_worker().address
    except (AttributeError, ValueError):  # not on a Dask worker
        return "local"


_OUTPUT_SUFFIX = "_enhanced"


def output_path(source, out_dir) -> Path:
    """The output of ``source`` in ``out_dir``: ``<name without the FITS suffix>_enhanced.fits``.

    Only the FITS suffix is dropped, so JSOC names such as ``hmi.M_45s.20240101_000000_TAI.2.magnetogram.fits``
    keep their time stamp.

    Parameters
    ----------
    source : str or `~pathlib.Path`
        An input FITS file.
    out_dir : str or `~pathlib.Path`
        The output folder.

    Returns
    -------
    pathlib.Path
        The output file's path.

    Examples
    --------
    >>> output_path("data/hmi.ic_45s.2024.continuum.fits.gz", "out").name
    'hmi.ic_45s.2024.continuum_enhanced.fits'
    """
    return Path(out_dir) / f"{fits_stem(Path(source))}{_OUTPUT_SUFFIX}.fits"


def find_inputs(inputs) -> list[Path]:
    """Expand files, directories and glob patterns into a sorted list of FITS files, without duplicates.

    Parameters
    ----------
    inputs : str, `~pathlib.Path` or sequence of them
        Files (kept even if missing, so that they are reported as failures), directories (their
        ``*.fits``, ``*.fit``, ``*.fts``, ``*.fits.gz`` and ``*.fits.fz`` files, not recursive) and glob
        patterns (``**`` recurses).

    Returns
    -------
    list of `~pathlib.Path`
        The FITS files, sorted.

    Raises
    ------
    ValueError
        If nothing matches.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for name in ("b.fits", "a.fits.gz", "notes.txt"):
    ...         (pathlib.Path(folder) / name).touch()
    ...     print([p.name for p in find_inputs(folder)])
    ['a.fits.gz', 'b.fits']
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and _is_fits_name(p))
        elif not path.exists() and _GLOB_CHARS & set(str(item)):
            found += sorted(Path(p) for p in glob.glob(str(item), recursive=True) if Path(p).is_file())
        else:
            found.append(path)
    # Outputs of an earlier run are recognised by their header (`enhance_file` skips them), not by name.
    unique = list(dict.fromkeys(found))
    if not unique:
        msg = f"no FITS files found in inputs {[str(i) for i in inputs]}"
        raise ValueError(msg)
    return unique


def is_batch(inputs, output, *, client=None, n_workers=None) -> bool:
    """Whether ``inputs`` into ``output`` is a batch (`enhance_files`) rather than one file into one file.

    Parameters
    ----------
    inputs : str, `~pathlib.Path` or sequence of them
        Files, directories or glob patterns, as `find_inputs` takes them.
    output : str or `~pathlib.Path`
        The output file or folder.
    client, n_workers : optional
        As in `enhance_files`: a Dask run is a batch.

    Returns
    -------
    bool
        True for several inputs, a directory or a glob pattern (a name that does not exist and holds
        ``*``, ``?`` or ``[``) as the input, an existing directory or a name ending in a path separator
        as the output, or a Dask run.

    Examples
    --------
    >>> is_batch(["a.fits"], "a_enhanced.fits"), is_batch(["hmi/*.fits"], "out"), is_batch(["a.fits"], "out/")
    (False, True, True)
    """
    inputs = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    if client is not None or n_workers is not None or len(inputs) != 1:
        return True
    single = Path(inputs[0])
    pattern = not single.exists() and bool(_GLOB_CHARS & set(str(inputs[0])))
    return single.is_dir() or pattern or Path(output).is_dir() or str(output).endswith(("/", os.sep))


def check_batch_output(out_dir) -> Path:
    """`~enhance.exceptions.IncompatibleOptionsError` unless ``out_dir`` can be the folder of a batch.

    A batch writes into a folder: an existing file, or a name with a FITS suffix that does not exist,
    is refused (`enhance_files` would create a folder of that name).

    Parameters
    ----------
    out_dir : str or `~pathlib.Path`
        The output folder of `enhance_files`.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Examples
    --------
    >>> check_batch_output("enhanced").name
    'enhanced'
    >>> check_batch_output("enhanced.fits")
    Traceback (most recent call last):
    ...
    enhance.exceptions.IncompatibleOptionsError: the output of several files must be a directory, got enhanced.fits
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir() or not out_dir.exists() and out_dir.name.lower().endswith(
            FITS_SUFFIXES):  # fmt: skip
        msg = f"the output of several files must be a directory, got {out_dir}"
        raise IncompatibleOptionsError(msg)
    return out_dir


def prepare_output(source, target, *, overwrite=False) -> Path:
    """Check the output of one file given by name before any work, and clear an earlier killed write of it.

    Parameters
    ----------
    source : str or `~pathlib.Path`
        The input file.
    target : str or `~pathlib.Path`
        The output file.
    overwrite : bool
        Whether an existing ``target`` may be replaced.

    Returns
    -------
    pathlib.Path
        ``target``.

    Raises
    ------
    ValueError
        If ``target`` cannot be an output (`~enhance.io.check_output`: a device, the input itself, a
        ``.bz2`` name).
    `~enhance.exceptions.OutputExistsError`
        If ``target`` exists and ``overwrite`` is off.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     prepare_output(f"{folder}/in.fits", f"{folder}/out.fits").name
    'out.fits'
    """
    source, target = Path(source), Path(target)
    check_output(target, source=source)
    if target.exists() and not overwrite:
        msg = f"{target} exists; use --overwrite to replace it"
        raise OutputExistsError(msg)
    if target.parent.is_dir():  # temporary files of an earlier, killed write of this output
        remove_stale_parts(target.parent, targets=[target])
    return target


def _is_fits_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.name.lower().endswith(FITS_SUFFIXES)


def _input_header(source: Path):
    """Shape and header of the first image HDU, read without its data."""
    with fits.open(source, memmap=False) as hdul:
        for hdu in hdul:
            if isinstance(hdu, IMAGE_HDUS) and hdu.header.get("NAXIS", 0) > 0:
                shape = tuple(n for n in hdu.shape if n != 1) if len(hdu.shape) > 2 else tuple(hdu.shape)
                return shape, hdu.header.copy()
    msg = f"{source} holds no image data"
    raise ValueError(msg)


def _existing_output(target: Path, shape) -> tuple[str, str]:
    """What to do with an output that exists when ``overwrite`` is off: ``(action, reason)``.

    One completeness rule (``enhance.io.fits_complete``, as `~enhance.io.read_fits` applies): an incomplete
    file is replaced. A complete output that solar-enhance wrote (`~enhance.io.written_by_enhance`) is
    skipped if it is twice the input's ``shape``, replaced otherwise; a complete file it did not write is
    not touched ('refuse').
    """
    if not fits_complete(target):
        return "replace", "replaced an incomplete output"
    try:
        out_shape, header = _input_header(target)
    except (OSError, ValueError) as err:
        return "refuse", f"{target} exists and cannot be read ({err}); use --overwrite (overwrite=True) to replace it"
    if written_by_enhance(header) is None:
        return "refuse", f"{target} exists and was not written by solar-enhance; use --overwrite to replace it"
    if shape is None or out_shape == (2 * shape[0], 2 * shape[1]):
        return "skip", "output exists and is complete"
    return "replace", f"replaced an output of solar-enhance of shape {out_shape} (the input is now {shape})"


def _kind_for(source: Path, kind: str, header, *, force: bool = False) -> str:
    return resolve_kind(kind, header, path=source, force=force)


def check_output_dir(directory) -> Path:
    """Raise (`FileNotFoundError`, `NotADirectoryError`, `PermissionError`) unless files can be created in
    ``directory``; checked before any work by probing with an anonymous temporary file."""
    directory = Path(directory)
    if not directory.exists():
        msg = f"output directory not found: {directory}"
        raise FileNotFoundError(msg)
    if not directory.is_dir():
        msg = f"output directory {directory} is not a directory"
        raise NotADirectoryError(msg)
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        msg = f"output directory {directory} is not writable: {err.strerror or err}"
        raise PermissionError(msg) from None
    return directory


def enhance_file(
    source,
    target,
    *,
    kind,
    weights,
    model,
    label,
    options,
    overwrite,
    consistency,
    force=False,
    compress=False,
    shared_noise=None,
):
    """One task: enhance ``source`` into ``target`` and return its manifest record. Never raises.

    The record holds the `MANIFEST_FIELDS`, with ``status`` a `Status`, and ``error``: None when the
    file is done, else the typed exception that says why it was skipped or failed, its message the
    ``reason`` without the exception's name (`~enhance.exceptions.OutputExistsError` for a complete
    output, `~enhance.exceptions.DiskFullError` for a full disk, ...).

    Everything that can be checked is checked before the network runs: the existing output, the input
    and its header (the x2 header is built first, so a bad CRPIX fails here), the network and the output
    directory. A failure's reason names its culprit: the input, the weights file or the output.
    ``shared_noise`` maps a kind to the `~enhance.inference.pipeline.NoiseChoice` of the whole sequence
    (`shared_noise_levels`), used where ``options.noise`` is None.
    """
    start = time.perf_counter()
    source, target = Path(source), Path(target)
    record = _new_record(source, target, label, worker=_worker_name())
    replace = overwrite
    try:
        _check_target(source, target)
        if target.exists() and not overwrite:
            action, reason = _existing_output(target, _input_shape(source))
            if action == "skip":
                record.update(kind=_quiet_kind(source, kind), status=Status.SKIPPED, reason=reason,
                              error=OutputExistsError(reason))  # fmt: skip
                return _finish(record, start)
            if action == "refuse":
                record.update(status=Status.FAILED, reason=f"FileExistsError: {reason}",
                              error=OutputExistsError(reason))  # fmt: skip
                return _finish(record, start)
            replace, record["reason"] = True, reason
        _enhance_one(source, target, record, kind=kind, weights=weights, model=model, label=label, options=options,
                     replace=replace, consistency=consistency, force=force, compress=compress,
                     shared_noise=shared_noise)  # fmt: skip
    except _Culprit as err:  # the weights or the output, named in the message
        record.update(_failed(err.__cause__, str(err)))
    except FileExistsError as err:
        # Another run published this output since the check above: its file is complete (atomic writes).
        lost = {"status": Status.SKIPPED, "reason": _LOST_RACE, "error": OutputExistsError(_LOST_RACE)}
        record.update(lost if not replace else _failed(err, _one_line(err)))
    except Exception as err:  # noqa: BLE001 - one bad file is recorded and the others go on
        message = str(err) if str(source) in str(err) else f"{source}: {err}"
        record.update(_failed(err, _one_line(message)))
    return _finish(record, start)


def _new_record(source, target, label, **values) -> dict:
    """A record of `enhance_file`: the `MANIFEST_FIELDS` (empty unless given) and ``error`` (None)."""
    record = {**dict.fromkeys(MANIFEST_FIELDS, ""), "error": None}
    record.update(input=str(source), output=str(target), model=label, version=__version__, **values)
    return record


def _failed(err, message) -> dict:
    """The fields of a record that failed on ``err``: the reason names its type, the error keeps it.

    The error is a new exception of ``err``'s type with the one-line ``message`` and no traceback (a
    record outlives the call and travels between processes): a `~enhance.exceptions.DiskFullError`
    for a full disk, an `~enhance.exceptions.EnhanceError` where the type does not print a message as given.
    """
    if isinstance(err, OSError) and err.errno in DiskFullError.ERRNOS:
        error = DiskFullError(message)
        error.errno = err.errno
    else:
        try:
            error = type(err)(message)
        except Exception:  # noqa: BLE001 - a type that needs other arguments (e.g. distributed's KilledWorker)
            error = None
        if error is None or str(error) != message:  # KeyError quotes its message
            error = EnhanceError(message)
    return {"status": Status.FAILED, "reason": f"{type(err).__name__}: {message}", "error": error}


_LOST_RACE = "another run wrote this output meanwhile"


class _Culprit(Exception):
    """A failure whose message already names what caused it (not the input); the error is its ``__cause__``."""


def _check_target(source, target) -> None:
    """`~enhance.io.check_output` before any work, as the output's fault: a special file, the input, a .bz2 name."""

    try:
        check_output(target, source=source)
    except ValueError as err:
        raise _Culprit(str(err)) from err


def _one_line(text) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _enhance_one(source, target, record, *, kind, weights, model, label, options, replace, consistency, force,
                 compress, shared_noise=None):  # fmt: skip
    """The body of `enhance_file`: read, check, enhance, write; fills ``record``."""
    image, header = read_fits(source)
    version = written_by_enhance(header)
    if version is not None and not force:  # an output of this package is never an input, whatever its name
        reason = (f"written by solar-enhance {version} ({PROVENANCE_KEY}): an enhanced output, not an input "
                  "(--force runs it)")  # fmt: skip
        record.update(status=Status.SKIPPED, reason=reason, error=EnhancedInputError(f"{source}: {reason}"))
        return
    _check_numbers(header, source)
    record["kind"] = file_kind = _kind_for(source, kind, header, force=force)
    check_values(image, file_kind, force=force, name=str(source))  # as `enhance(path)` does: values fit the kind
    if file_kind == "blos" and options.qs_level is not None:  # for the continuum files of a batch only
        if kind == "blos":
            raise IncompatibleOptionsError(QS_LEVEL_IS_CONTINUUM)
        warnings.warn(f"{source} is a magnetogram: it runs without the quiet-Sun level given (qs_level, --qs-level), "
                      "which is for the continuum files", exceptions.EnhanceUserWarning, stacklevel=2)  # fmt: skip
        options = dataclasses.replace(options, qs_level=None)

    warn_near_limb(header, np.isfinite(image), name=str(source))  # in this process for `enhance run FILE`
    try:
        network = cached_network(weights, kind=file_kind, model=model, options=options)
    except Exception as err:  # noqa: BLE001 - named as the weights' fault, not the input's
        text = _one_line(err)
        if weights is None or str(weights) not in text:
            where = f"weights file {weights}" if weights is not None else f"the shipped {model} {file_kind} model"
            text = f"{where}: {text}"
        raise _Culprit(text) from err
    history = history_cards(file_kind, model, network if weights is not None else None)
    history += f" ({Path(weights).name})" if weights is not None else ""
    new_header = upscale_header(header, 2, history=history, provenance=provenance_cards(model=label, kind=file_kind))
    try:
        check_output_dir(target.parent)
    except OSError as err:
        raise _Culprit(str(err)) from err
    if isinstance((shared_noise or {}).get(file_kind), NoiseChoice) and options.noise is None:
        options = dataclasses.replace(options, noise=shared_noise[file_kind])  # one level for the sequence
    result, assumed = enhance_array(image, kind=file_kind, network=network, options=options, return_assumptions=True,
                                    header=header)  # fmt: skip
    result, sigma = result if options.uncertainty else (result, None)
    own = network if weights is not None else None
    new_header.update({**assumption_cards(assumed), **registry_cards(file_kind, model, network=own, weights=weights)})
    extra = [_consistency_hdu(result, image, header)] if consistency else []
    if sigma is not None:
        extra.append(uncertainty_hdu(sigma, new_header))
    step = quantize_step(image, file_kind) if compress or target.name.lower().endswith(".fz") else None
    write_fits(target, result, new_header, overwrite=replace, extra_hdus=extra, quantize_step=step)
    record["status"] = Status.DONE


_NUMERIC_KEY = re.compile(r"^(CRPIX|CDELT|CRVAL|CROTA)[12]$|^(CD|PC)[12]_[12]$|^(R_SUN|X0_MP|Y0_MP|IMSCL_MP)$")


def _check_numbers(header, source) -> None:
    """`ValueError` naming the key if a coordinate key of the image (CRPIXi, CDELTi, CDi_j, ...) is not a
    finite number: found before any work, not as a bare "could not convert" after it."""
    for key, value in header.items():
        if not _NUMERIC_KEY.match(key):
            continue
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not np.isfinite(number):
            msg = f"{source}: header key {key} = {value!r} is not a finite number"
            raise ValueError(msg)


def _consistency_hdu(result, image, header):
    scale = pixel_scale_from_header(header)  # the header's CDELT, as `enhance compare` uses
    return consistency_hdu(result, image, header=header, **({"input_scale": scale} if scale is not None else {}))


def _input_shape(source: Path):
    """The input's image shape from its header, or None if it cannot be read (the full run says why)."""
    try:
        return _input_header(source)[0]
    except Exception:  # noqa: BLE001
        return None


def _quiet_kind(source: Path, kind: str) -> str:
    try:
        return _kind_for(source, kind, _input_header(source)[1])
    except Exception:  # noqa: BLE001 - the kind is only informative for a skipped file
        return ""


def _finish(record, start):
    record["seconds"] = round(time.perf_counter() - start, 4)
    record["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return record


def model_label(weights, model):
    if weights is None:
        return model

    check_regular_file(weights, what="weights file", expected="a weights file")  # reading a FIFO would block
    return f"{Path(weights).name} sha256:{file_sha256(Path(weights))[:16]}"


def _preflight(kind, model, weights, tile=None, *, uncertainty=False):
    """Fail before submitting anything if no file could be enhanced (bad weights file, untrained model, an
    uncertainty asked of a network without a linear stage).

    Every failure is one line naming the weights file (or the shipped model), an allocator failure included.
    A ``tile`` below the network's reach warns here, in this process (`~enhance.checks.check_tile`).
    """

    kinds = KINDS if kind == "auto" else (kind,)
    errors = []
    for each in kinds:
        try:
            net = _load_file(weights, kind=each) if weights is not None else resolve_network(each, model=model)
            check_tile(tile, margin=network_margin(net))
            if uncertainty:
                filter_bank(as_runner(net))  # ValueError for a network without a linear stage
        except (OSError, ValueError, TypeError, LookupError) as err:  # LookupError: ModelNotTrainedError
            errors.append(err)
        except (RuntimeError, MemoryError) as err:  # e.g. "DefaultCPUAllocator: can't allocate memory"
            where = f"weights file {weights}" if weights is not None else f"the shipped {model} {each} model"
            errors.append(ValueError(f"{where} cannot be loaded: {_one_line(err) or type(err).__name__}"))
    if len(errors) == len(kinds):
        raise errors[0]


# -- the manifest: a log of every run, one row appended as each file finishes, under a lock on the directory --


def _read_manifest(path: Path) -> tuple[tuple, list[dict]]:
    """``(columns, rows)`` of an existing manifest (``((), [])`` if there is none); `ValueError` naming it if
    it is not one, or not a regular file (opening a FIFO would wait for a writer forever)."""

    if not os.path.lexists(path):
        return (), []
    check_regular_file(path, what="manifest", expected="a CSV file; move it away")
    try:
        with path.open(newline="") as handle:
            table = csv.DictReader(handle)
            rows = list(table)
            fields = tuple(table.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        msg = f"manifest {path} cannot be read ({_one_line(err)}); move it away or fix it"
        raise ValueError(msg) from None
    if "output" not in fields or "status" not in fields:
        msg = f"manifest {path} is not a manifest of enhance (no 'output' and 'status' columns); move it away"
        raise ValueError(msg)
    return fields, rows


@contextlib.contextmanager
def _manifest_lock(directory: Path):
    """An exclusive `fcntl.flock` on the output directory itself (no lock file to leave behind)."""
    if fcntl is None:  # pragma: no cover - not POSIX: the last writer wins
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _csv_text(rows, *, header=False) -> str:
    text = io.StringIO()
    table = csv.DictWriter(text, fieldnames=MANIFEST_FIELDS, extrasaction="ignore", restval="")
    if header:
        table.writeheader()
    table.writerows(rows)
    return text.getvalue()


def _start_manifest(path: Path) -> None:
    """Check the manifest before any work and make sure it has this version's header row: created if missing,
    rewritten once (atomically, earlier rows kept) if another version wrote other columns."""
    with _manifest_lock(path.parent):
        fields, rows = _read_manifest(path)
        if fields != MANIFEST_FIELDS:
            text = _csv_text(rows, header=True)
            atomic_write(path, lambda tmp: Path(tmp).write_text(text, newline=""), overwrite=bool(fields))


def _append_manifest(path: Path, records) -> None:
    """Append ``records`` to the manifest in one write, under the directory's lock: a killed run leaves every
    row it had finished, and a write that fails (a full disk) leaves the file as it was."""

    data = _csv_text(records).encode()
    with _manifest_lock(path.parent):
        if not os.path.lexists(path):  # removed during the run
            data = _csv_text([], header=True).encode() + data
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0), 0o666)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                msg = f"manifest {path} is not a regular file; move it away"
                raise ValueError(msg)
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            except OSError:
                os.ftruncate(fd, info.st_size)  # no half row
                raise
        finally:
            os.close(fd)


# glibc hands every freed allocation above its mmap threshold back to the kernel, so each layer's
# activations (tens to hundreds of MB) are page-faulted in again: on the CPU that cost 40 % of the time
# per image here, in system time. Workers keep freed memory in one heap instead (one arena: a task runs
# in a worker thread, and other threads' arenas are capped at 64 MB, too small to keep the activations).
# distributed tunes MALLOC_TRIM_THRESHOLD_ the other way for general work; ours is a few large, repeated arrays.
_WORKER_MALLOC = {"MALLOC_ARENA_MAX": 1, "MALLOC_MMAP_THRESHOLD_": 2**30, "MALLOC_TRIM_THRESHOLD_": 2**30}


def local_cluster(n_workers):
    """A LocalCluster of ``n_workers`` processes sharing this machine's cores without oversubscribing them.

    Each worker runs ``cores // n_workers`` (at least 1) tasks at once; Dask's nanny sets
    OMP_NUM_THREADS=1 in every worker, so each task's PyTorch uses one thread.
    """
    import dask
    from dask.system import CPU_COUNT
    from distributed import LocalCluster

    threads = max(1, CPU_COUNT // n_workers)
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **_WORKER_MALLOC}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True, dashboard_address=":0")


def _is_client(obj) -> bool:
    try:
        from distributed import Client
    except ImportError:
        return False
    return isinstance(obj, Client)


@contextlib.contextmanager
def _dask_client(client, n_workers):
    try:
        from distributed import Client
    except ImportError as err:
        msg = "client= and n_workers= need dask.distributed: pip install 'solar-enhance[dask]'"
        raise ImportError(msg) from err
    if isinstance(client, Client):
        yield client  # the caller's client stays open
    elif isinstance(client, str):
        with Client(client) as own:
            yield own
    else:
        try:
            cluster = local_cluster(n_workers)
        except Exception as err:  # noqa: BLE001 - e.g. "Nanny failed to start." when a worker dies at start-up
            msg = f"the Dask LocalCluster of {n_workers} workers did not start: {_one_line(err) or type(err).__name__}"
            raise ClusterError(msg) from None
        with cluster, Client(cluster) as own:
            yield own


def enhance_files(
    inputs,
    out_dir,
    *,
    kind: str = "auto",
    weights=None,
    model: str = "full",
    client=None,
    n_workers: int | None = None,
    qs_level: float | None = None,
    device: str = "auto",
    tile: int | None = None,
    backend: str = "auto",
    precision: str = "float32",
    overwrite: bool = False,
    consistency: bool = False,
    progress: bool = False,
    force: bool = False,
    as_frame: bool = False,
    compress: bool = False,
    no_progress_timeout: float | None = DEFAULT_TIMEOUT,
    noise: float | None = None,
    noise_per_frame: bool = False,
    symmetric: bool = False,
    uncertainty: bool = False,
    options: RunOptions | None = None,
):
    """Enhance many FITS files, one task per file, serially or on a Dask cluster.

    Parameters
    ----------
    inputs : str, `~pathlib.Path` or sequence of them
        FITS files, directories and glob patterns (see `find_inputs`).
    out_dir : str or `~pathlib.Path`
        Output directory (created if missing). Each output is ``<input name>_enhanced.fits``
        (`output_path`) and the manifest is ``out_dir/enhance_manifest.csv``.
    kind : {'auto', 'intensity', 'blos', 'continuum', 'magnetogram'}
        'auto' (default) reads each file's BUNIT, CONTENT or series name; sunpy's names are taken too.
    weights : str or `~pathlib.Path`, optional
        A safetensors weights file (`~enhance.models.weights.save_weights`) or an ONNX file
        (`~enhance.runtime.export.export_onnx`). Every worker loads it once from this path, which it must be able
        to read; None uses the shipped ``model``.
    model : {'full', 'light', 'paper', 'paper-light'}
        The shipped model, when ``weights`` is None.
    client : `distributed.Client` or str, optional
        Run on this client (it is left open), or on the Dask scheduler at this address.
    n_workers : int, optional
        Start a `~distributed.LocalCluster` of this many worker processes for the run (each runs
        ``cores // n_workers`` tasks at once, with one PyTorch thread per task). With neither ``client``
        nor ``n_workers`` the files are enhanced one after the other in this process, without Dask.
    qs_level, device, tile, backend, precision
        As in `~enhance.enhance`; ``device`` is resolved on each worker.
    overwrite : bool
        Replace existing outputs. Without it an output that solar-enhance wrote, that is complete
        (``enhance.io.fits_complete``) and twice the input's shape is skipped; an incomplete one, or one of
        ours of another shape, is replaced; a complete file that another program wrote fails the input.
    consistency : bool
        Add the per-pixel consistency map as HDU 1 (`~enhance.analysis.diagnostics.consistency_hdu`).
    progress : bool
        Show a progress bar over files.
    compress : bool
        Write RICE tile-compressed outputs (`~enhance.io.write_fits` ``quantize_step``): the image is
        HDU 1 (a consistency map follows it), its float pixels quantised with a step of 0.2 of HMI's noise
        (``quantize_step``: 2e-4 of the quiet-Sun level, or 2 G), so the error is at most 0.1 of the noise.
    no_progress_timeout : float or None
        On Dask: if no file finishes for this many seconds (no workers, or workers that keep dying), the
        files still pending become failed rows with that reason and the call returns. None waits forever.
    force : bool
        Run files that `~enhance.io.resolve_kind` refuses (not helioprojective, off HMI's pixel scale, a
        Dopplergram) and files that solar-enhance wrote. Without it such files are failed with the reason,
        and outputs of solar-enhance (their ``ENH_VER`` card or HISTORY), whatever their name, are skipped.
    as_frame : bool
        Return the records as a `pandas.DataFrame` (pandas, not a dependency, must be installed). The
        default, False, returns a list of dicts whether pandas is installed or not.
    noise : float, optional
        Noise per input pixel in the files' units, for every file (the 'full' and 'light' models); None
        measures it (see ``noise_per_frame``).
    noise_per_frame : bool
        With ``noise=None``: measure the noise on each file (`~enhance.enhance`). False (default) takes the
        files as one sequence and tells every file of a kind one level, the median of the levels measured
        on up to 16 of them spread over the sequence (`shared_noise_levels`; a continuum's relative to
        each file's quiet-Sun level), so that the network smooths every frame of a movie alike.
    symmetric : bool
        Average each file's enhancement over the 8 rotations and flips, as `~enhance.enhance` does.
    uncertainty : bool
        Write the standard deviation of each output pixel's error as an image extension named 'UNCERT'
        (`~enhance.io.uncertainty_hdu`), as ``enhance(path, output=..., uncertainty=True)`` does ('full' and
        'light' models).
    options : `~enhance.inference.pipeline.RunOptions`, optional
        ``qs_level``, ``device``, ``tile``, ``backend``, ``precision``, ``noise``, ``noise_per_frame``,
        ``symmetric``, ``uncertainty`` and ``force`` as one object, as `~enhance.enhance` takes them (its
        ``progress`` shows the bar over files); a keyword given beside it must not contradict it
        (`~enhance.inference.pipeline.run_options`).

    Returns
    -------
    list of dict
        The records of this run, one dict per input in input order, with the keys `MANIFEST_FIELDS` and
        ``error``: ``status`` is a `Status` ('done', 'skipped' or 'failed'; then ``reason`` says why and
        ``error`` is the typed exception, e.g. `~enhance.exceptions.OutputExistsError` for a complete
        output that exists, `~enhance.exceptions.DiskFullError` for a full disk), ``seconds`` the time the
        task took, ``worker`` the Dask worker that ran it (a `pandas.DataFrame` of the manifest's columns
        with ``as_frame=True``).

    Raises
    ------
    ValueError
        If no input file is found, two inputs would write the same output, or an option is invalid.
    `~enhance.exceptions.ModelNotTrainedError`
        If ``weights`` is None and the shipped model is not trained, before any task is submitted.

    Notes
    -----
    Outputs are written to a temporary file and moved into place, so a file in ``out_dir`` is never
    half-written, even if a worker dies; temporary files that a killed run left are removed at the start.
    The output directory, the weights and the manifest are checked before any file is enhanced. An
    existing output is skipped if solar-enhance wrote it for this input and it is complete (the rule
    `~enhance.io.read_fits` applies), replaced if it is incomplete, and left alone (the file fails) if
    another program wrote it. The manifest is a log of every run into ``out_dir``: each file's row is
    appended as soon as the file finishes (in one write, under a lock on the directory), so rows of
    earlier and concurrent runs are kept, and a run that is killed (even by SIGKILL) leaves the rows
    of every file it finished; a file that a concurrent run wrote first is 'skipped'. The manifest must
    be a regular file (a FIFO or a directory of that name is refused before any work). Inputs,
    outputs and the weights file must be reachable at the same paths from every worker.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.models.weights import save_weights
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fits.writeto(f"{tmp}/a.fits", np.ones((8, 8), np.float32), fits.Header({"BUNIT": "I/Ic"}))
    ...     weights = save_weights(EnhanceNet(depth=1, width=8), f"{tmp}/w.safetensors", kind="intensity")
    ...     [r["status"] for r in enhance_files(tmp, f"{tmp}/out", weights=weights, as_frame=False)]
    ['done']

    With an existing client, e.g. in a notebook: ``enhance_files("hmi/*.fits", "enhanced",
    weights="blos.safetensors", client=client)``.
    """
    kind = check_kind(kind)  # also sunpy's names ('continuum', 'magnetogram')
    options = run_options(options, qs_level=qs_level, device=device, tile=tile, backend=backend, precision=precision,
                          noise=noise, noise_per_frame=noise_per_frame, symmetric=symmetric, uncertainty=uncertainty,
                          force=force)  # fmt: skip
    _check_options(kind, model, client, n_workers, no_progress_timeout)
    if as_frame:
        _pandas()  # before any work
    if check_qs_level(options.qs_level) is not None and kind == "blos":
        raise IncompatibleOptionsError(QS_LEVEL_IS_CONTINUUM)
    sources, targets = _plan(inputs, out_dir)
    if weights is not None:
        weights = str(Path(weights).resolve())
    _preflight(kind, model, weights, options.tile, uncertainty=options.uncertainty)
    out_dir = _prepare_out_dir(Path(out_dir).absolute(), targets)
    manifest = out_dir / MANIFEST_NAME
    _start_manifest(manifest)  # a garbage manifest, or a FIFO, is named now, not after the work
    label = model_label(weights, model)
    progress, options = progress or options.progress, dataclasses.replace(options, progress=False)  # a bar over files
    shared = None
    if options.noise is None and not options.noise_per_frame:
        shared = shared_noise_levels(sources, kind=kind, weights=weights, model=model, qs_level=options.qs_level,
                                     force=options.force)  # fmt: skip
    task = partial(enhance_file, kind=kind, weights=weights, model=model, label=label, options=options,
                   overwrite=overwrite, consistency=consistency, force=options.force, compress=compress,
                   shared_noise=shared)  # fmt: skip

    records: dict[int, dict] = {}
    start = time.time()

    def finished(index, record):
        records[index] = record
        _append_manifest(manifest, [record])  # now: a killed run (SIGKILL) leaves the rows of what it finished
        bar.update()

    bar = tqdm(total=len(sources), desc="files", unit="file", disable=not progress)
    try:
        if client is None and n_workers is None:
            _run_serial(task, sources, targets, finished)
        else:
            _run_dask(task, sources, targets, finished, client=client, n_workers=n_workers,
                      timeout=no_progress_timeout, label=label)  # fmt: skip
    finally:  # also on Ctrl-C or SIGTERM: the files finished so far are recorded
        bar.close()
        meanwhile = {}
        for index in sorted(set(range(len(sources))) - set(records)):  # interrupted: tasks that ended meanwhile
            record = _finished_meanwhile(sources[index], targets[index], label, since=start)
            if record is not None:
                meanwhile[index] = record
        if meanwhile:
            records.update(meanwhile)
            _append_manifest(manifest, list(meanwhile.values()))
    return _as_frame([records[index] for index in range(len(sources))], as_frame)


def shared_noise_levels(sources, *, kind="auto", weights=None, model="full", qs_level=None, force=False) -> dict:
    """One noise level per kind for a sequence of files: `~enhance.inference.pipeline.sequence_noise` over them.

    Parameters
    ----------
    sources : sequence of str or `~pathlib.Path`
        The FITS files, in sequence order.
    kind, weights, model, qs_level, force
        As in `enhance_files`.

    Returns
    -------
    dict
        ``{kind: NoiseChoice}`` for each kind whose network is told the noise level: the median of the
        levels measured on up to 16 of its files spread over the sequence. Files that cannot be read, that
        the checks refuse or that solar-enhance wrote are left out (they fail or are skipped on their own).

    Examples
    --------
    >>> shared_noise_levels([], kind="blos")
    {}
    """

    by_kind: dict[str, list[Path]] = {}
    for source in map(Path, sources):
        try:
            check_regular_file(source)  # opening a FIFO would block
            header = _input_header(source)[1]
            if written_by_enhance(header) is None or force:
                by_kind.setdefault(_kind_for(source, kind, header, force=force), []).append(source)
        except Exception:  # noqa: BLE001 - the file's own task reports it
            continue
    levels = {}
    for each, files in by_kind.items():
        try:
            network = cached_network(weights, kind=each, model=model)
        except Exception:  # noqa: BLE001 - no network for this kind: its files fail on their own, with the reason
            continue
        frames = _FileFrames(files, read_fits)
        choice = sequence_noise(frames, kind=each, network=network, qs_level=qs_level if each == "intensity" else None)
        if choice is not None:
            levels[each] = choice
    return levels


class _FileFrames:
    """The images of FITS files, read on access (one at a time in memory)."""

    def __init__(self, files, reader):
        self.files, self.reader = files, reader

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        return self.reader(self.files[index])[0]


def _check_options(kind, model, client, n_workers, timeout):
    check_choice(kind, (*KINDS, "auto"), name="kind")
    check_choice(model, tuple(MODELS), name="model")
    if client is not None and n_workers is not None:
        msg = f"pass client= or n_workers=, not both (got client={client!r}, n_workers={n_workers!r})"
        raise ValueError(msg)
    if client is not None and not isinstance(client, str) and not _is_client(client):
        msg = f"client must be a distributed.Client or a scheduler address, got {type(client).__name__}"
        raise TypeError(msg)
    if (client is not None or n_workers is not None) and importlib.util.find_spec("distributed") is None:
        msg = ("Dask runs (--workers, --scheduler; client=, n_workers=) need dask.distributed: "
               "pip install 'solar-enhance[dask]'")  # fmt: skip
        raise ImportError(msg)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        msg = f"n_workers must be a positive integer, got {n_workers!r}"
        raise ValueError(msg)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0):
        msg = f"no_progress_timeout must be None or a positive number of seconds, got {timeout!r}"
        raise ValueError(msg)


def _plan(inputs, out_dir) -> tuple[list[Path], list[Path]]:
    """Input discovery and validation: absolute sources and their distinct outputs."""
    sources = [path.absolute() for path in find_inputs(inputs)]  # workers may run in another directory
    out_dir = Path(out_dir).absolute()
    targets = [output_path(source, out_dir) for source in sources]
    clashes = sorted(str(target) for target, count in Counter(targets).items() if count > 1)
    if clashes:
        msg = f"several inputs would write the same output: {clashes}"
        raise ValueError(msg)
    return sources, targets


def _prepare_out_dir(out_dir: Path, targets) -> Path:
    """Create ``out_dir`` if needed, check that it is writable, and remove this package's stale ``.part``
    files (left by a killed writer; files being written by a concurrent run are kept)."""
    if out_dir.exists() and not out_dir.is_dir():
        msg = f"output directory {out_dir} is not a directory"
        raise NotADirectoryError(msg)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"output directory {out_dir} cannot be created: {err.strerror or err}"
        raise PermissionError(msg) if isinstance(err, PermissionError) else OSError(msg) from None
    check_output_dir(out_dir)
    remove_stale_parts(out_dir, targets=[*targets, out_dir / MANIFEST_NAME])
    return out_dir


def _run_serial(task, sources, targets, finished) -> None:
    """One file after the other in this process. A full disk ends the run: the rest are failed, not tried."""
    full = None
    for index, (source, target) in enumerate(zip(sources, targets, strict=True)):
        if full is not None:
            finished(index, _unrun(source, target, full, task.keywords["label"]))
            continue
        record = task(source, target)
        if isinstance(record["error"], DiskFullError):
            message = f"not run: no space left on device in {Path(target).parent}"
            full = _failed(OSError(record["error"].errno, os.strerror(errno.ENOSPC)), message)
        finished(index, record)


def _run_dask(task, sources, targets, finished, *, client, n_workers, timeout, label) -> None:
    """One task per file on a Dask cluster. If no file finishes for ``timeout`` seconds (no workers, or
    workers that keep dying), the files still pending are failed with that reason and the run ends."""
    from distributed import wait

    with _dask_client(client, n_workers) as dask_client:
        futures = dask_client.map(task, [str(s) for s in sources], [str(t) for t in targets], pure=False)
        pending = {future: index for index, future in enumerate(futures)}
        while pending:
            try:
                done, _ = wait(list(pending), timeout=timeout, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = ()
            if not done:
                reason = _failed(TimeoutError(), f"no file finished in {timeout:g} s (no workers, or workers that "
                                 "keep dying); not run")  # fmt: skip
                for future, index in pending.items():
                    future.cancel()
                    finished(index, _unrun(sources[index], targets[index], reason, label))
                return
            for future in done:
                index = pending.pop(future)
                try:
                    record = future.result()
                except Exception as err:  # noqa: BLE001 - e.g. the worker died (KilledWorker)
                    record = _lost(sources[index], targets[index], err, label)
                future.release()
                finished(index, record)


def _finished_meanwhile(source, target, label, *, since):
    """The record of a file whose result never reached this run (interrupted while a worker was writing
    it) but whose output this package wrote completely since ``since``; None otherwise."""
    try:
        if not (target.stat().st_mtime >= since and fits_complete(target)):
            return None
        header = _input_header(target)[1]
    except (OSError, ValueError):
        return None
    if written_by_enhance(header) is None:
        return None
    record = _new_record(source, target, label, status=Status.DONE, kind=str(header.get("ENH_KIND", "")),
                         reason="finished while the run was interrupted")  # fmt: skip
    return _finish(record, time.perf_counter())


def _unrun(source, target, failure, label):
    """The record of a file that was not run: ``failure`` holds the fields of `_failed`."""
    return _finish(_new_record(source, target, label, **failure), time.perf_counter())


def _lost(source, target, err, label):
    return _unrun(source, target, _failed(err, f"{source}: the task was lost: {_one_line(err)}"), label)


def _pandas():
    try:
        import pandas as pd
    except ImportError as err:
        msg = "as_frame=True needs pandas (pip install pandas); without it enhance_files returns a list of dicts"
        raise ImportError(msg) from err
    return pd


def _as_frame(records, as_frame):
    """``records`` as they are, or as a `pandas.DataFrame` when asked for (``as_frame=True``)."""
    return _pandas().DataFrame.from_records(records, columns=list(MANIFEST_FIELDS)) if as_frame else records


def summarize(records, *, wall_seconds: float | None = None) -> dict:
    """Counts and timing of a manifest (the records or DataFrame returned by `enhance_files`).

    Parameters
    ----------
    records : list of dict or `pandas.DataFrame`
        Manifest rows, each with ``status`` and ``seconds``.
    wall_seconds : float, optional
        Wall-clock duration of the run, seconds.

    Returns
    -------
    dict
        ``total``, ``done``, ``skipped``, ``failed``; ``seconds_per_image``, the mean task time of the
        files done (NaN if none); with ``wall_seconds``, ``images_per_hour``, files done per hour of wall time.

    Examples
    --------
    >>> summarize([{"status": "done", "seconds": 2.0}, {"status": "failed", "seconds": 0.1}], wall_seconds=3.6)
    {'total': 2, 'done': 1, 'skipped': 0, 'failed': 1, 'seconds_per_image': 2.0, 'images_per_hour': 1000.0}
    """
    if hasattr(records, "to_dict"):
        records = records.to_dict("records")
    status = Counter(r["status"] for r in records)
    times = [float(r["seconds"]) for r in records if r["status"] == "done"]
    summary = {
        "total": len(records),
        "done": status["done"],
        "skipped": status["skipped"],
        "failed": status["failed"],
        "seconds_per_image": float(np.mean(times)) if times else float("nan"),
    }
    if wall_seconds is not None:
        summary["images_per_hour"] = 3600.0 * status["done"] / wall_seconds if wall_seconds > 0 else float("nan")
    return summary


@dataclass(frozen=True)
class _WeightsFile:
    """Sent to the workers instead of a network: each loads the file once (`cached_network`)."""

    path: str
    kind: str

    def load(self):
        return cached_network(self.path, kind=self.kind)


@dataclass(frozen=True)
class _Network:
    """A network sent to the workers as one node of the graph."""

    network: object

    def load(self):
        return self.network


def _at_least(sizes, minimum):
    """Merge chunks smaller than ``minimum`` into a neighbour (an overlap can be no deeper than a chunk)."""
    merged: list[int] = []
    for size in sizes:
        if merged and merged[-1] < minimum:
            merged[-1] += size
        else:
            merged.append(size)
    if len(merged) > 1 and merged[-1] < minimum:
        last = merged.pop()
        merged[-1] += last
    return tuple(merged)


def _checked_sample(sample, kind, force):
    """``sample`` (a regular subsample of a dask image) once `check_values` has found it fits ``kind``."""
    check_values(sample, kind, force=force, name="the dask array (a regular sample of it)")
    return sample


def _enhance_block(block, network, qs_level, checked, *, kind, margin, input_chunks, options, block_info=None):
    """Enhance one overlapped chunk (once ``checked``, the checked sample, exists) and cut away the (doubled)
    overlap."""
    network = network.load()
    location, n_chunks = block_info[0]["chunk-location"], block_info[0]["num-chunks"]
    if isinstance(qs_level, QuietSunSurface):  # the piece of the global surface under this chunk
        origin = [sum(sizes[:at]) - (margin if at > 0 else 0) for sizes, at in zip(input_chunks, location, strict=True)]
        qs_level = qs_level.window(*origin, block.shape)
    if np.isfinite(block).any():
        out = enhance_array(block, kind=kind, network=network, options=dataclasses.replace(options, qs_level=qs_level))
    else:  # an off-limb chunk of a full-disk image
        out = np.full((2 * block.shape[0], 2 * block.shape[1]), np.nan, dtype=supported_float_type(block.dtype))
    cuts = []
    for axis in (0, 1):
        before = margin if location[axis] > 0 else 0
        after = margin if location[axis] < n_chunks[axis] - 1 else 0
        cuts.append(slice(2 * before, out.shape[axis] - 2 * after))
    return out[tuple(cuts)]


def enhance_dask(
    array,
    kind: str = "intensity",
    *,
    model: str = "full",
    network=None,
    weights=None,
    qs_level: float | None = None,
    device: str = "auto",
    tile: int | None = None,
    backend: str = "auto",
    precision: str = "float32",
    noise=None,
    symmetric: bool = False,
    uncertainty: bool = False,
    options: RunOptions | None = None,
):
    """Enhance one large image held as a `dask.array.Array`, lazily, chunk by chunk.

    Parameters
    ----------
    array : (ny, nx) `dask.array.Array`
        The image (continuum or magnetogram at HMI's 0.504 arcsec per pixel), chunked as you like.
        Chunks smaller than the receptive-field margin are merged into a neighbour.
    kind : {'intensity', 'blos', 'continuum', 'magnetogram'}
        As in `~enhance.enhance` (not 'auto': an array has no header).
    model : {'full', 'light', 'paper', 'paper-light'}
        Shipped model, when neither ``network`` nor ``weights`` is given.
    network : `~enhance.models.network.EnhanceNet`, optional
        The network; it becomes one node of the graph and is sent once to each worker that needs it.
    weights : str or `~pathlib.Path`, optional
        A weights file (safetensors or ONNX) that every worker loads once (a path they can read), instead
        of ``network``.
    qs_level : float, 'level', 'surface' or None
        Quiet-Sun normalisation (intensity only), as in `~enhance.enhance`. Estimates are made once for
        the whole image, lazily, on the same regular grid of at most 65,536 pixels that
        `~enhance.enhance` uses (`~enhance.observation.quiet_sun.qs_normalisation`), so both give the same level or
        surface; each chunk is scaled by its piece of that surface.
    device : str
        As in `~enhance.enhance`, resolved on each worker.
    tile : int, optional
        Tile size within each chunk (`~enhance.enhance`); None tiles chunks above 1024x1024 pixels.
    backend, precision
        As in `~enhance.enhance`.
    noise : float, optional
        Noise per input pixel in the image's units (gauss for magnetograms; a number, not a Quantity),
        for the networks told the noise level (the 'full' and 'light' models). None measures it once,
        when the graph is built, on the central 1024 x 1024 pixels
        (`~enhance.inference.pipeline.network_noise`), so that every chunk runs with the same level.
    symmetric : bool
        Average each chunk over the 8 rotations and flips, as in `~enhance.enhance` (exact: the overlap
        covers the network's reach in every orientation).
    uncertainty : bool
        Refused (`~enhance.exceptions.UnsupportedOptionError`): the per-pixel uncertainty draws noise over
        the whole image and filters the whole output (`~enhance.inference.uncertainty`), which no chunk
        sees; compute the array and call `~enhance.enhance`, or write it to FITS files for
        `enhance_files`.
    options : `~enhance.inference.pipeline.RunOptions`, optional
        The options above as one object (``progress`` and ``noise_per_frame`` do nothing here; ``force`` runs
        values that `~enhance.inference.pipeline.check_values` refuses on the image's regular sample);
        a keyword given beside it must not contradict it (`~enhance.inference.pipeline.run_options`).

    Returns
    -------
    (2 ny, 2 nx) `dask.array.Array`
        Lazy; its chunks are twice the (merged) input chunks, dtype as in `~enhance.enhance`.

    Notes
    -----
    `dask.array.overlap.overlap` gives every chunk the network's receptive margin (18 pixels for the
    default models, ``receptive_margin(depth)`` = 2 depth + 3 for the paper's) of neighbouring input
    pixels on each side, and none at the image edges, where the network pads as in a whole-image
    pass; the doubled overlap is cut from each output chunk. Memory per task is bounded by the chunk
    (plus overlap) and ``tile``. What holds:

    - The intensity scale is global: ``qs_level``, or one estimate (level or surface) for the whole
      image; magnetograms use the fixed kG scale. No chunk is normalised on its own.
    - The values are checked as `~enhance.enhance` checks them (`~enhance.inference.pipeline.check_values`,
      unless ``force``) on the image's regular sample of at most 65,536 pixels, one task that every chunk
      waits for: a value that does not fit the kind stops the computation before any chunk runs.
    - For finite input the result equals whole-image inference (`~enhance.enhance`, same ``qs_level``) to
      float32 rounding (within 1e-4 relative).
    - Non-finite input pixels give NaN at their 2x2 output pixels and finite input gives finite output,
      as in `~enhance.enhance`; an all-NaN chunk gives NaN without running the network.
    - NaN pixels are filled with the nearest finite pixel *within the chunk and its overlap*, not the whole
      image. Output pixels more than ``receptive_margin(depth)`` input pixels from every NaN equal the
      whole-image result; near NaN (e.g. at the limb) they can differ where a chunk border passes.

    Examples
    --------
    >>> import dask.array as da
    >>> from enhance.models.network import EnhanceNet
    >>> image = da.ones((64, 48), chunks=32)
    >>> out = enhance_dask(image, "intensity", network=EnhanceNet(depth=1, width=8))
    >>> out.shape, out.chunks
    ((128, 96), ((64, 64), (64, 32)))
    """
    try:
        import dask
        import dask.array as da
    except ImportError as err:
        msg = "enhance_dask needs dask: pip install 'solar-enhance[dask]'"
        raise ImportError(msg) from err
    if not isinstance(array, da.Array):
        msg = f"array must be a dask.array.Array (use enhance.enhance for in-memory images), got {type(array).__name__}"
        raise TypeError(msg)
    if array.ndim != 2:
        msg = f"array must be 2-D (ny, nx), got shape {array.shape}"
        raise ValueError(msg)
    kind = check_kind(kind, auto=False)
    options = run_options(options, qs_level=qs_level, device=device, tile=tile, backend=backend, precision=precision,
                          noise=noise, symmetric=symmetric, uncertainty=uncertainty)  # fmt: skip
    if options.uncertainty:
        msg = ("uncertainty=True needs the whole image (a noise draw over it, its whole output filtered): not "
               "available chunk by chunk for a dask array; compute() it and call enhance, or use "
               "enhance_files")  # fmt: skip
        raise UnsupportedOptionError(msg)
    dtype = supported_float_type(array.dtype)
    if weights is not None:
        if network is not None:
            msg = "pass network= or weights=, not both"
            raise ValueError(msg)
        net = _load_file(weights, kind=kind)  # checks the file before any task runs
        net_arg = _WeightsFile(str(Path(weights).resolve()), kind)
    else:
        net = resolve_network(kind, model=model, network=network)
        net_arg = dask.delayed(_Network(net), name=f"enhance-network-{uuid.uuid4().hex}")
    margin = network_margin(net)
    qs_level = check_qs_level(options.qs_level)
    if kind == "blos" and qs_level is not None:
        raise IncompatibleOptionsError(QS_LEVEL_IS_CONTINUUM)
    check_values(np.empty(0, dtype=array.dtype), kind, force=True, name="array")  # booleans, strings: now
    step = qs_stride(array.shape)  # the very pixels `enhance` would look at for the same image
    # Values that do not fit the kind are refused on the same regular sample, once, before any chunk runs
    # (`check_values` on it; the whole image is never in one place).
    sample = dask.delayed(_checked_sample)(array[::step, ::step], kind, options.force)
    if kind == "intensity" and (qs_level is None or isinstance(qs_level, str)):
        level = dask.delayed(normalisation_from_samples)(sample, step, array.shape, qs_level)
    elif kind == "intensity":
        level = qs_level
    else:
        level = None
    noise = _global_noise(array, kind, level, net) if options.noise is None else options.noise
    chunked = array.rechunk(tuple(_at_least(sizes, margin) for sizes in array.chunks))
    overlapped = da.overlap.overlap(chunked, depth={0: margin, 1: margin}, boundary={0: "none", 1: "none"})
    return da.map_blocks(
        _enhance_block,
        overlapped,
        net_arg,
        level,
        sample,
        chunks=tuple(tuple(2 * size for size in sizes) for sizes in chunked.chunks),
        dtype=dtype,
        meta=np.empty((0, 0), dtype=dtype),
        kind=kind,
        margin=margin,
        input_chunks=chunked.chunks,
        options=dataclasses.replace(options, qs_level=None, progress=False, noise=noise),
    )


def _global_noise(array, kind, level, network):
    """The noise of a dask image in its units, measured once on its central pixels as `enhance` measures it."""
    import dask

    runner = as_runner(network)
    if not runner.needs_noise:
        return None
    top, left = (max((n - NOISE_CROP) // 2, 0) for n in array.shape)
    crop, level = dask.compute(array[top : top + NOISE_CROP, left : left + NOISE_CROP], level)
    crop = np.asarray(crop, dtype=np.float64)
    finite = np.isfinite(crop)
    if not finite.any():
        return None  # every chunk there is off the disk: each measures its own
    if kind == "blos":
        scale, divisor = GAUSS_PER_KG, GAUSS_PER_KG
    elif isinstance(level, QuietSunSurface):  # the surface under the crop, as `enhance` divides by it
        scale, divisor = float(np.median(level.samples)), level.window(top, left, crop.shape)()
    else:
        scale = divisor = float(level)
    normalised = fill_nonfinite(crop, finite) / divisor
    return network_noise(normalised, nominal=runner.noise_unit, finite=finite) * scale
