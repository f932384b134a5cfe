"""The evaluation end to end on one short real stream: the real offline encoder, `replay_camera`,
the JSON report, the printed table and the docs' tables; and the encoder memo that lets each
stream be played in both languages for the cost of one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vigil.evaluation import dataset, metrics, report
from vigil.evaluation.evaluate import evaluate
from vigil.evaluation.runner import RecallingEncoder
from vigil.model_tools.temporal import data

VIGIL = str(Path(sys.executable).with_name("vigil"))


class CountingEncoder:
    """A stand-in encoder: a vector from each image's mean colour; counts what it is asked."""

    info = "counting"
    proposes_regions = True

    def __init__(self) -> None:
        self.seen = 0

    def embed_images(self, images):
        self.seen += len(images)
        return np.array([[float(np.mean(i)), float(i.shape[0]), 1.0] for i in images], np.float32)

    def embed_crops(self, crops, proposals=None):
        proposals = proposals if proposals is not None else [[] for _ in crops]
        assert len(proposals) == len(crops)
        self.seen += len(crops)
        return np.array(
            [[float(np.mean(c)), float(len(p)), 2.0] for c, p in zip(crops, proposals, strict=True)],
            np.float32,
        )

    def propose_regions(self, images):
        self.seen += len(images)
        return [[(0.0, 0.0, 0.5, float(np.mean(i)) / 255)] for i in images]


def test_the_encoder_memo_answers_as_the_encoder_and_asks_it_once_per_image():
    inner = CountingEncoder()
    memo = RecallingEncoder(inner)
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(2))
    first = memo.embed_images([a, b, a.copy()])
    assert np.array_equal(first, inner.embed_images([a, b, a]))
    inner.seen = 0
    again = memo.embed_images([b, a])
    assert inner.seen == 0 and np.array_equal(again, first[[1, 0]])
    assert memo.computed == 2 and memo.recalled == 3
    assert np.array_equal(memo.embed_crops([a[:4]]), inner.embed_crops([a[:4]]))  # a method of its own
    # a per-crop argument is part of the crop's key, and sliced with the crops it goes with
    inner.seen = 0
    crops, proposals = [a[:4], b[:4], a[:4], a[:4]], [[], ["box"], [], ["box", "box"]]
    answered = memo.embed_crops(crops, proposals)
    assert inner.seen == 3  # (a, none), (b, one box), (a, two boxes)
    assert np.array_equal(answered, inner.embed_crops(crops, proposals))
    assert answered[0, 1] == 0 and answered[3, 1] == 2
    assert memo.propose_regions([a]) == inner.propose_regions([a])
    assert memo.info == "counting" and memo.proposes_regions is True  # everything else delegated
    assert memo.embed_images([]).shape == inner.embed_images([]).shape


def short_stream() -> dataset.DevStream:
    """34 s of the tree clip: a cat photo at 15-18.5 s and again, smaller, at 29-32.5 s (tune photos);
    queries: the cat, and two that never appear (a cup of coffee, a fire)."""
    crop = (0.05, 0.05, 0.95, 0.95)
    placements = [
        dataset.Placement("chelsea", 15.0, 18.5, crop, 0.12, (0.3, 0.4)),
        dataset.Placement("chelsea", 29.0, 32.5, crop, 0.06, (0.8, 0.1)),
    ]
    segment = data.SPLITS["train"].cuts[1]
    assert segment.clip == "tree"
    return dataset.build_stream(
        "e2e-tree", "tune", segment, 1.0, placements, ("cat",), ("coffee", "fire"), 34.0
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from vigil.models.registry import EncoderSettings, create_encoder
    from vigil.services.detector.replay import ReplayQuery, replay_camera

    folder = tmp_path_factory.mktemp("evaluation")
    docs = folder / "EVALUATION.md"
    docs.write_text("# Evaluation\n\nprose before\n")
    encoder = create_encoder(EncoderSettings(kind="offline"))
    stream = short_stream()
    lines: list[str] = []
    [(path, document)] = evaluate(
        split="tune",
        encoder=encoder,
        out_dir=folder,
        docs=docs,
        command="pytest e2e",
        streams={"tune": [stream]},
        echo=lines.append,
    )
    queries = [ReplayQuery(q, t) for q, t in stream.query_texts("en").items()]
    direct = replay_camera(encoder, dataset.render_frames(stream), queries, camera_id=stream.name)
    return path, document, docs, lines, stream, direct


def test_the_report_is_written_with_the_encoder_the_cpu_and_the_command(evaluated):
    path, document, docs, lines, stream, _ = evaluated
    assert path.name == "report-offline-tune.json"
    assert json.loads(path.read_text()) == document
    assert document["encoder"]["name"].startswith("offline:")
    assert set(document["cpu"]["flags"]) == {"avx2", "avx512f", "avx512_vnni", "amx"}
    assert document["command"] == "pytest e2e" and document["split"] == "tune"
    assert document["dataset"]["streams"][0]["stream"] == stream.name
    assert [r["language"] for r in document["runs"]] == ["en", "vi"]
    assert set(document["figures"]) == {"en", "vi", "all"}
    assert document["timing"]["frames"] == stream.frames == 68
    # the Vietnamese pass was answered from the memo: no image embedded twice
    en, vi = document["runs"]
    assert vi["images_embedded"] == 0 and vi["images_recalled"] > 0
    assert "events found" in "\n".join(lines) and f"report: {path}" in lines


def test_the_hits_are_replay_cameras_and_the_numbers_follow_from_them(evaluated):
    _, document, _, _, stream, direct = evaluated
    en = document["runs"][0]
    assert sorted(
        (h["query_id"], h["start_ms"], h["confirmed_ms"], h["end_ms"]) for h in en["hits"]
    ) == sorted((h.query_id, h.event_start_ts_ms, h.confirmed_ts_ms, h.end_ts_ms) for h in direct)
    for run in document["runs"]:
        figures = document["figures"][run["language"]]
        events = {e["event_id"]: e for e in run["events"]}
        assert figures["events"] == len(stream.events) == 2
        assert figures["found"] == sum(e["found"] for e in run["events"])
        assert figures["hits"] == len(run["hits"])
        kinds = {
            k: sum(h["kind"] == k for h in run["hits"]) for k in ("match", "late", "cross", "background")
        }
        assert figures["hit_kinds"] == kinds and kinds["match"] == figures["found"]
        query_hours = stream.duration_ms * len(run["queries"]) / metrics.HOUR_MS
        false = kinds["cross"] + kinds["background"]
        assert figures["false_per_hour_per_query"] == pytest.approx(false / query_hours, abs=1e-3)
        for h in run["hits"]:
            if h["kind"] == "match":
                event = events[h["event_id"]]
                assert h["query_id"] == event["query_id"] and event["found"]
                assert abs(h["start_ms"] - event["start_ms"]) <= metrics.TOLERANCE_MS
                assert event["time_to_detect_ms"] == h["confirmed_ms"] - event["start_ms"]
            else:
                assert h["event_id"] is None
        fired = sum(len(e["cross_fired_by"]) for e in run["events"])
        assert figures["cross_fired"] == fired and figures["cross_pairs"] == 2 * (len(run["queries"]) - 1)
        two = figures["two_event_query"]
        assert two["first"]["events"] == two["second"]["events"] == 1
        assert two["first"]["found"] + two["second"]["found"] == figures["found"]


def test_the_docs_tables_are_replaced_between_markers_not_appended_twice(evaluated):
    _, document, docs, _, _, _ = evaluated
    begin, end = report.markers("tune")
    text = docs.read_text()
    assert text.startswith("# Evaluation\n\nprose before\n")
    assert text.count(begin) == 1 and "`pytest e2e`" in text and "| en |" in text
    report.write_docs({**document, "command": "pytest again"}, docs)
    text = docs.read_text()
    assert text.count(begin) == text.count(end) == 1
    assert "`pytest again`" in text and "`pytest e2e`" not in text and "prose before" in text


def test_cpu_flags_are_read_from_cpuinfo():
    info = report.cpu_info("model name\t: Test CPU\nflags\t\t: fpu avx2 avx512f amx_tile\n")
    assert info["model"] == "Test CPU"
    assert info["flags"] == {"avx2": True, "avx512f": True, "avx512_vnni": False, "amx": True}


def test_the_command_lines_offer_split_and_quick_and_refuse_a_bad_split():
    for command in ([VIGIL, "eval", "--help"], [sys.executable, "-m", "vigil.evaluation", "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "--split" in done.stdout and "--quick" in done.stdout
    bad = subprocess.run([VIGIL, "eval", "--split", "train"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2


def test_replay_decides_with_the_temporal_model_when_configured(evaluated):
    """`temporal: gru` reaches replay (and so `vigil eval`): the GRU's probabilities, not the
    per-frame calibrated score, drive the state machine, so the events' scores change."""
    from vigil.models.registry import EncoderSettings, create_encoder
    from vigil.services.detector.config import DetectorSettings
    from vigil.services.detector.replay import ReplayQuery, replay_camera

    *_, stream, direct = evaluated
    queries = [ReplayQuery(q, t) for q, t in stream.query_texts("en").items()]
    encoder = create_encoder(EncoderSettings(kind="offline"))
    frames = list(dataset.render_frames(stream))
    again = replay_camera(encoder, frames, queries, camera_id=stream.name)
    gru = replay_camera(encoder, frames, queries, DetectorSettings(temporal="gru"), camera_id=stream.name)
    assert again == direct and direct  # the threshold's events are reproducible, and there are some
    assert [(h.query_id, h.peak_score) for h in gru] != [(h.query_id, h.peak_score) for h in direct]
