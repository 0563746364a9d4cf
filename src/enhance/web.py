"""Serve the browser page of Enhance (built by ``make web`` into ``web/dist``) on this computer.

The page runs the default light model (or the paper's light network) with onnxruntime-web on WebAssembly;
it needs no computation on the server, so any static file server will do. This one (``enhance web``) adds
what makes the page fast: the cross-origin isolation headers (``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp``) under which browsers allow WebAssembly threads, and
the MIME types of ES modules (``.mjs``) and WebAssembly (``.wasm``). It binds 127.0.0.1 only, serves files
inside its root only (no directory listings, no links out of it), and closes idle connections
(`IDLE_TIMEOUT`), serving at most `MAX_CONNECTIONS` at once.
Imports neither torch nor onnxruntime.
"""

import http
import http.server
import logging
import os
import sys
import threading
from pathlib import Path

__all__ = ["DEFAULT_ROOT", "HEADERS", "IDLE_TIMEOUT", "MAX_CONNECTIONS", "check_root", "make_server"]

_log = logging.getLogger(__name__)

#: The built page of a source checkout (``make web``): ``<repository>/web/dist``.
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "web" / "dist"
#: Headers sent with every response: cross-origin isolation (WebAssembly threads) and no stale caching.
HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".fits": "application/fits",
    ".json": "application/json",
    ".css": "text/css",
    ".html": "text/html",
}


def check_root(root=None) -> Path:
    """The folder of the built page (``root``, or `DEFAULT_ROOT`), checked to hold ``index.html`` and ``models/``.

    Parameters
    ----------
    root : str or `~pathlib.Path`, optional
        The built page (``make web`` writes ``web/dist``); defaults to `DEFAULT_ROOT`.

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    FileNotFoundError
        If the page is not built there, with the command that builds it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     (pathlib.Path(folder) / "index.html").touch()
    ...     (pathlib.Path(folder) / "models").mkdir()
    ...     print(check_root(folder) == pathlib.Path(folder))
    True
    """
    path = Path(root) if root is not None else DEFAULT_ROOT
    if not (path / "index.html").is_file() or not (path / "models").is_dir():
        msg = (f"the web page is not built in {path} (no index.html and models/); build it with `make web` in the "
               "solar-enhance source checkout, or pass --root DIR")  # fmt: skip
        raise FileNotFoundError(msg)
    return path


#: Seconds an open connection may stay idle before the server closes it.
IDLE_TIMEOUT = 30.0
#: Connections served at once; more are closed at once rather than held by a thread each.
MAX_CONNECTIONS = 64


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **_TYPES}
    timeout = IDLE_TIMEOUT  # the socket's: an idle connection ends instead of holding its thread

    def end_headers(self):
        for key, value in HEADERS.items():
            self.send_header(key, value)
        super().end_headers()

    def send_head(self):
        """Serve files of the root only: no listing, nothing reached through a link out of it, a clean 400 for
        a path the file system cannot hold (``/%00``)."""
        try:
            path = self.translate_path(self.path)
            real, root = os.path.realpath(path), os.path.realpath(self.directory)
        except ValueError:  # an embedded NUL byte
            self.send_error(http.HTTPStatus.BAD_REQUEST, "Bad request path")
            return None
        if os.path.commonpath([real, root]) != root:
            self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")
            return None
        if os.path.isdir(real) and not os.path.isfile(os.path.join(real, "index.html")):
            self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")  # never a directory listing
            return None
        try:
            return super().send_head()
        except ValueError:
            self.send_error(http.HTTPStatus.BAD_REQUEST, "Bad request path")
            return None

    def list_directory(self, path):
        self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")
        return None

    def log_message(self, format, *args):  # noqa: A002 - the signature of BaseHTTPRequestHandler
        _log.debug("%s %s", self.address_string(), format % args)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, *, max_connections=MAX_CONNECTIONS):
        self.slots, self.max_connections = threading.BoundedSemaphore(max_connections), max_connections
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):  # every slot busy: close it rather than start a thread
            _log.debug("%s refused: %d connections open", client_address, self.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        # A browser that closes a connection early (a cancelled download), or one that stays idle past the
        # timeout, is not an error worth a traceback.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            _log.debug("%s: connection ended: %s", client_address, error)
            return
        super().handle_error(request, client_address)


def make_server(root=None, *, port: int = 8000, idle_timeout: float = IDLE_TIMEOUT,
                max_connections: int = MAX_CONNECTIONS) -> http.server.ThreadingHTTPServer:  # fmt: skip
    """An HTTP server of the built page on 127.0.0.1; call ``serve_forever()`` on it.

    Parameters
    ----------
    root : str or `~pathlib.Path`, optional
        The built page; defaults to `DEFAULT_ROOT`.
    port : int
        TCP port; 0 picks a free one (read it from ``server.server_address[1]``). Defaults to 8000.
    idle_timeout : float
        Seconds a connection may stay idle before it is closed; defaults to `IDLE_TIMEOUT` (30 s).
    max_connections : int
        Connections served at once (one thread each); more are closed at once. Defaults to `MAX_CONNECTIONS`.

    Returns
    -------
    `http.server.ThreadingHTTPServer`
        Bound and listening; ``server.root`` is the folder it serves.

    Raises
    ------
    FileNotFoundError
        If the page is not built (see `check_root`).
    ValueError
        If ``port`` is not in 0-65535.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     (pathlib.Path(folder) / "index.html").touch()
    ...     (pathlib.Path(folder) / "models").mkdir()
    ...     server = make_server(folder, port=0)
    ...     print(server.server_address[0])
    ...     server.server_close()
    127.0.0.1
    """
    path = check_root(root)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        msg = f"port must be an integer in 0-65535, got {port!r}"
        raise ValueError(msg)

    class Handler(_Handler):
        timeout = float(idle_timeout)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(path), **kwargs)

    server = _Server(("127.0.0.1", port), Handler, max_connections=int(max_connections))
    server.root = path
    return server
