"""HTTP at a service's edge: uvicorn in a background thread, request logs without secrets, and
the FastAPI dependency that turns a bearer token into a principal with a role.

    server = HttpServer(app, "127.0.0.1", 8110, "alerter")   # bound before it returns
    server.url, server.port
    server.close()

The socket is bound in the constructor, so a port already in use fails the service at start
with a message naming it, not later in a thread. uvicorn's own access log is off: it would log
query strings, and `?access_token=` travels there (see services/common/auth.py); `RequestLog`
logs the method, the path, the status and the time instead.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import HTTPException, Request

from vigil.models.errors import VigilError
from vigil.services.common.auth import Principal, Role, TokenAuthority

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0
# Open event streams are cut this long after a stop is asked for; clients reconnect elsewhere.
_GRACEFUL_SHUTDOWN_S = 2


class HttpServerError(VigilError):
    """The HTTP server could not start (e.g. the port is taken)."""


class RequestLog:
    """ASGI middleware: one log line per request when its response starts (so a long-lived event
    stream is logged when it opens), with the path but never the query string."""

    def __init__(self, app, logger: logging.Logger) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_logged(message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                self.logger.log(
                    logging.WARNING if status >= 500 else logging.INFO,
                    "%s %s -> %d in %.1f ms",
                    scope["method"],
                    scope["path"],
                    status,
                    (time.perf_counter() - started) * 1000,
                    extra={"client": (scope.get("client") or ("?",))[0]},
                )
            await send(message)

        await self.app(scope, receive, send_logged)


class HttpServer:
    """Serve an ASGI app with uvicorn from a daemon thread; see the module docstring."""

    def __init__(self, app, host: str, port: int, name: str) -> None:
        self.name = name
        try:
            self._socket = socket.create_server((host, port))
        except OSError as error:
            reason = error.strerror or error
            raise HttpServerError(f"{name}: cannot listen on {host}:{port}: {reason}") from None
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=f"{name}-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise HttpServerError(f"{name}: the HTTP server did not start on {host}:{port}")
            time.sleep(0.01)
        log.info("%s HTTP API on %s", name, self.url)

    @property
    def host(self) -> str:
        return self._socket.getsockname()[0]

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        host = self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(_GRACEFUL_SHUTDOWN_S + 5)
        self._socket.close()


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, else of `?access_token=` (for clients
    such as a browser's EventSource, which cannot set headers)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.query_params.get("access_token") or None


def authenticate(authority: TokenAuthority, request: Request) -> Principal | None:
    return authority.identify(bearer_token(request))


def requires(authority: TokenAuthority, role: Role) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller's principal, or 401 (no or unknown token) / 403 (a role
    below `role`)."""

    def dependency(request: Request) -> Principal:
        token = bearer_token(request)
        principal = authority.identify(token)
        if principal is None:
            detail = (
                "unknown bearer token"
                if token
                else "this needs a bearer token: Authorization: Bearer <token> (or ?access_token=)"
            )
            raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})
        if not principal.may(role):
            raise HTTPException(403, f"{principal.name} has the {principal.role} role; this needs {role}")
        return principal

    return dependency
