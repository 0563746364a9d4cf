"""Serve the browser page of Enhance (built by ``make web`` into ``web/dist``) on this computer.

The page runs the paper's light network with onnxruntime-web on WebAssembly; it needs no computation on the
server, so any static file server will do. This one (``enhance web``) adds what makes the page fast:
the cross-origin isolation headers (``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp``) under which browsers allow WebAssembly threads, and
the MIME types of ES modules (``.mjs``) and WebAssembly (``.wasm``). It binds 127.0.0.1 only.
Imports neither torch nor onnxruntime.
"""

import http.server
import logging
import sys
from pathlib import Path

__all__ = ["DEFAULT_ROOT", "HEADERS", "check_root", "make_server"]

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


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **_TYPES}

    def end_headers(self):
        for key, value in HEADERS.items():
            self.send_header(key, value)
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 - the signature of BaseHTTPRequestHandler
        _log.debug("%s %s", self.address_string(), format % args)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A browser that closes a connection early (a cancelled download) is not an error worth a traceback.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            _log.debug("%s closed the connection: %s", client_address, error)
            return
        super().handle_error(request, client_address)


def make_server(root=None, *, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server of the built page on 127.0.0.1; call ``serve_forever()`` on it.

    Parameters
    ----------
    root : str or `~pathlib.Path`, optional
        The built page; defaults to `DEFAULT_ROOT`.
    port : int
        TCP port; 0 picks a free one (read it from ``server.server_address[1]``). Defaults to 8000.

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
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(path), **kwargs)

    server = _Server(("127.0.0.1", port), Handler)
    server.root = path
    return server
