"""The JSON messages every service shares: valid ones round-trip, bad ones name the bad field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vigil.services.common.contract import (
    AlertMessage,
    BadMessageError,
    CameraStatusMessage,
    FrameHeaders,
    HitMessage,
    QueryMessage,
    decode_json,
    derive_hit_id,
    encode_json,
)

QUERY = QueryMessage(
    query_id="q-cat",
    text="một con mèo trên ghế",
    language="vi",
    cameras=["cam-1", "cam-2"],
    threshold=0.4,
    severity="critical",
    created_by="operator@example.org",
    updated_ts_ms=1_700_000_000_000,
)
HIT = HitMessage(
    hit_id=derive_hit_id("cam-1", "q-cat", 1_700_000_000_000),
    camera_id="cam-1",
    query_id="q-cat",
    event_start_ts_ms=1_700_000_000_000,
    peak_ts_ms=1_700_000_000_500,
    end_ts_ms=1_700_000_002_000,
    peak_score=0.83,
    thumbnail="thumbnails/cam-1/1700000000500.jpg",
    encoder="clip-ViT-B-32",
)
BOXED_HIT = HIT.model_copy(update={"box": (0.25, 0.1, 0.75, 0.9)})
ALERT = AlertMessage(
    alert_id=f"{HIT.hit_id}:0",
    hit_id=HIT.hit_id,
    camera_id="cam-1",
    query_id="q-cat",
    severity="critical",
    text="Có một con mèo trên ghế ở camera 1",
    language="vi",
    raised_ts_ms=1_700_000_000_600,
)
STATUS = CameraStatusMessage(
    camera_id="cam-1",
    state="stalled",
    reason="no frame for 2.0 s",
    since_ts_ms=1_700_000_000_000,
    ts_ms=1_700_000_003_000,
    reconnects=2,
)


@pytest.mark.parametrize(
    "message", [QUERY, HIT, BOXED_HIT, ALERT, STATUS], ids=["query", "hit", "boxed-hit", "alert", "status"]
)
def test_every_message_round_trips_through_json_bytes(message):
    raw = encode_json(message)
    assert json.loads(raw)["schema_version"] == 1
    assert decode_json(type(message), raw) == message


def test_query_defaults_mean_all_cameras_auto_threshold_enabled():
    query = QueryMessage(query_id="q1", text=" a person ", created_by="api", updated_ts_ms=0)
    assert (query.text, query.language, query.cameras, query.threshold) == ("a person", "auto", [], "auto")
    assert query.enabled and query.severity == "warning"
    assert query.applies_to("any-camera")
    assert QUERY.applies_to("cam-2") and not QUERY.applies_to("cam-3")


def _with(message, **changes) -> bytes:
    document = json.loads(encode_json(message))
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("model", "raw", "field"),
    [
        (QueryMessage, _with(QUERY, text="   "), "text"),
        (QueryMessage, _with(QUERY, text="x" * 501), "text"),
        (QueryMessage, _with(QUERY, language="fr"), "language"),
        (QueryMessage, _with(QUERY, threshold=1.5), "threshold"),
        (QueryMessage, _with(QUERY, threshold="0.5"), "threshold"),  # strict: a string is not a number
        (QueryMessage, _with(QUERY, enabled="yes"), "enabled"),
        (QueryMessage, _with(QUERY, cameras=["bad camera id"]), "cameras.0"),
        (QueryMessage, _with(QUERY, updated_ts_ms="1700000000000"), "updated_ts_ms"),
        (QueryMessage, _with(QUERY, owner="someone"), "owner"),  # unknown fields are refused
        (HitMessage, _with(HIT, peak_ts_ms=HIT.event_start_ts_ms - 1), "peak_ts_ms"),
        (HitMessage, _with(HIT, end_ts_ms=HIT.peak_ts_ms - 1), "end_ts_ms"),
        (HitMessage, _with(HIT, camera_id=None), "camera_id"),
        (HitMessage, _with(HIT, box=[0.1, 0.2, 0.3]), "box"),
        (HitMessage, _with(HIT, box=[0.6, 0.2, 0.3, 0.4]), "box"),
        (AlertMessage, _with(ALERT, severity="urgent"), "severity"),
        (AlertMessage, _with(ALERT, box=[0.6, 0.2, 0.3, 0.4]), "box"),
        (CameraStatusMessage, _with(STATUS, state="sleeping"), "state"),
        (CameraStatusMessage, _with(STATUS, reconnects=-1), "reconnects"),
    ],
)
def test_a_bad_message_raises_bad_message_error_naming_the_field(model, raw, field):
    with pytest.raises(BadMessageError) as caught:
        decode_json(model, raw)
    assert f"{field}:" in str(caught.value)
    assert str(caught.value).startswith(model.__name__)


def test_a_hit_with_a_box_round_trips_as_a_json_array_of_four_fractions():
    raw = encode_json(BOXED_HIT)
    assert json.loads(raw)["box"] == [0.25, 0.1, 0.75, 0.9]
    decoded = decode_json(HitMessage, raw)
    assert decoded == BOXED_HIT and decoded.box == (0.25, 0.1, 0.75, 0.9)
    # A producer may hand over a list (what Milvus and json return) or numpy floats.
    assert HitMessage(**{**HIT.model_dump(), "box": [0, 0, 1, 1]}).box == (0.0, 0.0, 1.0, 1.0)
    from_numpy = HitMessage(**{**HIT.model_dump(), "box": np.array([0.5, 0.25, 0.75, 1.0], dtype=np.float32)})
    assert from_numpy.box == (0.5, 0.25, 0.75, 1.0) and all(type(v) is float for v in from_numpy.box)
    assert HIT.box is None and json.loads(encode_json(HIT))["box"] is None


def test_an_alert_carries_its_hits_box_for_the_console_and_older_alerts_decode_without_one():
    boxed = ALERT.model_copy(update={"box": BOXED_HIT.box})
    assert decode_json(AlertMessage, encode_json(boxed)).box == (0.25, 0.1, 0.75, 0.9)
    older = json.loads(encode_json(ALERT))
    del older["box"]
    assert decode_json(AlertMessage, json.dumps(older).encode()).box is None


@pytest.mark.parametrize(
    ("box", "says"),
    [
        ([0.1, 0.2, 0.3], r"box: .*\[x0, y0, x1, y1\] \(4 numbers\), got 3"),
        ([0.1, 0.2, 0.3, 0.4, 0.5], r"box: .*\(4 numbers\), got 5"),
        ([0.6, 0.2, 0.3, 0.4], r"box: .*x0 < x1.*x0=0\.6, x1=0\.3"),
        ([0.1, 0.4, 0.3, 0.4], r"box: .*y0 < y1.*y0=0\.4, y1=0\.4"),  # an empty box is no region
        ([0.1, 0.2, 1.5, 0.4], r"box: .*x1 must be a finite fraction of the frame from 0 to 1, got 1\.5"),
        ([-0.1, 0.2, 0.3, 0.4], r"box: .*x0 must be a finite fraction .* got -0\.1"),
        ([0.1, "0.2", 0.3, 0.4], r"box: .*y0 must be a number, got '0\.2'"),  # strict, as elsewhere
        ([0.1, 0.2, True, 0.4], r"box: .*x1 must be a number, got True"),
        ("0.1,0.2,0.3,0.4", r"box: .*4 numbers\), got str"),
    ],
    ids=[
        "3-numbers",
        "5-numbers",
        "x0-after-x1",
        "no-height",
        "1.5",
        "negative",
        "a-string-number",
        "a-bool",
        "a-string",
    ],
)
def test_a_bad_box_is_refused_saying_what_is_wrong(box, says):
    with pytest.raises(BadMessageError, match=says):
        decode_json(HitMessage, _with(HIT, box=box))


def test_a_nan_or_infinite_box_coordinate_is_refused():
    raw = _with(HIT, box=[0.1, 0.2, 0.3, 0.4]).replace(b"[0.1, 0.2, 0.3, 0.4]", b"[0.1, 0.2, NaN, 0.4]")
    assert b"NaN" in raw
    with pytest.raises(BadMessageError, match=r"box: .*x1 must be a finite fraction .* got nan"):
        decode_json(HitMessage, raw)
    with pytest.raises(ValueError, match=r"box\n.*y1 must be a finite fraction .* got inf"):
        HitMessage(**{**HIT.model_dump(), "box": [0.1, 0.2, 0.3, float("inf")]})


def test_a_hit_from_an_older_detector_without_a_box_still_decodes_as_whole_frame():
    # Exactly what the detector published before boxes existed: same schema_version, no "box".
    raw = (
        b'{"schema_version":1,"hit_id":"cam-1:q-cat:1700000000000","camera_id":"cam-1",'
        b'"query_id":"q-cat","event_start_ts_ms":1700000000000,"peak_ts_ms":1700000000500,'
        b'"end_ts_ms":1700000002000,"peak_score":0.83,"thumbnail":"thumbnails/cam-1/1700000000500.jpg",'
        b'"encoder":"clip-ViT-B-32"}'
    )
    decoded = decode_json(HitMessage, raw)
    assert decoded == HIT and decoded.box is None


def test_a_missing_field_is_named():
    document = json.loads(encode_json(HIT))
    del document["thumbnail"]
    with pytest.raises(BadMessageError, match="thumbnail: Field required"):
        decode_json(HitMessage, json.dumps(document).encode())


def test_a_nan_score_is_refused():
    raw = encode_json(HIT).replace(b'"peak_score":0.83', b'"peak_score":NaN')
    with pytest.raises(BadMessageError, match="peak_score"):
        decode_json(HitMessage, raw)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (None, "tombstone"),
        (b"", "Invalid JSON"),
        (b"\xff\xd8\xff\xe0 a jpeg", "Invalid JSON"),
        (b"[1, 2]", "object"),
        (_with(QUERY, schema_version=2), "schema_version 2 is not supported"),
    ],
)
def test_what_is_not_a_message_of_this_version_says_so(raw, says):
    with pytest.raises(BadMessageError, match=says):
        decode_json(QueryMessage, raw)


def test_hit_ids_derive_from_camera_query_and_start_so_a_replay_writes_the_same_hit():
    assert derive_hit_id("cam.1", "q-2", 5) == "cam.1:q-2:5"
    assert derive_hit_id("a.b", "c", 1) != derive_hit_id("a", "b.c", 1)  # ids never contain ':'
    assert HIT.hit_id == "cam-1:q-cat:1700000000000"


def test_frame_headers_round_trip_as_ascii_kafka_headers():
    headers = FrameHeaders(camera_id="cam-1", ts_ms=1_700_000_000_123, seq=42, width=640, height=360)
    kafka_headers = headers.to_kafka()
    assert all(isinstance(name, str) and isinstance(value, bytes) for name, value in kafka_headers)
    assert FrameHeaders.from_kafka(kafka_headers) == headers
    with pytest.raises(BadMessageError, match="ts_ms"):
        FrameHeaders.from_kafka([(n, v) for n, v in kafka_headers if n != "ts_ms"])
