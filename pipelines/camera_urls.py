"""Camera URLs as operators give them: which ones ingest can read, and how they are shown.

A camera URL may carry credentials: user info (`rtsp://user:password@host/...`), a query value
named like one (`?password=...`, `?token=...`), or `${NAME}` references to ingest's environment
(expanded by ingest alone, as in the YAML file). So:

- `camera_url_problem` says what is wrong with a URL without quoting any of it (the message may
  reach a log, an HTTP answer or a dead letter);
- `mask_url` is the URL for display: user info as `***`, credential-looking query values as `***`;
- `unmask_url` takes a URL an operator sent back with those masks still in place (an edit of a
  camera's name in a form filled from the masked list) and puts the stored secrets back, so that
  editing a camera never needs its password again.

Pure string handling, no I/O: the API, ingest and the Kafka contract share it.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

# What ingest opens with PyAV/FFmpeg as a live stream; anything else must be a file path.
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp"})
MAX_CAMERA_URL_CHARS = 2048
MASK = "***"
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Query parameters whose values are secrets in cameras' URLs (vendors' snapshot and stream URLs).
CREDENTIAL_PARAMETERS = frozenset(
    {
        "user",
        "username",
        "login",
        "pass",
        "passwd",
        "password",
        "pwd",
        "token",
        "access_token",
        "auth",
        "key",
        "apikey",
        "api_key",
        "secret",
        "signature",
        "sig",
    }
)


def camera_url_problem(url: str) -> str | None:
    """None when ingest can read `url`, else what is wrong (quoting none of the URL)."""
    if len(url) > MAX_CAMERA_URL_CHARS:
        return f"must be at most {MAX_CAMERA_URL_CHARS} characters"
    if any(character.isspace() or not character.isprintable() for character in url):
        return "must not contain spaces or control characters (percent-encode them)"
    if "${" in ENV_REFERENCE.sub("", url):
        return "has a malformed ${NAME} reference (NAME: letters, digits and _)"
    # References are expanded by ingest; for the shape of the URL any placeholder will do.
    try:
        parts = urlsplit(ENV_REFERENCE.sub("x", url))
    except ValueError:  # e.g. an unclosed [IPv6 address
        return "is not a well-formed URL"
    scheme = parts.scheme.lower()
    if scheme in ("", "file"):
        if scheme == "file" and parts.netloc not in ("", "localhost"):
            return "a file: URL names no host (file:///videos/gate.mp4)"
        if not parts.path.startswith("/"):
            return "a file must be an absolute path (/videos/gate.mp4 or file:///videos/gate.mp4)"
        return None
    if scheme not in LIVE_SCHEMES:
        schemes = ", ".join(sorted(LIVE_SCHEMES))
        return f"scheme {scheme!r} is not one ingest reads ({schemes}, or a file path)"
    if not parts.hostname:
        return f"a {scheme} URL needs a host ({scheme}://host/...)"
    try:
        parts.port  # noqa: B018 - urlsplit checks the port when asked for it
    except ValueError:
        return "the port must be a number from 0 to 65535"
    return None


def environment_references(url: str) -> list[str]:
    """The NAMEs of the `${NAME}` references in `url`."""
    return ENV_REFERENCE.findall(url)


def mask_url(url: str) -> str:
    """`url` for display: user info and credential-looking query values as `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL one can read the user info of: show none of it
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(_masked_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def unmask_url(url: str, stored: str | None) -> tuple[str, str | None]:
    """(`url` with each `***` mask replaced by the `stored` URL's secret, problem or None).

    A mask with nothing stored to stand for (a new camera, or a part the stored URL lacks) is a
    problem, not a password of three stars."""
    try:
        parts = urlsplit(url)
        old = urlsplit(stored) if stored is not None else None
    except ValueError:
        return url, "is not a well-formed URL"
    netloc = parts.netloc
    if netloc.startswith(f"{MASK}@"):
        if old is None or "@" not in old.netloc:
            return url, f"{MASK} stands for stored credentials, and there are none to keep"
        netloc = f"{old.netloc.rpartition('@')[0]}@{netloc.rpartition('@')[2]}"
    pairs = parts.query.split("&") if parts.query else []
    stored_pairs = _pairs_by_name(old) if old is not None else {}
    kept = []
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if equals and value == MASK:
            if name not in stored_pairs:
                return url, f"{MASK} stands for the stored value of {name!r}, and there is none to keep"
            pair = stored_pairs[name]
        kept.append(pair)
    return urlunsplit(parts._replace(netloc=netloc, query="&".join(kept))), None


def _masked_pair(pair: str) -> str:
    name, equals, value = pair.partition("=")
    if equals and value and name.lower() in CREDENTIAL_PARAMETERS:
        return f"{name}={MASK}"
    return pair


def _pairs_by_name(parts: SplitResult) -> dict[str, str]:
    return {pair.partition("=")[0]: pair for pair in parts.query.split("&")} if parts.query else {}
