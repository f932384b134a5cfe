"""Faults under a real `vigil up`: the harness of the chaos suite (tests/chaos) and its bench.

`run_scenario` runs `vigil up` as a user would, in a folder of its own (durable broker log,
Milvus lite, thumbnails, speech cache, API token), on a real RTSP camera that plays the demo's
clip (known events: a cat 12-20 s and a motorcycle 34-42 s into the stream), and applies each
Fault at its time into the stream:

- `kill:ingest`, `kill:detector`, `kill:alerter`: kill -9 of that child of `vigil up`;
- `kill:broker`: kill -9 of the local broker (tansu) that `vigil up` started;
- `poison`: four frames that must not hurt, sent to "frames" as a broken camera would: one of
  15 MB (over the topic's limit, which the local broker does not enforce), a JPEG stamped a
  day ahead, one stamped a day behind, and bytes that are no image;
- `ack`: the first alert raised so far is acknowledged through the API;
- `query`: an operator registers a query of their own (OPERATOR_QUERY) on "queries".

It records what came out (`ChaosRun`): every record on "hits", "alerts" and "dead-letters",
the hits stored in Milvus, the stream's start (the camera's first "streaming" status), each
fault's recovery (until the detector scores a new frame, or the alerter's API answers), and
the acknowledgement. `compare` holds a run against a clean one; `restart_keeps` starts
`vigil up` again on the same folder and reads back what an operator set.

The reference a run is held against (reference.py) is a clean run on the very same frames:
the frames the camera published, read back from the run's durable broker log, through the
live detector's decisions (services/detector/replay.py) with no fault in between. So hit ids
(which embed capture times) compare exactly, and a difference is the faults' doing, not a
live camera's frames sampled at another phase.
"""

from vigil.chaos.model import ADMIN_TOKEN, OPERATOR_QUERY, ChaosRun, Event, Fault
from vigil.chaos.reference import Reference, clean_reference, compare
from vigil.chaos.restart import Restarted, restart_keeps
from vigil.chaos.scenario import run_scenario, start_up, stop_up, summary

__all__ = [
    "ADMIN_TOKEN",
    "OPERATOR_QUERY",
    "ChaosRun",
    "Event",
    "Fault",
    "Reference",
    "Restarted",
    "clean_reference",
    "compare",
    "restart_keeps",
    "run_scenario",
    "start_up",
    "stop_up",
    "summary",
]
