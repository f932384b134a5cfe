"""Milvus boolean filters, built from checked values only.

A filter is text that Milvus parses, so every value that goes into one is checked first (ids
against the contract's identifier pattern, times as epoch milliseconds) and written as JSON:
nothing a caller passes can change what the filter means. A value of None adds no condition.

    str(MilvusFilter().id_is("camera_id", "hall").at_or_after("peak_ts_ms", since, "since_ts_ms"))
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from vigil.services.common.contract import check_id, check_ts_ms


class MilvusFilter:
    def __init__(self) -> None:
        self._conditions: list[str] = []

    def id_is(self, field: str, value: str | None) -> MilvusFilter:
        if value is not None:
            check_id(field, value)
            self._conditions.append(f"{field} == {json.dumps(value)}")
        return self

    def id_in(self, field: str, values: Sequence[str] | None) -> MilvusFilter:
        """`field` is one of `values` (an empty list matches nothing)."""
        if values is not None:
            for value in values:
                check_id(field, value)
            self._conditions.append(f"{field} in {json.dumps(list(values))}")
        return self

    def at_or_after(self, field: str, ts_ms: int | None, argument: str) -> MilvusFilter:
        """`field` >= `ts_ms`; `argument` names the caller's parameter in an error."""
        if ts_ms is not None:
            check_ts_ms(argument, ts_ms)
            self._conditions.append(f"{field} >= {ts_ms}")
        return self

    def at_or_before(self, field: str, ts_ms: int | None, argument: str) -> MilvusFilter:
        if ts_ms is not None:
            check_ts_ms(argument, ts_ms)
            self._conditions.append(f"{field} <= {ts_ms}")
        return self

    def __str__(self) -> str:
        return " and ".join(self._conditions)
