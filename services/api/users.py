"""Users and API tokens over HTTP (admin only), on the "identities" topic (services/common/identities.py).

    GET    /api/v1/users                       {"users": [User]}
    POST   /api/v1/users                       UserInput -> 201 User; 409 the name is taken
    PUT    /api/v1/users/{name}                UserChange -> User; 404; 409 the last admin
    DELETE /api/v1/users/{name}                204: disabled, every token revoked; 409 the last admin
    POST   /api/v1/users/{name}/tokens         TokenInput -> 201 NewToken (the secret, shown once)
    GET    /api/v1/users/{name}/tokens         {"tokens": [TokenInfo]}: ids and metadata only
    DELETE /api/v1/tokens/{token_id}           204: revoked (again: still 204); 404

A token's secret appears in exactly one response, the one that creates it; no response, log
line or error carries a secret or its digest. A change Kafka did not confirm is a 503.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from vigil.pipelines.identities import (
    TOKEN_ID_PATTERN,
    USER_NAME_PATTERN,
    IdentityConflictError,
    Role,
    StoredToken,
    UnknownTokenError,
    UnknownUserError,
    User,
)
from vigil.services.common.auth import Principal, TokenAuthority
from vigil.services.common.http import ErrorDetail, auth_responses, requires
from vigil.services.common.identities import IdentityDirectory, IdentityStoreError

_MAX_TOKEN_LIFE_S = 10 * 365 * 86_400
UserNamePath = Annotated[str, Path(pattern=USER_NAME_PATTERN, description="the user's name")]
TokenIdPath = Annotated[str, Path(pattern=TOKEN_ID_PATTERN, description="the token's id")]
DisplayName = Annotated[str | None, Field(None, min_length=1, max_length=100)]


class UserInput(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=USER_NAME_PATTERN, description="a login: letters, digits, . _ @ -")
    role: Role
    display_name: DisplayName = None


class UserChange(BaseModel):
    """A user's role, display name and disabled flag, as they are to be."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    display_name: DisplayName = None
    disabled: bool = False


class UserList(BaseModel):
    users: list[User]


class TokenInput(BaseModel):
    """A new token: how long it works (absent: until revoked) and a label to recognise it by."""

    model_config = ConfigDict(extra="forbid")

    expires_in_s: int | None = Field(None, ge=1, le=_MAX_TOKEN_LIFE_S, description="lifetime in seconds")
    label: str | None = Field(None, min_length=1, max_length=100, description='e.g. "console on the desk"')


class TokenInfo(BaseModel):
    """A token as listed: never the secret, nor its digest."""

    token_id: str
    user: str
    label: str | None
    created_ts_ms: int
    created_by: str
    expires_ts_ms: int | None
    revoked_ts_ms: int | None
    revoked_by: str | None

    @classmethod
    def of(cls, token: StoredToken) -> TokenInfo:
        return cls.model_validate(token.model_dump(exclude={"sha256"}))


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class NewToken(TokenInfo):
    """A token just made: `token` is the secret, shown in this response only."""

    token: str = Field(description="the bearer token; keep it, it is not shown again")


Responses = dict[int | str, dict[str, Any]]


def _refusal(description: str) -> dict[str, Any]:
    return {"model": ErrorDetail, "description": description}


def users_router(authority: TokenAuthority, directory: IdentityDirectory) -> APIRouter:
    """The routes above, for admins."""
    router = APIRouter(prefix="/api/v1", tags=["users"])
    admin = Depends(requires(authority, "admin"))
    as_admin = auth_responses("admin")
    unavailable: Responses = {
        503: _refusal("Kafka did not confirm the change (the broker is away); try again")
    }
    unknown_user: Responses = {404: _refusal("No user with this name")}
    last_admin: Responses = {409: _refusal("The change would leave no admin")}
    # FastAPI answers 400 (not 422) to a body it cannot even decode (bytes that are not UTF-8).
    unreadable: Responses = {400: _refusal("The body could not be read as JSON")}

    def refuse(status: int, error: Exception) -> HTTPException:
        return HTTPException(status, str(error))

    @router.get("/users", response_model=UserList, responses=as_admin)
    def list_users(principal: Principal = admin) -> UserList:
        return UserList(users=directory.users())

    @router.post(
        "/users",
        status_code=201,
        response_model=User,
        responses={**as_admin, **unreadable, 409: _refusal("A user with this name exists"), **unavailable},
    )
    def add_user(body: UserInput, principal: Principal = admin) -> User:
        try:
            return directory.add_user(body.name, body.role, body.display_name, by=principal.name)
        except IdentityConflictError as error:
            raise refuse(409, error) from None
        except IdentityStoreError as error:
            raise refuse(503, error) from None

    @router.put(
        "/users/{name}",
        response_model=User,
        responses={**as_admin, **unreadable, **unknown_user, **last_admin, **unavailable},
    )
    def change_user(name: UserNamePath, body: UserChange, principal: Principal = admin) -> User:
        """Change a user's role, display name or disabled flag (re-enabling revives no token)."""
        try:
            return directory.change_user(
                name,
                role=body.role,
                display_name=body.display_name,
                disabled=body.disabled,
                by=principal.name,
            )
        except UnknownUserError as error:
            raise refuse(404, error) from None
        except IdentityConflictError as error:
            raise refuse(409, error) from None
        except IdentityStoreError as error:
            raise refuse(503, error) from None

    @router.delete(
        "/users/{name}",
        status_code=204,
        response_class=Response,
        responses={**as_admin, **unknown_user, **last_admin, **unavailable},
    )
    def disable_user(name: UserNamePath, principal: Principal = admin) -> Response:
        """Disable the user and revoke every token of theirs (their name stays on what they did)."""
        try:
            directory.disable_user(name, by=principal.name)
        except UnknownUserError as error:
            raise refuse(404, error) from None
        except IdentityConflictError as error:
            raise refuse(409, error) from None
        except IdentityStoreError as error:
            raise refuse(503, error) from None
        return Response(status_code=204)

    @router.post(
        "/users/{name}/tokens",
        status_code=201,
        response_model=NewToken,
        responses={
            **as_admin,
            **unreadable,
            **unknown_user,
            409: _refusal("The user is disabled"),
            **unavailable,
        },
    )
    def issue_token(
        name: UserNamePath, body: TokenInput | None = None, principal: Principal = admin
    ) -> NewToken:
        """A new token for the user; the response is the only place its secret is ever shown."""
        body = body or TokenInput()
        try:
            stored, secret = directory.issue_token(
                name, principal.name, label=body.label, expires_in_s=body.expires_in_s
            )
        except UnknownUserError as error:
            raise refuse(404, error) from None
        except IdentityConflictError as error:
            raise refuse(409, error) from None
        except IdentityStoreError as error:
            raise refuse(503, error) from None
        return NewToken(**TokenInfo.of(stored).model_dump(), token=secret)

    @router.get("/users/{name}/tokens", response_model=TokenList, responses={**as_admin, **unknown_user})
    def list_tokens(name: UserNamePath, principal: Principal = admin) -> TokenList:
        """The user's tokens, revoked and expired ones too, oldest first."""
        if directory.user(name) is None:
            raise HTTPException(404, f"no user {name!r}")
        return TokenList(tokens=[TokenInfo.of(token) for token in directory.tokens(name)])

    @router.delete(
        "/tokens/{token_id}",
        status_code=204,
        response_class=Response,
        responses={**as_admin, 404: _refusal("No token with this id"), **unavailable},
    )
    def revoke_token(token_id: TokenIdPath, principal: Principal = admin) -> Response:
        try:
            directory.revoke_token(token_id, by=principal.name)
        except UnknownTokenError as error:
            raise refuse(404, error) from None
        except IdentityStoreError as error:
            raise refuse(503, error) from None
        return Response(status_code=204)

    return router
