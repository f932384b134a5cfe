"""The console's files as the API serves them (a real uvicorn server): the page, its modules and
styles with their types, redirects to it, no way out of its folder, every file shipped as
package data; and, in a real browser, two promises of its building blocks (services/api/console/
dom.js): the region box is placed in fractions of the picture, and data is never parsed as HTML."""

from __future__ import annotations

import http.client
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi import FastAPI

from vigil.services.api.console import CONSOLE_DIR, MEDIA_TYPES, console_router
from vigil.services.common.http import HttpServer

REPO = Path(__file__).resolve().parents[2]


def serve(directory: Path = CONSOLE_DIR) -> HttpServer:
    app = FastAPI()
    app.include_router(console_router(directory))
    return HttpServer(app, "127.0.0.1", 0, "console-test")


@pytest.fixture(scope="module")
def server():
    running = serve()
    yield running
    running.close()


def raw_get(server: HttpServer, path: str) -> http.client.HTTPResponse:
    """GET with the path exactly as written: no client-side normalisation of '..' or escapes."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.putrequest("GET", path, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def test_the_root_and_the_bare_path_redirect_to_the_console(server):
    for path in ("/", "/console"):
        response = raw_get(server, path)
        assert response.status == 307 and response.getheader("location") == "/console/", path


def test_the_page_and_its_files_are_served_with_their_types(server):
    page = raw_get(server, "/console/")
    assert page.status == 200 and page.getheader("content-type") == "text/html; charset=utf-8"
    assert b'<script type="module" src="app.js">' in page.body
    policy = page.getheader("content-security-policy")
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    for file in sorted(CONSOLE_DIR.iterdir()):
        response = raw_get(server, f"/console/{file.name}")
        assert response.status == 200, file.name
        assert response.getheader("content-type") == MEDIA_TYPES[file.suffix], file.name
        assert response.body == file.read_bytes()
        assert response.getheader("x-content-type-options") == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/console/../pyproject.toml",
        "/console/..%2f..%2fpyproject.toml",
        "/console/..%2F..%2Fservices%2Fapi%2Fconsole.py",
        "/console/%2e%2e",
        "/console/..",
        "/console/..%5c..%5cpyproject.toml",
        "/console/%2fetc%2fpasswd",
        "/console//etc/passwd",
        "/console/app.js%00.html",
        "/console/../console.py",
        "/console/.hidden.js",
        "/console/APP.JS",
        "/console/README",
    ],
)
def test_no_path_leaves_the_console_folder(server, path):
    response = raw_get(server, path)
    assert response.status in (404, 422), (path, response.status)
    assert b"import" not in response.body and b"root:" not in response.body


def test_a_symlink_out_of_the_folder_is_not_one_of_its_files(tmp_path):
    folder = tmp_path / "console"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>ok</title>")
    secret = tmp_path / "secret.js"
    secret.write_text("the secret")
    (folder / "leak.js").symlink_to(secret)
    running = serve(folder)
    try:
        assert raw_get(running, "/console/").status == 200
        leak = raw_get(running, "/console/leak.js")
        assert leak.status == 404 and b"the secret" not in leak.body
    finally:
        running.close()


def test_every_console_file_ships_as_package_data():
    settings = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = settings["tool"]["setuptools"]["package-data"]["vigil.services.api"]
    for file in CONSOLE_DIR.iterdir():
        assert any(fnmatch(f"console/{file.name}", pattern) for pattern in patterns), file.name


def test_the_region_box_is_drawn_in_fractions_and_data_is_never_html(server, browser):
    page = browser.new_page()
    try:
        page.goto(f"{server.url}/console/")
        result = page.evaluate(
            """async () => {
                const { framePicture, h, safeUrl } = await import("/console/dom.js");
                const frame = framePicture("/console/icon.svg", [0.25, 0.1, 0.75, 0.6], "a cat", "none");
                document.body.append(frame);
                const box = frame.querySelector(".frame-box");
                const hostile = h("p", {}, '<img src=x onerror="window.hacked = 1">');
                document.body.append(hostile);
                return {
                    box: [box.style.left, box.style.top, box.style.width, box.style.height],
                    inverted: framePicture("/console/icon.svg", [0.5, 0.5, 0.4, 0.9], "", "")
                        .querySelector(".frame-box"),
                    script: safeUrl("javascript:alert(1)"),
                    text: hostile.textContent,
                    elements: hostile.children.length,
                    missing: framePicture(null, null, "", "No picture").textContent,
                };
            }"""
        )
        assert result["box"] == ["25%", "10%", "50%", "50%"]
        assert result["inverted"] is None  # an inverted box is not drawn
        assert result["script"] is None
        assert result["text"] == '<img src=x onerror="window.hacked = 1">' and result["elements"] == 0
        assert result["missing"] == "No picture"
        assert page.evaluate("window.hacked") is None
    finally:
        page.close()
