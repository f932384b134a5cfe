"""How loud an alert is: the severity levels, escalation by one level, and the severity of a hit
whose query is gone (no I/O)."""

from __future__ import annotations

from typing import Literal, Protocol, get_args

# The same values as services.common.contract.Severity (pipelines/ does not import services/;
# tests/pipelines/test_alert_policy.py checks that the two stay equal). Ordered, lowest first.
Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)


def escalate(severity: Severity) -> Severity:
    """One level up; critical stays critical."""
    return SEVERITIES[min(SEVERITIES.index(severity) + 1, len(SEVERITIES) - 1)]  # type: ignore[return-value]


class RatedQuery(Protocol):
    """What the policy reads of a standing query: how loud its alerts are
    (services.common.contract.QueryMessage fits)."""

    @property
    def severity(self) -> Severity: ...


# A hit whose query is not (or no longer) standing, e.g. deleted while its event was open,
# still alerts: nobody said how loud, so at the middle level.
UNKNOWN_QUERY_SEVERITY: Severity = "warning"


def severity_of(query: RatedQuery | None) -> Severity:
    """The `query_severity` to decide a hit with: its query's own, or UNKNOWN_QUERY_SEVERITY
    when the query is not standing (None)."""
    return query.severity if query is not None else UNKNOWN_QUERY_SEVERITY
