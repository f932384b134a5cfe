"""The operators' console: the static page (HTML, CSS, JavaScript modules) served at /console/.

    GET /                    -> 307 /console/
    GET /console             -> 307 /console/
    GET /console/            the page (index.html)
    GET /console/{name}      one of its files (console/*.js, *.css, *.svg)

The page is plain files with no build step and nothing fetched from elsewhere (the machines are
offline): everything it shows comes from the API, with the token the operator pastes. Only
files directly in the console folder with a known type are served; any other name, a path with
a folder in it or a `..`, is a 404, so no request reaches a file outside that folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse, RedirectResponse

CONSOLE_DIR = Path(__file__).with_name("console")
# The types the page is made of; a name with any other suffix is not one of its files.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page is small and changes with the software, not with time: browsers check it each load.
_REVALIDATE = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
# No inline script runs, and scripts and API calls stay on the page's origin. Images and audio
# may come from elsewhere: the API's signed links are absolute, made with its public_url, which
# need not be the address this browser used (localhost vs 127.0.0.1, a proxy).
_CONTENT_SECURITY = (
    "default-src 'self'; img-src * data:; media-src *; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_FILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\.[a-z]+")


def console_file(name: str, directory: Path = CONSOLE_DIR) -> FileResponse:
    """The response for one file of the console, or a 404 for a name that is not one of them."""
    media_type = MEDIA_TYPES.get(Path(name).suffix)
    if media_type is None or not _FILE_NAME.fullmatch(name):
        raise HTTPException(404, f"no console file {name!r}")
    path = directory / name
    # The name pattern already rules out '/', '\\' and '..'; the containment check keeps it so if
    # the pattern is ever loosened, and a symlink out of the folder is not one of its files.
    if path.resolve().parent != directory.resolve() or not path.is_file():
        raise HTTPException(404, f"no console file {name!r}")
    headers = dict(_REVALIDATE)
    if media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = _CONTENT_SECURITY
    return FileResponse(path, media_type=media_type, headers=headers)


def console_router(directory: Path = CONSOLE_DIR) -> APIRouter:
    """The console's routes (left out of the OpenAPI document: a page, not the API)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    @router.get("/console")
    def to_the_console() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @router.get("/console/")
    def page() -> FileResponse:
        return console_file("index.html", directory)

    @router.get("/console/{name}")
    def asset(name: Annotated[str, PathParameter(max_length=100)]) -> FileResponse:
        return console_file(name, directory)

    return router
