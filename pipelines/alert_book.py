"""The alerter's book of alerts: every alert raised, its end time, and who acknowledged it (pure).

    book = AlertBook[AlertMessage]()
    book.add(AlertRecord[AlertMessage](alert=message))
    book.close("alert:cam-1:q:1000", end_ts_ms=5000)
    book.acknowledge("alert:cam-1:q:1000", "an", now_ms=6000)   # once; a second time raises

An alert is acknowledged exactly once: a second acknowledgement raises
AlreadyAcknowledgedError naming who acknowledged it and when, so two operators racing for the
same alert learn that the other one took it. `status` is "open" until then. The service keeps
each record as JSON (`to_state()` / `from_state()`) on the alert-state topic, so that a
restarted alerter still knows every acknowledgement.

The alert itself is the services' Kafka message (the contract's AlertMessage), which pipelines
do not import: records and the book are generic over it, and need of an alert only what
`BookedAlert` names. The service parametrizes them (`AlertRecord[AlertMessage]`), so that a
record read back from its state validates the whole message as before; the snapshot is the
record's JSON, the alert in it as the message's own JSON.

Decisions the service takes with the book: which alert a hit raises (`alert_id_for`, the same
after any replay), whether it was raised before (`raised_before`: the book, not the policy's
older snapshot, recognises a hit replayed after a crash), and which alerts are past their
retention (`retention_cutoff_ms`, then `prune`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, Protocol, Self, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from vigil.errors import VigilError

AlertStatus = Literal["open", "acknowledged"]
# As services.common.contract.TimestampMs (pipelines do not import services).
TimestampMs = Annotated[int, Field(ge=0, description="ms since the Unix epoch")]

_DAY_MS = 86_400_000


def alert_id_for(hit_id: str) -> str:
    """The alert raised for a hit: one per hit id, the same after any replay."""
    return f"alert:{hit_id}"


def retention_cutoff_ms(now_ms: float, retention_days: float) -> int:
    """Alerts raised before this instant are past `retention_days` at `now_ms` (see `prune`)."""
    return int(now_ms - retention_days * _DAY_MS)


@runtime_checkable
class BookedAlert(Protocol):
    """What the book reads of an alert (the contract's AlertMessage has all of it)."""

    @property
    def alert_id(self) -> str: ...
    @property
    def camera_id(self) -> str: ...
    @property
    def query_id(self) -> str: ...
    @property
    def raised_ts_ms(self) -> int: ...


Alert = TypeVar("Alert", bound=BookedAlert)


class UnknownAlertError(VigilError, KeyError):
    """No alert with this id is in the book."""

    def __init__(self, alert_id: str) -> None:
        self.alert_id = alert_id
        super().__init__(f"no alert {alert_id!r}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class AlreadyAcknowledgedError(VigilError):
    """The alert was acknowledged before; `by` and `ts_ms` say by whom and when."""

    def __init__(self, alert_id: str, by: str, ts_ms: int) -> None:
        self.alert_id, self.by, self.ts_ms = alert_id, by, ts_ms
        when = datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(f"alert {alert_id!r} was already acknowledged by {by} at {when}")


class AlertRecord(BaseModel, Generic[Alert]):
    """One alert as the book keeps it: the message as published plus what happened to it.

    Parametrize it with the alert's model (`AlertRecord[AlertMessage]`) to read records back
    from their state. Unparametrized, any alert object with `BookedAlert`'s fields is taken as
    it is (arbitrary_types_allowed lets pydantic check the protocol by isinstance), which is
    enough to keep and serialise records but not to rebuild one from JSON.
    """

    # The title keeps "AlertRecord" (not "AlertRecord[AlertMessage]") in validation errors.
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, title="AlertRecord")

    alert: Alert
    status: AlertStatus = "open"
    acknowledged_by: str | None = Field(default=None, min_length=1, max_length=128)
    acknowledged_ts_ms: TimestampMs | None = None
    end_ts_ms: TimestampMs | None = Field(default=None, description="when the event ended (capture time)")

    @property
    def alert_id(self) -> str:
        return self.alert.alert_id

    def to_state(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        return cls.model_validate(state)


class AlertBook(Generic[Alert]):
    """Alert records by alert id, in memory. Not thread-safe: the service serialises access."""

    def __init__(self) -> None:
        self._records: dict[str, AlertRecord[Alert]] = {}

    def add(self, record: AlertRecord[Alert]) -> AlertRecord[Alert]:
        """Add (or replace, e.g. when loading snapshots) a record."""
        self._records[record.alert_id] = record
        return record

    def get(self, alert_id: str) -> AlertRecord[Alert]:
        record = self._records.get(alert_id)
        if record is None:
            raise UnknownAlertError(alert_id)
        return record

    def raised_before(self, hit_id: str) -> bool:
        """Whether the hit's alert is in the book already. The policy remembers hit ids too, but
        its snapshot is written at commits, while each alert's record goes out as it is raised:
        after a crash between the two, the replayed hit is news to the restored policy and only
        the book knows that its alert was published."""
        return alert_id_for(hit_id) in self._records

    def close(self, alert_id: str, end_ts_ms: int) -> AlertRecord[Alert]:
        """Record when the alert's event ended; the first end time stays."""
        record = self.get(alert_id)
        if record.end_ts_ms is not None:
            return record
        return self.add(record.model_copy(update={"end_ts_ms": int(end_ts_ms)}))

    def acknowledge(self, alert_id: str, user: str, now_ms: int) -> AlertRecord[Alert]:
        """Mark the alert acknowledged by `user` at `now_ms`; exactly once."""
        if not isinstance(user, str) or not user.strip():
            raise ValueError("acknowledging needs the user's name")
        record = self.get(alert_id)
        if record.status == "acknowledged":
            raise AlreadyAcknowledgedError(
                alert_id, record.acknowledged_by or "?", record.acknowledged_ts_ms or 0
            )
        # Validated again (the user's name, the time), the alert object kept as it is: its
        # type is the record's parameter, which a dumped dict would lose when unparametrized.
        updated = type(record).model_validate(
            {
                **dict(record),
                "status": "acknowledged",
                "acknowledged_by": user.strip(),
                "acknowledged_ts_ms": int(now_ms),
            }
        )
        return self.add(updated)

    def open_alerts(self) -> list[AlertRecord[Alert]]:
        """Alerts nobody has acknowledged yet, oldest raised first."""
        records = [record for record in self._records.values() if record.status == "open"]
        return sorted(records, key=lambda record: (record.alert.raised_ts_ms, record.alert_id))

    def records(
        self,
        status: AlertStatus | Literal["all"] = "all",
        camera_id: str | None = None,
        query_id: str | None = None,
        limit: int | None = None,
    ) -> list[AlertRecord[Alert]]:
        """Records matching every filter given, newest raised first, at most `limit`."""
        records = [
            record
            for record in self._records.values()
            if status in ("all", record.status)
            and camera_id in (None, record.alert.camera_id)
            and query_id in (None, record.alert.query_id)
        ]
        records.sort(key=lambda record: (record.alert.raised_ts_ms, record.alert_id), reverse=True)
        return records if limit is None else records[:limit]

    def prune(self, raised_before_ms: int) -> list[str]:
        """Forget alerts raised before `raised_before_ms`, whatever their status; their ids."""
        old = [alert_id for alert_id, r in self._records.items() if r.alert.raised_ts_ms < raised_before_ms]
        for alert_id in old:
            del self._records[alert_id]
        return old

    def discard(self, alert_id: str) -> AlertRecord[Alert] | None:
        """Forget one alert (its record was deleted); the record it had, if any."""
        return self._records.pop(alert_id, None)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._records

    def __iter__(self) -> Iterator[AlertRecord[Alert]]:
        return iter(list(self._records.values()))
