"""The ONNX graphs of the shipped models, built and checked once per user and kept in a cache folder.

Building a shipped model's graph needs the ``onnx`` package (0.6 s to import, more than the light model's
run on a cut-out) and so does checking it (`~enhance.runtime.onnx_checks`).
`~enhance.runtime.export.shipped_onnx_network` builds, checks and probes the graph the first time and writes it
here with what the checks found; the next processes read it back and open it with onnxruntime alone.

An entry is two files in ``cache_dir() / "onnx"``: ``KEY.onnx``, the graph, and ``KEY.json``, its record:
the checked values, the filter bank and a sha256 of the graph's bytes and of these values. ``KEY`` is a
digest of everything the graph is made from: the kind, the model, the weights file's sha256 (checked
against the registry before the cache is asked), the model card, the package version and the source of the
modules that build and check graphs, so that a new version, new weights or an edited builder never meet an
old graph. An entry is used only when its record names its key and the sha256 matches; anything else (a
damaged, truncated or edited file, a missing or unreadable one, a FIFO) is rebuilt and checked again, never
trusted. The files are written atomically (`~enhance.io.atomic_write`); where the folder cannot be written
the graph is built each time.

onnxruntime runs a graph fastest in the layout it chooses for the CPU it runs on
(`~enhance.runtime.ort_blocked`); that rewritten graph is kept too, under `layout_key`, which adds
onnxruntime's version and the CPU's model and instruction-set flags to ``KEY``: a cache folder shared by
machines of several kinds holds one per kind, and each is probed against the plain graph before it runs.

The sha256 detects damage, and edits of one file: whoever can write the cache folder can also write
the record, as whoever can write the package's folder can change its code. Set ``ENHANCE_CACHE_DIR`` to
move the cache (``XDG_CACHE_HOME`` is followed on Linux).
"""

import base64
import functools
import hashlib
import importlib.util
import json
import logging
import os
import platform
import stat
import sys
from pathlib import Path

import numpy as np

from .._version import __version__
from ..cores import cpu_model
from ..io import atomic_write

__all__ = ["CACHE_ENV", "cache_dir", "graph_key", "layout_key", "read_graph", "write_graph", "cached_graph",
           "kept_layout", "keep_layout", "open_in_kept_layout", "encode_bank", "decode_bank", "encode_arrays",
           "decode_arrays"]  # fmt: skip

logger = logging.getLogger(__name__)

#: Environment variable naming the cache folder (the graphs go in its ``onnx`` subfolder).
CACHE_ENV = "ENHANCE_CACHE_DIR"
#: The modules whose code makes or checks a graph or writes its record: their source is part of every key.
_BUILDERS = (
    "export.py",
    "folding.py",
    "onnx_checks.py",
    "onnx_runner.py",
    "ort_blocked.py",
    "wiener_onnx.py",
    "constant_pieces.py",
    "onnx_cache.py",
    "graph_template.py",
)
#: Largest file of an entry that is read (bytes): the shipped graphs are a few MB.
_MAX_BYTES = 256 * 2**20


def cache_dir() -> Path:
    """The folder of solar-enhance's cache: ``$ENHANCE_CACHE_DIR``, else the user's cache folder.

    Returns
    -------
    `~pathlib.Path`
        ``$ENHANCE_CACHE_DIR`` if set; else ``$XDG_CACHE_HOME/solar-enhance`` (``~/.cache/solar-enhance``) on
        Linux, ``~/Library/Caches/solar-enhance`` on macOS, ``%LOCALAPPDATA%/solar-enhance`` on Windows. It
        may not exist yet.

    Examples
    --------
    >>> cache_dir().name in ("solar-enhance", Path(os.environ.get(CACHE_ENV, "x")).name)
    True
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "solar-enhance"


def graph_key(kind: str, model: str, *, weights_sha256: str, symmetric: bool, card: dict | None) -> str:
    """The cache key of a shipped model's graph: a digest of everything the graph is made from.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        What the model enhances.
    model : str
        The shipped model ('full', 'light', ...).
    weights_sha256 : str
        The weights file's sha256, as checked against the registry.
    symmetric : bool
        Whether the model averages over the 8 rotations and flips.
    card : dict or None
        The model card recorded in the graph.

    Returns
    -------
    str
        ``KIND-MODEL-`` and 32 hexadecimal digits; any change of the inputs, of the package version or of
        the source of the modules that build and check graphs gives another key.

    Examples
    --------
    >>> a = graph_key("blos", "light", weights_sha256="0" * 64, symmetric=False, card=None)
    >>> b = graph_key("blos", "light", weights_sha256="1" * 64, symmetric=False, card=None)
    >>> a.startswith("blos-light-"), a == b
    (True, False)
    """
    parts = {"kind": kind, "model": model, "weights_sha256": weights_sha256, "symmetric": bool(symmetric),
             "card": card, "version": __version__}  # fmt: skip
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode())
    for name in _BUILDERS:
        digest.update((Path(__file__).parent / name).read_bytes())
    return f"{kind}-{model}-{digest.hexdigest()[:32]}"


def layout_key(key: str, *, runtime: str | None = None, cpu: tuple[str, str] | None = None) -> str:
    """The cache key of a graph as onnxruntime rewrote it for this machine (`~enhance.runtime.ort_blocked`).

    Parameters
    ----------
    key : str
        The plain graph's `graph_key`.
    runtime : str, optional
        onnxruntime's version; None: the installed one.
    cpu : tuple of str, optional
        The CPU's model and flags (`~enhance.cores.cpu_model`); None: this machine's.

    Returns
    -------
    str
        ``KEY-`` and 16 hexadecimal digits of onnxruntime's version and the CPU.

    Examples
    --------
    >>> a = layout_key("blos-light-0", runtime="1.0", cpu=("AMD EPYC", "avx2"))
    >>> b = layout_key("blos-light-0", runtime="1.0", cpu=("AMD EPYC", "avx2 avx512f"))
    >>> a.startswith("blos-light-0-"), a == b
    (True, False)
    """
    machine = _machine()
    parts = [key, runtime or machine[0], list(cpu or machine[1]), *machine[2:]]
    return f"{key}-{hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]}"


@functools.cache
def _machine():
    """onnxruntime's version, the CPU's model and flags, the architecture and the platform: read once a process
    (each graph a run opens asks for its layout)."""
    import onnxruntime

    return onnxruntime.__version__, cpu_model(), platform.machine(), sys.platform


def _read(path: Path) -> bytes:
    """The bytes of a regular file; `OSError` for anything else (opened without blocking: a FIFO never hangs)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_BYTES:
            msg = f"{path} is not a regular file of at most {_MAX_BYTES} bytes"
            raise OSError(msg)
        with os.fdopen(os.dup(fd), "rb") as file:
            return file.read()
    finally:
        os.close(fd)


def _folder() -> Path:
    return cache_dir() / "onnx"


def read_graph(key: str) -> tuple[bytes, dict] | None:
    """A cached graph and its record, if the entry of ``key`` is whole and its graph has the recorded sha256.

    Parameters
    ----------
    key : str
        From `graph_key`.

    Returns
    -------
    (bytes, dict) or None
        The graph's bytes and the record `write_graph` stored (``checked``, ``filter_bank``, ...); None when
        there is no entry or it cannot be trusted: the caller then builds and checks the graph.

    Examples
    --------
    >>> read_graph("no-such-key") is None
    True
    """
    try:
        record = json.loads(_read(_folder() / f"{key}.json"))
        data = _read(_folder() / f"{key}.onnx")
    except (OSError, ValueError) as err:  # ValueError: not JSON
        logger.debug("no cached graph %s: %s", key, err)
        return None
    if not isinstance(record, dict) or record.get("key") != key or not isinstance(record.get("checked"), dict):
        logger.debug("cached graph %s: its record is not one of this cache's", key)
        return None
    if record.get("sha256") != _digest(data, record):
        logger.info("cached graph %s does not have its recorded sha256: built again", key)
        return None
    return data, record


def _digest(data: bytes, record: dict) -> str:
    """sha256 of a graph's bytes and of its record (all but the digest itself)."""
    digest = hashlib.sha256(data)
    digest.update(json.dumps({k: v for k, v in record.items() if k != "sha256"}, sort_keys=True).encode())
    return digest.hexdigest()


def write_graph(key: str, data: bytes, record: dict) -> bool:
    """Keep a built and checked graph under ``key``, with ``record`` and the sha256 of both.

    Parameters
    ----------
    key : str
        From `graph_key`.
    data : bytes
        The serialised graph, checked (`~enhance.runtime.onnx_checks.check_onnx_model`) and probed.
    record : dict
        JSON-serialisable values to keep with it (``checked``: what the checks found; ``filter_bank``).

    Returns
    -------
    bool
        Whether the entry was written; False (logged) where the folder cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     os.environ[CACHE_ENV] = folder
    ...     written = write_graph("k", b"graph", {"checked": {"depth": 1}})
    ...     data, record = read_graph("k")
    ...     del os.environ[CACHE_ENV]
    >>> written, data, record["checked"]
    (True, b'graph', {'depth': 1})
    """
    record = {**record, "key": key}
    text = json.dumps({**record, "sha256": _digest(data, record)}, sort_keys=True)
    try:
        _folder().mkdir(parents=True, exist_ok=True)
        atomic_write(_folder() / f"{key}.onnx", lambda tmp: Path(tmp).write_bytes(data), overwrite=True)
        atomic_write(_folder() / f"{key}.json", lambda tmp: Path(tmp).write_text(text), overwrite=True)
    except (OSError, ValueError) as err:  # ValueError: a directory or a FIFO where an entry goes
        logger.info("the graph is not cached (%s): it is built again next time", err)
        return False
    return True


def cached_graph(key: str | None, build) -> bytes:
    """The graph kept under ``key``, or ``build()`` serialised and kept there (a part of a shipped model's run).

    Parameters
    ----------
    key : str or None
        Its cache key; None builds without the cache.
    build : callable
        Returns the `onnx.ModelProto` to keep (called only when the entry is missing or cannot be trusted).

    Returns
    -------
    bytes
        The serialised graph.

    Examples
    --------
    >>> import tempfile
    >>> class Graph:
    ...     def SerializeToString(self):
    ...         return b"graph"
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     os.environ[CACHE_ENV] = folder
    ...     first, again = cached_graph("part", Graph), cached_graph("part", lambda: None)  # the second is read back
    ...     del os.environ[CACHE_ENV]
    >>> first, again
    (b'graph', b'graph')
    """
    cached = read_graph(key) if key else None
    if cached is not None:
        return cached[0]
    data = build().SerializeToString()
    if key:
        write_graph(key, data, {"checked": {"built": True}})
    return data


def kept_layout(key: str | None) -> bool | bytes:
    """How to open the graph of ``key`` on this machine: the blocked graph kept for it (`layout_key`), False
    where the plain graph was found to run here, True where nothing is kept yet (rewrite, then `keep_layout`).

    Parameters
    ----------
    key : str or None
        The plain graph's key; None: True.

    Returns
    -------
    bool or bytes
        The ``blocked`` argument of `~enhance.runtime.onnx_runner.open_session`.

    Examples
    --------
    >>> kept_layout(None), kept_layout("no-such-key")
    (True, True)
    """
    kept = read_graph(layout_key(key)) if key else None
    return True if kept is None else kept[0] or False  # empty bytes: the plain graph runs on this machine


def keep_layout(key: str | None, layout: str, rewritten: bytes | None) -> None:
    """Keep the layout found for the graph of ``key`` on this machine: its blocked graph, or empty bytes for the
    plain one (`kept_layout` reads it back). Where the ``onnx`` package, which rewrites graphs, is missing, a
    plain layout is not kept: the rewrite is tried again once it can run.

    Parameters
    ----------
    key : str or None
        The plain graph's key; None keeps nothing.
    layout : {'blocked', 'plain'}
        The layout that runs.
    rewritten : bytes or None
        The blocked graph (None for 'plain').

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     os.environ[CACHE_ENV] = folder
    ...     keep_layout("k", "plain", None)
    ...     found = kept_layout("k")
    ...     del os.environ[CACHE_ENV]
    >>> found
    False
    """
    if not key:
        return
    if layout != "blocked" and importlib.util.find_spec("onnx") is None:
        return  # the rewrite could not run here: nothing is known of this machine yet
    write_graph(layout_key(key), rewritten or b"", {"checked": {"layout": layout}})


def open_in_kept_layout(key: str | None, open_with):
    """``open_with(blocked)`` in the layout kept for the graph of ``key`` on this machine (`kept_layout`), and
    the layout found kept (`keep_layout`) where none was, or where the kept blocked graph no longer reproduces
    the plain one (it is rewritten then).

    Parameters
    ----------
    key : str or None
        The plain graph's key; None rewrites each time and keeps nothing.
    open_with : callable
        ``open_with(blocked) -> (opened, layout, rewritten)``, ``blocked`` as
        `~enhance.runtime.onnx_runner.open_session` takes it.

    Returns
    -------
    object
        What ``open_with`` opened.

    Examples
    --------
    >>> open_in_kept_layout(None, lambda blocked: ("session", "plain", None))
    'session'
    """
    blocked = kept_layout(key)
    opened, layout, rewritten = open_with(blocked)
    if isinstance(blocked, bytes) and layout != "blocked":  # kept for another runtime build: rewrite it
        blocked = True
        opened, layout, rewritten = open_with(True)
    if blocked is True:
        keep_layout(key, layout, rewritten)
    return opened


def encode_bank(bank) -> dict:
    """A filter bank ``(filters, noise_nodes, noise_unit)`` as JSON values, the filters' float64 bytes exactly.

    Parameters
    ----------
    bank : tuple
        As `~enhance.runtime.wiener_onnx.graph_filter_bank` returns it.

    Returns
    -------
    dict
        ``filters`` (base64 of little-endian float64), ``shape``, ``noise_nodes``, ``noise_unit``.

    Examples
    --------
    >>> bank = (np.arange(8.0).reshape(2, 1, 2, 2) / 3, (1.0, 2.0), 1e-3)
    >>> restored = decode_bank(encode_bank(bank))
    >>> bool((restored[0] == bank[0]).all()), restored[1:]
    (True, ((1.0, 2.0), 0.001))
    """
    filters, nodes, unit = bank
    return {**_encoded(filters, "filters"), "noise_nodes": [float(v) for v in nodes], "noise_unit": float(unit)}


def decode_bank(values: dict) -> tuple:
    """The filter bank `encode_bank` wrote.

    Parameters
    ----------
    values : dict
        From `encode_bank`.

    Returns
    -------
    tuple
        ``(filters, noise_nodes, noise_unit)``: float64 array, tuple of float, float.

    Examples
    --------
    >>> decode_bank(encode_bank((np.ones((4, 1, 1, 1)), (1.0,), 2.0)))[0].shape
    (4, 1, 1, 1)
    """
    filters = _decoded(values, "filters")
    return filters, tuple(float(v) for v in values["noise_nodes"]), float(values["noise_unit"])


def encode_arrays(arrays) -> dict:
    """Named arrays as JSON values, their float64 bytes exactly (a record of `write_graph`).

    Parameters
    ----------
    arrays : mapping of str to array
        E.g. `~enhance.runtime.constant_pieces.summed_state`.

    Returns
    -------
    dict
        Per name, ``data`` (base64 of little-endian float64) and ``shape``.

    Examples
    --------
    >>> arrays = {"a": np.arange(6.0).reshape(2, 3) / 7, "b": np.ones(1)}
    >>> restored = decode_arrays(encode_arrays(arrays))
    >>> bool((restored["a"] == arrays["a"]).all()), restored["b"].shape
    (True, (1,))
    """
    return {name: _encoded(array, "data") for name, array in arrays.items()}


def decode_arrays(values: dict) -> dict:
    """The named float64 arrays `encode_arrays` wrote.

    Parameters
    ----------
    values : dict
        From `encode_arrays`.

    Returns
    -------
    dict of str to `~numpy.ndarray`
        The arrays, float64, under their names.

    Examples
    --------
    >>> decode_arrays(encode_arrays({"w": np.zeros((1, 2, 1, 1))}))["w"].shape
    (1, 2, 1, 1)
    """
    return {name: _decoded(value, "data") for name, value in values.items()}


def _encoded(array, name):
    array = np.ascontiguousarray(array, dtype="<f8")
    return {name: base64.b64encode(array.tobytes()).decode("ascii"), "shape": list(array.shape)}


def _decoded(values, name):
    return np.frombuffer(base64.b64decode(values[name]), dtype="<f8").reshape(values["shape"]).astype(np.float64)
