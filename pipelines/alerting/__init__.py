"""Which hits become alerts, and how loud (no I/O, no clock: the caller passes the time in).

One concept a module:

- `policy`: `AlertPolicy`, the decision procedure with its memory (dedupe, schedules,
  escalation, cooldown; see its docstring), its `Decision`s and snapshots;
- `settings`: `AlertPolicySettings`, the `alerter:` section of the YAML file, and the
  `PairRules` it puts in force for one (camera, query);
- `schedules`: `WeeklySchedule` (armed windows and quiet hours in local time: a standing
  query's own schedule) and the alerter's named `Schedule`s;
- `severity`: the severity levels, `escalate`, `severity_of`.
"""

from vigil.pipelines.alerting.policy import (
    QUERY_SCHEDULE,
    STATE_VERSION,
    SUPPRESS_REASONS,
    AlertableHit,
    AlertPolicy,
    Decision,
    SuppressReason,
    decision_clock_ms,
)
from vigil.pipelines.alerting.schedules import WEEKDAYS, AppliesTo, Schedule, TimeWindow, WeeklySchedule
from vigil.pipelines.alerting.settings import (
    AlertOverrides,
    AlertPolicySettings,
    PairRules,
    require_unique_names,
)
from vigil.pipelines.alerting.severity import (
    SEVERITIES,
    UNKNOWN_QUERY_SEVERITY,
    RatedQuery,
    Severity,
    escalate,
    severity_of,
)

__all__ = [
    "QUERY_SCHEDULE",
    "SEVERITIES",
    "STATE_VERSION",
    "SUPPRESS_REASONS",
    "UNKNOWN_QUERY_SEVERITY",
    "WEEKDAYS",
    "AlertOverrides",
    "AlertPolicy",
    "AlertPolicySettings",
    "AlertableHit",
    "AppliesTo",
    "Decision",
    "PairRules",
    "RatedQuery",
    "Schedule",
    "Severity",
    "SuppressReason",
    "TimeWindow",
    "WeeklySchedule",
    "decision_clock_ms",
    "escalate",
    "require_unique_names",
    "severity_of",
]
