"""HTTP at a service's edge: uvicorn in a background thread, request logs without secrets, and
the FastAPI dependency that turns a bearer token into a principal with a role.

    server = HttpServer(app, "127.0.0.1", 8110, "alerter")   # bound before it returns
    server.url, server.port
    server.close()

The socket is bound in the constructor, so a port already in use fails the service at start
with a message naming it, not later in a thread. uvicorn's own access log is off: it would log
query strings, and `?access_token=` travels there (see services/common/auth.py); `RequestLog`
logs the method, the path, the status and the time instead.

The token dependency is declared through FastAPI's security classes (`BEARER`,
`ACCESS_TOKEN_QUERY`, both `auto_error=False` so that the refusals stay ours), so the OpenAPI
document names both ways of presenting a token on every route that needs one; `auth_responses`
gives the 401/403 a route can answer with, and `ErrorDetail` is the body of every refusal.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from vigil.errors import VigilError
from vigil.services.common.auth import ROLE_RANK, Principal, Role, TokenAuthority

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


class ErrorDetail(BaseModel):
    """The JSON body of a refusal (FastAPI's HTTPException): what was wrong."""

    detail: str


# How a token is presented, for the OpenAPI document (security schemes). auto_error=False: they
# never refuse by themselves; `requires` does, with the 401/403 documented by `auth_responses`.
BEARER = HTTPBearer(
    scheme_name="bearerToken",
    description="An API token (services/common/auth.py): `Authorization: Bearer <token>`.",
    auto_error=False,
)
ACCESS_TOKEN_QUERY = APIKeyQuery(
    name="access_token",
    scheme_name="accessTokenQuery",
    description="The same API token as `?access_token=<token>`, for clients that cannot set headers "
    "(a browser's EventSource). Ignored when an Authorization header is present.",
    auto_error=False,
)
WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"description": "`Bearer`", "required": True, "schema": {"type": "string"}}
}


def auth_responses(role: Role) -> dict[int | str, dict[str, Any]]:
    """The refusals of a route that `requires(authority, role)`: 401 always, 403 when some valid
    token can hold a role below `role`."""
    responses: dict[int | str, dict[str, Any]] = {
        401: {
            "model": ErrorDetail,
            "description": "No bearer token, or an unknown one",
            "headers": WWW_AUTHENTICATE,
        }
    }
    if ROLE_RANK[role] > min(ROLE_RANK.values()):
        responses[403] = {"model": ErrorDetail, "description": f"The token's role is below {role}"}
    return responses


def json_refusals(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """`responses` for a route whose own media type is not JSON (an event stream): FastAPI files
    a response's `model` under the route's media type, but refusals are JSON (HTTPException)."""
    converted: dict[int | str, dict[str, Any]] = {}
    for status, response in responses.items():
        response = dict(response)
        model = response.pop("model", None)
        if model is not None:
            content = dict(response.get("content", {}))
            content["application/json"] = {"schema": model.model_json_schema()}
            response["content"] = content
        converted[status] = response
    return converted


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


def presented_token(
    request: Request,
    _header: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    _query: Annotated[str | None, Depends(ACCESS_TOKEN_QUERY)],
) -> str | None:
    """A FastAPI dependency: `bearer_token(request)`, declared as the two security schemes above
    (which only document it: the rules are bearer_token's)."""
    return bearer_token(request)


def authenticate(authority: TokenAuthority, request: Request) -> Principal | None:
    return authority.identify(bearer_token(request))


def requires(authority: TokenAuthority, role: Role) -> Callable[..., Principal]:
    """A FastAPI dependency: the caller's principal, or 401 (no or unknown token) / 403 (a role
    below `role`). Document them on the route with `responses=auth_responses(role)`."""

    def dependency(token: Annotated[str | None, Depends(presented_token)]) -> Principal:
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
