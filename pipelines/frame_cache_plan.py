"""What a frame index cache must do to catch up with the store: pure decisions, no I/O.

The searching process's vector cache (services/search/frame_cache.py) follows the frame index
through its owner's change journal (services/detector/store/change_journal.py): the records
appended since its last refresh are folded here, in order, into one plan: which frames to fetch
again (written or overwritten: their newest row is read from the store), which to forget
(deleted), which time slices (partitions) to forget whole, and whether the cache must reload
everything (the collection was dropped, or a delete named rows the cache cannot resolve).
Later records win over earlier ones: a frame written then deleted is forgotten; one deleted
then written again is fetched; a dropped partition forgets what was written into it before.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# pymilvus' `delete(ids=[...])` sends `frame_id in ["cam:1", ...]` (a JSON list of strings).
_IDS_EXPR_RE = re.compile(r"^\s*frame_id\s+in\s+(\[.*\])\s*$", re.DOTALL)


@dataclass
class RefreshPlan:
    """What to change in the cache; `reload` overrides the rest."""

    fetch: dict[str, str] = field(default_factory=dict)  # frame_id -> the partition written to
    forget: set[str] = field(default_factory=set)  # frame_ids
    drop_partitions: set[str] = field(default_factory=set)
    reload: bool = False

    @property
    def empty(self) -> bool:
        return not (self.fetch or self.forget or self.drop_partitions or self.reload)


def plan_refresh(records: Iterable[Mapping[str, Any]], collection: str) -> RefreshPlan:
    """Fold journal records (oldest first) about `collection` into one plan."""
    plan = RefreshPlan()
    for record in records:
        if record.get("collection") != collection:
            continue
        op, partition = record.get("op"), str(record.get("partition") or "")
        if op == "upsert":
            for frame_id in record.get("ids", []):
                plan.forget.discard(frame_id)
                plan.fetch[frame_id] = partition
        elif op == "delete":
            ids = ids_in_delete_expr(str(record.get("expr", "")))
            if ids is None:
                plan.reload = True
                continue
            for frame_id in ids:
                plan.fetch.pop(frame_id, None)
                plan.forget.add(frame_id)
        elif op == "drop_partition":
            plan.drop_partitions.add(partition)
            plan.fetch = {i: p for i, p in plan.fetch.items() if p != partition}
        else:  # the collection dropped or truncated, or an op this version does not know
            plan.reload = True
    return plan


def ids_in_delete_expr(expr: str) -> list[str] | None:
    """The frame ids a delete by primary keys names; None for any other expression."""
    match = _IDS_EXPR_RE.match(expr)
    if match is None:
        return None
    try:
        ids = json.loads(match[1])
    except ValueError:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None
    return ids


def probes_for(selected: int, live: int, lists: int, base_probes: int) -> int:
    """How many inverted lists a filtered search visits: enough that the lists visited hold
    about as many selected rows as `base_probes` lists of an unfiltered search would, up to all
    (then the search is exhaustive over the selected rows: one camera's last hour is)."""
    if selected <= 0 or live <= 0:
        return lists
    wanted = math.ceil(base_probes * live / selected)
    return max(1, min(lists, wanted))
