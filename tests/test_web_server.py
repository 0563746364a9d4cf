"""``enhance web`` against hostile requests, on 127.0.0.1 only: no directory listings, no links out of its root,
a clean 400 for ``/%00``, idle connections closed, and a bounded number of threads."""

import http.client
import socket
import threading

import pytest

from enhance.web import make_server


@pytest.fixture
def site(tmp_path):
    """A built page in ``root`` (index.html, models/, a link inside it and one out of it) and a secret beside it."""
    root = tmp_path / "root"
    (root / "models").mkdir(parents=True)
    (root / "index.html").write_text("<html>page</html>")
    (root / "models" / "light.onnx").write_bytes(b"onnx")
    (root / "data").mkdir()
    (root / "data" / "a.fits").write_bytes(b"SIMPLE")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    (root / "leak.txt").symlink_to(secret)
    (root / "leakdir").symlink_to(tmp_path)
    (root / "alias.html").symlink_to(root / "index.html")
    return root


@pytest.fixture
def serve(site):
    servers = []

    def start(**options):
        httpd = make_server(site, port=0, **options)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return httpd.server_address[1]

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_files_of_the_root_are_served_and_nothing_else(serve, capsys):
    port = serve()
    assert _get(port, "/") == (200, b"<html>page</html>")
    assert _get(port, "/models/light.onnx") == (200, b"onnx")
    assert _get(port, "/alias.html") == (200, b"<html>page</html>")  # a link inside the root
    for path in ("/models/", "/data", "/data/", "/leak.txt", "/leakdir/secret.txt", "/leakdir/", "/../secret.txt"):
        status, body = _get(port, path)
        assert status == 404, path
        assert b"do not serve" not in body
        assert b"a.fits" not in body  # no listing
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("path", ["/%00", "/index.html%00", "/models/%00x"])
def test_a_nul_byte_is_a_clean_400(serve, capsys, path):
    port = serve()
    status, _ = _get(port, path)
    assert status == 400
    assert _get(port, "/")[0] == 200  # the server goes on
    assert "Traceback" not in capsys.readouterr().err


def test_idle_connections_are_closed(serve):
    port = serve(idle_timeout=0.3)
    with socket.create_connection(("127.0.0.1", port)) as idle:
        idle.settimeout(10)  # far longer than the server's: the server closes first
        assert idle.recv(1) == b""  # closed by the server, no request ever sent
    assert _get(port, "/")[0] == 200


def test_connections_beyond_the_bound_are_closed_not_held(serve):
    port = serve(idle_timeout=30, max_connections=3)
    before = threading.active_count()
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        for sock in extra:
            sock.settimeout(10)
            assert sock.recv(1) == b""  # closed at once: no thread waits on it
            sock.close()
        assert threading.active_count() <= before + 3
    finally:
        for sock in held:
            sock.close()
    for _ in range(100):  # the held connections' threads end once their sockets close
        if _get_ok(port):
            break
        threading.Event().wait(0.05)
    assert _get(port, "/")[0] == 200


def _get_ok(port):
    try:
        return _get(port, "/")[0] == 200
    except (ConnectionError, http.client.HTTPException):
        return False
