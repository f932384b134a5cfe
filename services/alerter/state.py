"""The alerter's state on "alert-state", one record per key of its consumer group:

- "policy": the `AlertPolicy`'s memory, less the hit ids it remembers;
- "seen:<hit_id>": each remembered hit id, a record of its own, written as it changes and
  tombstoned when forgotten (written whole, the memory was 1.2 MB at 20,000 hits);
- "alert:<alert_id>": each alert's record (raised, acknowledged, ended), tombstoned when
  retention forgets the alert.

A restarted alerter loads them first: replayed hits are duplicates to the policy and raise
nothing again, and acknowledgements survive.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from vigil.pipelines.alert_book import AlertBook, AlertRecord
from vigil.pipelines.alerting import AlertPolicy
from vigil.services.common.contract import AlertMessage
from vigil.services.common.state_log import ALERT_RECORD_PREFIX, GroupStateLog

log = logging.getLogger(__name__)

POLICY_STATE = "policy"
_SEEN_STATE_PREFIX = "seen:"


def save_policy_memory(state_log: GroupStateLog, policy: AlertPolicy) -> int:
    """Queue what the policy's memory changed since the last call: each remembered hit id that
    changed as a record of its own, a tombstone for each forgotten one, and the rest whole.
    Returns the records queued."""
    changed, dropped = policy.take_hit_changes()
    for hit_state in changed:
        state_log.save(_SEEN_STATE_PREFIX + hit_state[0], {"seen": hit_state})
    for hit_id in dropped:
        state_log.delete(_SEEN_STATE_PREFIX + hit_id)
    state_log.save(POLICY_STATE, policy.to_state(include_hits=False))
    return len(changed) + len(dropped) + 1


def save_alert_record(state_log: GroupStateLog, record: AlertRecord[AlertMessage]) -> None:
    state_log.save(ALERT_RECORD_PREFIX + record.alert_id, record.to_state())


def forget_alert_record(state_log: GroupStateLog, alert_id: str) -> None:
    state_log.delete(ALERT_RECORD_PREFIX + alert_id)


def restore_alerter_state(
    states: dict[str, dict], policy: AlertPolicy, book: AlertBook[AlertMessage]
) -> None:
    """Load what `GroupStateLog.load` read into `policy` and `book`; an unusable policy
    snapshot starts the policy afresh, an unreadable alert record is skipped (both logged)."""
    policy_state = states.pop(POLICY_STATE, None)
    seen: list[Any] = [
        state.get("seen") for name, state in states.items() if name.startswith(_SEEN_STATE_PREFIX)
    ]
    if policy_state is not None or seen:
        try:
            policy.restore(policy_state or policy.to_state(), seen)
        except ValueError as error:
            log.warning("alert policy starts afresh, its snapshot is unusable: %s", error)
    for name, state in states.items():
        if not name.startswith(ALERT_RECORD_PREFIX):
            continue
        try:
            book.add(AlertRecord[AlertMessage].from_state(state))
        except ValidationError as error:
            log.warning("skipped an unreadable alert record %r: %s", name, error)
    log.info(
        "alerter state: %d hit ids remembered, %d alerts (%d open)",
        policy.remembered_hits,
        len(book),
        len(book.open_alerts()),
    )
