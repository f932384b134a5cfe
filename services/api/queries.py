"""Standing queries over HTTP: list, add, edit, delete, and each query's edit history.

    GET    /api/v1/queries                       viewer    {"queries": [Query]}
    POST   /api/v1/queries                       operator  QueryInput -> 201 Query; 409 if the id exists
    GET    /api/v1/queries/{query_id}            viewer    Query; 404
    PUT    /api/v1/queries/{query_id}            operator  QueryInput -> Query; 404
    DELETE /api/v1/queries/{query_id}            operator  204; 404
    GET    /api/v1/queries/{query_id}/history    viewer    {"changes": [{ts_ms, by, action, query}]}

A write is answered once it is on the broker ("queries" for the detectors and the alerter, which
follow it live, and "query-history"; services/api/query_catalog.py), 503 when the broker does not
confirm it. The token's user is the query's `created_by` (on create) and the history's `by`.

What a query may be (`QueryInput`, refused with a 422 naming the field):
- `text`: 1 to MAX_QUERY_TEXT characters after trimming, printable. 200, not the contract's 500:
  a standing query is a phrase an operator reads on one line and hears in every alert, not a
  description. CLIP reads 77 tokens: measured with its tokenizer after "a photo of ", 200
  characters of English are 45 tokens, but Vietnamese costs about 0.8 tokens a character (its
  diacritics are split into bytes): 100 characters are 85 tokens, so a Vietnamese query past
  about 90 characters is cut by the encoder (the detector logs "text ... truncated").
- `kind`: "semantic" (what CLIP matches). "text" (read by OCR, e.g. "text: EXIT GATE 3") is
  refused with a 422 until the OCR stage exists, and so is a semantic text written "text: ...",
  which CLIP would only match as a picture of those words.
- `query_id`: the contract's id alphabet; without one, derived from the text
  (pipelines/query_ids.py), so the same text twice is a 409, not a second query.
- `language` auto/en/vi; `threshold` "auto" or a number from 0 to 1; `severity`; `enabled`;
  `cameras`: at most MAX_CAMERAS ids, no repeats, empty = every camera.
- `schedule`: the query's own weekly schedule (pipelines/alerting/schedules.py, `WeeklySchedule`):
  an IANA `timezone`, `armed` windows (omitted: always armed) and `quiet_hours` (alerts raised
  but not spoken, unless critical), each window `{days, start, end}` in local "HH:MM"; null =
  always armed. The alerter's policy applies it with the schedules of its own settings
  (`alerter.policy.schedules`), restrictively: a hit must be armed by every one that applies.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from vigil.pipelines.alerting.schedules import WeeklySchedule
from vigil.pipelines.query_ids import derive_query_id
from vigil.services.api.query_catalog import QueryCatalog, QueryExistsError, UnknownQueryError
from vigil.services.common.auth import Principal, TokenAuthority
from vigil.services.common.contract import (
    ID_PATTERN,
    Identifier,
    QueryAction,
    QueryChangeMessage,
    QueryMessage,
    Severity,
    TimestampMs,
)
from vigil.services.common.http import ErrorDetail, auth_responses, requires
from vigil.services.common.kafka import BrokerUnavailableError

MAX_QUERY_TEXT = 200
MAX_CAMERAS = 100
OCR_PREFIX = "text:"

QueryId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
Threshold = Literal["auto"] | Annotated[float, Field(ge=0.0, le=1.0)]


class QueryInput(BaseModel):
    """A standing query as an operator writes it (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    query_id: Identifier | None = Field(default=None, description="absent: derived from the text")
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_TEXT)]
    kind: Literal["semantic", "text"] = Field(
        default="semantic", description='"semantic" (CLIP); "text" (OCR) is refused until it exists'
    )
    language: Literal["auto", "en", "vi"] = "auto"
    cameras: list[Identifier] = Field(default_factory=list, max_length=MAX_CAMERAS, description="empty = all")
    threshold: Threshold = "auto"
    severity: Severity = "warning"
    enabled: bool = True
    schedule: WeeklySchedule | None = Field(
        default=None, description="when it may alert: armed windows and quiet hours; null = always armed"
    )

    @field_validator("text")
    @classmethod
    def _printable_and_semantic(cls, text: str) -> str:
        for char in text:
            if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn"):
                raise ValueError(f"text must be printable, found {char!r}")
        # A semantic text written as an OCR query is a mistake: CLIP would look for a picture of it.
        if text[: len(OCR_PREFIX)].lower() == OCR_PREFIX:
            raise ValueError(
                f'"{OCR_PREFIX} ..." queries are read by OCR, which comes later; describe what to see'
            )
        return text

    @field_validator("kind")
    @classmethod
    def _semantic_only(cls, kind: str) -> str:
        if kind == "text":
            raise ValueError('kind "text" (OCR, e.g. "text: EXIT GATE 3") comes later; only "semantic" now')
        return kind

    @field_validator("cameras")
    @classmethod
    def _no_repeats(cls, cameras: list[str]) -> list[str]:
        repeated = sorted({camera for camera in cameras if cameras.count(camera) > 1})
        if repeated:
            raise ValueError(f"cameras are listed more than once: {', '.join(repeated)}")
        return cameras

    @field_validator("threshold", mode="before")
    @classmethod
    def _auto_or_probability(cls, threshold: object) -> object:
        is_number = isinstance(threshold, int | float) and not isinstance(threshold, bool)
        if threshold == "auto" or (is_number and 0.0 <= threshold <= 1.0):  # type: ignore[operator]
            return threshold
        raise ValueError(f'threshold must be "auto" or a number from 0 to 1, got {threshold!r}')

    def message(self, query_id: str, created_by: str) -> QueryMessage:
        return QueryMessage(
            query_id=query_id,
            text=self.text,
            language=self.language,
            cameras=list(self.cameras),
            threshold=self.threshold,
            severity=self.severity,
            enabled=self.enabled,
            schedule=self.schedule,
            created_by=created_by,
            updated_ts_ms=int(time.time() * 1000),
        )


class Query(BaseModel):
    """A standing query as it stands on "queries"."""

    query_id: str
    text: str
    kind: Literal["semantic"] = "semantic"
    language: Literal["auto", "en", "vi"]
    cameras: list[str] = Field(description="empty = all")
    threshold: Literal["auto"] | float
    severity: Severity
    enabled: bool
    schedule: WeeklySchedule | None = None
    created_by: str
    updated_ts_ms: TimestampMs

    @classmethod
    def of(cls, message: QueryMessage) -> Query:
        return cls.model_validate(message.model_dump(exclude={"schema_version"}))


class QueryList(BaseModel):
    queries: list[Query]


class QueryChange(BaseModel):
    """One change: when, by whom, what, and the query after it (null once deleted)."""

    ts_ms: TimestampMs
    by: str
    action: QueryAction
    query: Query | None

    @classmethod
    def of(cls, change: QueryChangeMessage) -> QueryChange:
        query = Query.of(change.query) if change.query is not None else None
        return cls(ts_ms=change.ts_ms, by=change.by, action=change.action, query=query)


class QueryHistory(BaseModel):
    changes: list[QueryChange] = Field(description="oldest first")


Responses = dict[int | str, dict[str, Any]]


def _refusal(status: int, description: str) -> Responses:
    return {status: {"model": ErrorDetail, "description": description}}


def queries_router(authority: TokenAuthority, catalog: QueryCatalog) -> APIRouter:
    """The routes of the module docstring over `catalog` (already loaded and following)."""
    router = APIRouter(prefix="/api/v1/queries", tags=["queries"])
    viewer = Depends(requires(authority, "viewer"))
    operator = Depends(requires(authority, "operator"))
    unknown = _refusal(404, "No standing query with this id")
    unavailable = _refusal(503, "The broker did not confirm the change; nothing may have changed")
    writes: Responses = {**auth_responses("operator"), **unavailable}
    # FastAPI reads a body before any dependency runs: bytes that are not JSON are a 400 first.
    with_body: Responses = {**writes, **_refusal(400, "A body that cannot be read as JSON")}

    def confirmed(write, *args):
        try:
            return write(*args)
        except UnknownQueryError as error:
            raise HTTPException(404, str(error)) from None
        except QueryExistsError as error:
            raise HTTPException(409, str(error)) from None
        except BrokerUnavailableError as error:
            raise HTTPException(503, str(error)) from None

    @router.get("", response_model=QueryList, responses=auth_responses("viewer"))
    def list_queries(principal: Principal = viewer) -> QueryList:
        """The standing queries, by id."""
        return QueryList(queries=[Query.of(query) for query in catalog.queries()])

    @router.post(
        "",
        status_code=201,
        response_model=Query,
        responses={**with_body, **_refusal(409, "A standing query with this id exists (PUT changes it)")},
    )
    def add_query(body: QueryInput, principal: Principal = operator) -> Query:
        """Add a standing query; detectors pick it up within a second."""
        message = body.message(body.query_id or derive_query_id(body.text), principal.name)
        return Query.of(confirmed(catalog.create, message, principal.name))

    @router.get("/{query_id}", response_model=Query, responses={**auth_responses("viewer"), **unknown})
    def get_query(query_id: QueryId, principal: Principal = viewer) -> Query:
        return Query.of(confirmed(catalog.get, query_id))

    @router.put("/{query_id}", response_model=Query, responses={**with_body, **unknown})
    def edit_query(query_id: QueryId, body: QueryInput, principal: Principal = operator) -> Query:
        """Replace a standing query's fields (its id and creator stay)."""
        if body.query_id not in (None, query_id):
            # FastAPI's own 422 shape, as documented for every route with a body.
            mismatch = f"the body's query_id {body.query_id!r} is not the path's {query_id!r}"
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body", "query_id"),
                        "msg": mismatch,
                        "input": body.query_id,
                    }
                ]
            )
        return Query.of(confirmed(catalog.update, body.message(query_id, principal.name), principal.name))

    @router.delete("/{query_id}", status_code=204, response_class=Response, responses={**writes, **unknown})
    def delete_query(query_id: QueryId, principal: Principal = operator) -> Response:
        """Delete a standing query; its open events close."""
        confirmed(catalog.delete, query_id, principal.name)
        return Response(status_code=204)

    @router.get(
        "/{query_id}/history",
        response_model=QueryHistory,
        responses={**auth_responses("viewer"), **_refusal(404, "No such query now or in the kept history")},
    )
    def query_history(query_id: QueryId, principal: Principal = viewer) -> QueryHistory:
        """Who changed the query, when and to what, oldest first."""
        return QueryHistory(
            changes=[QueryChange.of(change) for change in confirmed(catalog.history, query_id)]
        )

    return router
