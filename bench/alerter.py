"""Alerter: speech synthesis times and hit-to-alert latency through the real alerter service.

    python bench/run.py --part alerter     # everything, into bench/results/alerter.json + BENCHMARKS.md
    python bench/alerter.py --role speech  # synthesis times; prints one JSON line
    python bench/alerter.py --role service --case cold   # one service case; prints one JSON line

Speech (`SpeechSynthesizer.synthesize`, services/alerter/speech/synthesizer.py), one process per round:

    espeak-ng      distinct Vietnamese and English alert sentences (pipelines/phrases.py
                   `alert_phrase` over several queries, cameras and severities), each a cache
                   miss, the languages interleaved; one untimed sentence per language first
    cache hit      every one of those sentences again (the file is there: nothing is spoken)
    gTTS fallback  the default engines (gTTS, then espeak-ng; gtts_timeout_s 3, gtts_retries 1,
                   gtts_cooldown_s 60) on this machine: the first alert of a fresh synthesizer
                   (gTTS is tried, fails, espeak-ng speaks), then the next alerts while gTTS
                   cools down (skipped); once as the network is here, once with every HTTPS
                   request sent to a local proxy that accepts and never answers (a firewall
                   that drops packets: requests' own timeout and the attempt's deadline apply)

Service (`AlerterService`, services/alerter/service.py, looping in a thread of this process as
tests/alerter/alerter_support.py `Running` does), one process per case, on a fresh local tansu
broker with two standing queries (Vietnamese "Một chiếc xe máy", critical; English "a person
climbing the fence", warning). Hits go to "hits" from this process's producer; a group-less
consumer follows "alerts" from its end. Each hit is timed from its acknowledgement by the broker
(the producer's delivery callback: the hit is on the broker, readable by the alerter) to

    alert sent       the alert record's Kafka timestamp (CreateTime: set by the alerter's producer
                     when it queues the alert, right after speaking it; same clock, ms)
    alert received   this process's follower of "alerts" has the record: the alert is on the
                     broker (adds the alerter's producer linger and acknowledgement). The follower
                     asks for fetch_max_wait_ms 10: tansu answers a pending fetch only when its
                     max wait runs out, so a default consumer would add its own wait here

Before timing, one priming hit on a camera of its own goes through (the alerter's consumer has
joined its group), in the spoken-ahead cases `service.warmer.wait()` returns, and the CPU of
this process (the alerter and the harness) and of the broker is read over `--idle-s` without
hits. Cases:

    cold          speech.warm_up off; every hit on a camera never seen, so every phrase is spoken
                  (espeak-ng) while the alert waits; one hit every `--pace-s`
    warm          speech.warm_up on (the default); the cameras are configured, so each standing
                  query's phrase for each camera is spoken ahead in the background; same pace
    warm-fetch500 as warm, with the alerter's "hits" consumer made with kafka-python's default
                  fetch_max_wait_ms=500 (patched here, in this process only) instead of Vigil's
                  100 (KafkaSettings.consumer_fetch_max_wait_ms): what the broker's fetch wait costs
    warm-20k      as warm, the alerter restarting with a policy memory of 20,000 hit ids (the
                  default dedupe_max_hits: a busy site's day), loaded from "alert-state" (one
                  record per hit id, as the alerter keeps them); it checkpoints every
                  commit_interval_s (5 s, the default)
    warm-20k-every-batch  the same with commit_interval_s 0: a checkpoint after every batch
    burst-cold    `--burst` hits sent at once on distinct cameras, nothing spoken ahead
    burst-warm    the same, every phrase spoken ahead

The alerter's own timings are kept by wrapping its methods (the instance's attributes, nothing
in the service changes): `_handle` per hit (decode, policy, speech, queue the alert and its
record), `_speak` per alert (cached or not), `checkpoint` per batch (changed hit ids and the
policy record queued, producer flushed, offsets committed) and the policy record's
`state_log.save`.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GROUP_ID = "bench-alerter"
COOLDOWN_S = 60.0
# (query_id, text, language, severity): the standing queries of the service cases.
QUERIES = (
    ("q-moto", "Một chiếc xe máy", "vi", "critical"),
    ("q-fence", "a person climbing the fence", "en", "warning"),
)
CASES = (
    "cold",
    "warm",
    "warm-fetch500",
    "warm-20k",
    "warm-20k-every-batch",
    "burst-cold",
    "burst-warm",
)
CASE_TEXT = {
    "cold": "not spoken ahead (warm_up off, new camera each hit)",
    "warm": "spoken ahead (warm_up on, cameras configured)",
    "warm-fetch500": "spoken ahead, alerter's fetch_max_wait_ms 500 (kafka-python's default; bench patch)",
    "warm-20k": "spoken ahead, policy memory 20,000 hit ids",
    "warm-20k-every-batch": "spoken ahead, policy memory 20,000 hit ids, commit_interval_s 0",
    "burst-cold": "burst, not spoken ahead",
    "burst-warm": "burst, spoken ahead",
}
MEMORY_HITS = 20_000
FOLLOWER_FETCH_WAIT_MS = 10
# Sentences of the speech part: query texts and camera display names per language.
SPEECH_QUERIES = {
    "vi": (
        "một chiếc xe máy",
        "một người đàn ông mặc áo đỏ",
        "một con chó",
        "người trèo qua hàng rào",
        "một chiếc ô tô màu trắng",
        "khói hoặc lửa",
        "một người đội mũ bảo hiểm",
        "một chiếc ba lô bị bỏ lại",
    ),
    "en": (
        "a motorcycle",
        "a man wearing a red shirt",
        "a dog",
        "a person climbing the fence",
        "a white car",
        "smoke or fire",
        "a person wearing a helmet",
        "an abandoned backpack",
    ),
}
SPEECH_CAMERAS = {
    "vi": ("cổng chính", "bãi xe B", "kho 2", "sảnh tầng 1", "cam-3", "cam-12", "hành lang phía đông"),
    "en": ("Gate north", "Parking B", "Warehouse 2", "Lobby", "cam-3", "cam-12", "East corridor"),
}


# --- figures ---------------------------------------------------------------------------------


def stats_ms(values_s: list[float]) -> dict:
    """n, median, p90 and max of seconds, in ms (numpy's linear percentiles)."""
    import numpy as np

    if not values_s:
        return {"n": 0, "median_ms": None, "p90_ms": None, "max_ms": None}
    ms = np.asarray(values_s, dtype=float) * 1000
    median, p90 = np.percentile(ms, [50, 90])
    return {"n": len(values_s), "median_ms": float(median), "p90_ms": float(p90), "max_ms": float(ms.max())}


def sentences(language: str, count: int, seed: int) -> list[str]:
    """`count` distinct alert sentences in `language` (query x camera x severity, shuffled)."""
    from vigil.pipelines.phrases import SEVERITIES, alert_phrase

    combos = list(itertools.product(SPEECH_QUERIES[language], SPEECH_CAMERAS[language], SEVERITIES))
    random.Random(seed).shuffle(combos)
    if count > len(combos):
        raise ValueError(f"at most {len(combos)} distinct {language} sentences")
    return [alert_phrase(what, camera, language, severity) for what, camera, severity in combos[:count]]


# --- speech ----------------------------------------------------------------------------------


class _Failures(logging.Handler):
    """Keeps the speech module's "speech engine gtts failed: ..." lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("speech engine gtts failed"):
            self.lines.append(message)


class _SilentProxy:
    """A TCP server on loopback that accepts connections, reads, and never answers."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)  # kept open, never read from or written to

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


def _gtts_fallback(cache_dir: Path, texts: list[str], language: str, failures: _Failures) -> dict:
    """The first alert of a fresh synthesizer with the default engines, then the next ones."""
    from vigil.services.alerter.speech import SpeechSettings, SpeechSynthesizer

    attempts: list[tuple[str, float, bool]] = []
    synthesizer = SpeechSynthesizer(
        SpeechSettings(cache_dir=cache_dir), observe=lambda engine, s, ok: attempts.append((engine, s, ok))
    )
    assert synthesizer.settings.engines == ["gtts", "espeak-ng"]
    before = len(failures.lines)
    results = [synthesizer.synthesize(text, language) for text in texts]
    gtts_tries = [s for engine, s, ok in attempts if engine == "gtts"]
    return {
        "first_s": results[0].synthesis_s,
        "next_s": [r.synthesis_s for r in results[1:]],
        "engines": sorted({r.engine for r in results}),
        "gtts_tried": len(gtts_tries),  # the first alert only, if the cool-down works
        "gtts_failed_after_s": gtts_tries[0] if gtts_tries else None,
        "gtts_ok": any(ok for engine, _, ok in attempts if engine == "gtts"),
        "failure": failures.lines[before][:400] if len(failures.lines) > before else None,
    }


def measure_speech(count: int, gtts_next: int, seed: int) -> dict:
    from vigil.services.alerter.speech import SpeechSettings, SpeechSynthesizer

    failures = _Failures()
    speech_log = logging.getLogger("vigil.services.alerter.speech")
    speech_log.addHandler(failures)
    speech_log.setLevel(logging.INFO)
    speech_log.propagate = False
    languages = ("vi", "en")
    texts = {language: sentences(language, count + 1 + 2 * (gtts_next + 1), seed) for language in languages}
    result: dict = {"espeak": {}, "cache_hit_s": [], "gtts": {}}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-speech-") as tmp_name:
        tmp = Path(tmp_name)
        espeak = SpeechSynthesizer(SpeechSettings(cache_dir=tmp / "espeak", engines=["espeak-ng"]))
        timed = {language: texts[language][1 : count + 1] for language in languages}
        for language in languages:  # untimed: espeak-ng's voice data into the page cache
            espeak.synthesize(texts[language][0], language)
        rows = {language: [] for language in languages}
        for i in range(count):
            for language in languages:
                spoken = espeak.synthesize(timed[language][i], language)
                assert not spoken.cached and spoken.engine == "espeak-ng"
                rows[language].append(
                    {
                        "synthesis_s": spoken.synthesis_s,
                        "audio_s": spoken.duration_s,
                        "chars": len(timed[language][i]),
                    }
                )
        for i in range(count):
            for language in languages:
                again = espeak.synthesize(timed[language][i], language)
                assert again.cached
                result["cache_hit_s"].append(again.synthesis_s)
        result["espeak"] = rows
        # gTTS then espeak-ng: as the network is here, then with a network that never answers.
        rest = {language: texts[language][count + 1 :] for language in languages}
        half = gtts_next + 1
        result["gtts"]["here"] = _gtts_fallback(tmp / "gtts-here", rest["vi"][:half], "vi", failures)
        proxy = _SilentProxy()
        saved = {
            name: os.environ.get(name) for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY")
        }
        try:
            os.environ["https_proxy"] = os.environ["HTTPS_PROXY"] = f"http://127.0.0.1:{proxy.port}"
            os.environ.pop("no_proxy", None)
            os.environ.pop("NO_PROXY", None)
            result["gtts"]["silent"] = _gtts_fallback(tmp / "gtts-silent", rest["vi"][half:], "vi", failures)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            proxy.close()
    return result


# --- the service -----------------------------------------------------------------------------


def process_cpu_s(pid: int | None) -> float:
    """utime + stime of a process (every thread), seconds; 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class _PastHit:
    """A hit the restarted alerter's policy remembers (AlertableHit)."""

    hit_id: str
    camera_id: str
    query_id: str
    event_start_ts_ms: int
    peak_ts_ms: int
    end_ts_ms: int | None


def remembered_policy(hits: int, now_ms: int):
    """The policy of an alerter that has judged `hits` hits over the last day (one every 4 s on
    40 cameras x 5 queries; each event also closed)."""
    from vigil.pipelines.alerting import AlertPolicy, AlertPolicySettings
    from vigil.services.common.contract import derive_hit_id

    policy = AlertPolicy(AlertPolicySettings(cooldown_s=COOLDOWN_S))
    start_ms = now_ms - hits * 4_000
    for i in range(hits):
        camera, query = f"old-cam-{i % 40}", f"old-q-{i % 5}"
        at_ms = start_ms + i * 4_000
        hit = _PastHit(derive_hit_id(camera, query, at_ms), camera, query, at_ms, at_ms + 500, at_ms + 3_000)
        policy.decide(hit, "warning", at_ms + 3_000)
    assert policy.remembered_hits == hits, policy.remembered_hits
    return policy


class _AlertsFollower(threading.Thread):
    """Follows "alerts" from its end: (receive time, CreateTime s, timestamp type, AlertMessage)."""

    def __init__(self, settings) -> None:
        super().__init__(daemon=True)
        from vigil.services.common.kafka import assign_all_partitions, make_consumer

        # tansu holds a fetch for its full max wait even when records arrive meanwhile, so with
        # kafka-python's default (500 ms) the follower would add its own 0-250 ms; at 10 ms,
        # "received" is when the alert is on the broker and readable.
        self.consumer = make_consumer(settings, group_id=None, fetch_max_wait_ms=FOLLOWER_FETCH_WAIT_MS)
        partitions = assign_all_partitions(self.consumer, settings.topics.alerts)
        self.consumer.seek_to_end(*partitions)
        for partition in partitions:
            self.consumer.position(partition)  # resolve "the end" now, before any alert
        self.received: dict[str, tuple[float, float, int]] = {}  # hit_id -> (received, created, type)
        self.halt = threading.Event()

    def run(self) -> None:
        from vigil.services.common.contract import AlertMessage

        while not self.halt.is_set():
            for records in self.consumer.poll(timeout_ms=100).values():
                now = time.time()
                for record in records:
                    alert = AlertMessage.model_validate_json(record.value)
                    self.received[alert.hit_id] = (now, record.timestamp / 1000, record.timestamp_type)
        self.consumer.close(autocommit=False)

    def wait_for(self, hit_ids: list[str], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(hit_id in self.received for hit_id in hit_ids):
                return True
            time.sleep(0.02)
        return False


class _Timings:
    """Wraps the service's methods (instance attributes) to keep their durations."""

    def __init__(self, service) -> None:
        from vigil.services.alerter.service import POLICY_STATE

        self.handle: list[float] = []
        self.speak: list[tuple[float, bool | None]] = []  # (seconds, cached; None: no audio)
        self.checkpoint: list[float] = []
        self.snapshot_save: list[float] = []
        handle, speak, checkpoint = service._handle, service._speak, service.checkpoint
        save = service.state_log.save

        def timed_handle(record):
            started = time.perf_counter()
            try:
                return handle(record)
            finally:
                self.handle.append(time.perf_counter() - started)

        def timed_speak(text, language):
            started = time.perf_counter()
            spoken = speak(text, language)
            self.speak.append((time.perf_counter() - started, None if spoken is None else spoken.cached))
            return spoken

        def timed_checkpoint(*args, **kwargs):
            pending = bool(service._offsets)
            started = time.perf_counter()
            try:
                return checkpoint(*args, **kwargs)
            finally:
                if pending and not service._offsets:  # committed (not skipped by the interval)
                    self.checkpoint.append(time.perf_counter() - started)

        def timed_save(name, state):
            started = time.perf_counter()
            try:
                return save(name, state)
            finally:
                if name == POLICY_STATE:
                    self.snapshot_save.append(time.perf_counter() - started)

        service._handle, service._speak, service.checkpoint = timed_handle, timed_speak, timed_checkpoint
        service.state_log.save = timed_save

    def clear(self) -> None:
        for samples in (self.handle, self.speak, self.checkpoint, self.snapshot_save):
            samples.clear()


def measure_service(case: str, hits: int, pace_s: float, burst: int, bursts: int, idle_s: float) -> dict:
    from prometheus_client import CollectorRegistry

    from vigil.pipelines.alerting import AlertPolicySettings
    from vigil.services.alerter.config import AlertApiSettings, AlerterServiceSettings, AlerterSettings
    from vigil.services.alerter.service import AlerterService, save_policy_memory
    from vigil.services.alerter.speech import SpeechSettings
    from vigil.services.broker.local import LocalBroker
    from vigil.services.common.contract import HitMessage, QueryMessage, derive_hit_id, encode_json
    from vigil.services.common.kafka import KafkaSettings, ResilientProducer, ensure_topics, publish_query
    from vigil.services.common.state_log import GroupStateLog
    from vigil.services.common.thumbnail_store import ThumbnailSettings

    warm = "cold" not in case
    fetch500 = case.endswith("-fetch500")
    is_burst = case.startswith("burst")
    count = burst * bursts if is_burst else hits
    # Distinct cameras: in pairs with the two queries (cooldown is per camera and query).
    if case.startswith("cold") or is_burst:
        pairs = [(f"cam-{100 + i}", QUERIES[i % 2][0]) for i in range(count)]
    else:
        pairs = [(f"cam-{100 + i // 2}", QUERIES[i % 2][0]) for i in range(count)]
    cameras = sorted({camera for camera, _ in pairs})
    with tempfile.TemporaryDirectory(prefix="vigil-bench-alerter-") as tmp_name:
        tmp = Path(tmp_name)
        with LocalBroker(0, log_dir=tmp) as broker:
            settings = KafkaSettings(
                bootstrap=broker.bootstrap, topic_prefix=f"bench-{uuid.uuid4().hex[:8]}-"
            )
            ensure_topics(settings)
            topics = settings.topics
            producer = ResilientProducer(settings)
            now_ms = int(time.time() * 1000)
            for query_id, text, language, severity in QUERIES:
                publish_query(
                    producer,
                    topics,
                    QueryMessage(
                        query_id=query_id,
                        text=text,
                        language=language,
                        severity=severity,
                        created_by="bench",
                        updated_ts_ms=now_ms,
                    ),
                )
            if case.startswith("warm-20k"):
                state_log = GroupStateLog(settings, producer, topics.alert_state, GROUP_ID, "alerter state")
                save_policy_memory(state_log, remembered_policy(MEMORY_HITS, now_ms))  # as the alerter does
                producer.flush()
            config = AlerterSettings(
                group_id=GROUP_ID,
                metrics_port=0,
                api=AlertApiSettings(port=0),
                speech=SpeechSettings(cache_dir=tmp / "speech", engines=["espeak-ng"], warm_up=warm),
                policy=AlertPolicySettings(cooldown_s=COOLDOWN_S),
                commit_interval_s=0 if case.endswith("every-batch") else AlerterSettings().commit_interval_s,
                cameras={camera: camera for camera in cameras} if warm else {},
            )
            follower = _AlertsFollower(settings)
            follower.start()
            if fetch500:  # the alerter's hits consumer with kafka-python's default wait
                import vigil.services.common.consumer_service as service_module

                plain = service_module.make_consumer
                service_module.make_consumer = functools.partial(plain, fetch_max_wait_ms=500)
            started = time.perf_counter()
            try:
                service = AlerterService(
                    AlerterServiceSettings(alerter=config, kafka=settings, thumbnails=ThumbnailSettings()),
                    metrics_registry=CollectorRegistry(),
                )
            finally:
                if fetch500:
                    service_module.make_consumer = plain
            started_s = time.perf_counter() - started
            timings = _Timings(service)
            stop = threading.Event()
            errors: list[BaseException] = []

            def loop() -> None:
                try:
                    service.run(stop)
                except BaseException as error:
                    errors.append(error)

            thread = threading.Thread(target=loop, daemon=True)
            thread.start()
            acked: dict[str, float] = {}
            sent: dict[str, float] = {}

            def send(camera: str, query_id: str):
                start_ms = int(time.time() * 1000) - 2_000
                hit = HitMessage(
                    hit_id=derive_hit_id(camera, query_id, start_ms),
                    camera_id=camera,
                    query_id=query_id,
                    event_start_ts_ms=start_ms,
                    peak_ts_ms=start_ms + 1_000,
                    peak_score=0.8,
                    thumbnail=f"{camera}/{start_ms + 1_000}.jpg",
                    encoder="bench",
                )
                sent[hit.hit_id] = time.time()
                future = producer.send(topics.hits, encode_json(hit), key=camera)
                future.add_callback(
                    lambda _metadata, hit_id=hit.hit_id: acked.__setitem__(hit_id, time.time())
                )
                return hit.hit_id, future

            try:
                primed = time.perf_counter()
                prime_id, future = send("cam-prime", QUERIES[0][0])
                future.get(timeout=10)
                if not follower.wait_for([prime_id], 60):
                    raise SystemExit(f"{case}: no alert for the priming hit within 60 s")
                first_alert_s = time.perf_counter() - primed
                warmed_s = None
                if service.warmer is not None:
                    warming = time.perf_counter()
                    if not service.warmer.wait(60):
                        raise SystemExit(f"{case}: the phrases were not spoken ahead within 60 s")
                    warmed_s = time.perf_counter() - warming
                time.sleep(0.5)
                # Idle: no hits; what polling "hits" (and this process's follower) costs.
                idle = (process_cpu_s(broker.pid), time.process_time(), time.perf_counter())
                time.sleep(idle_s)
                idle_wall = time.perf_counter() - idle[2]
                idle_broker_cores = (process_cpu_s(broker.pid) - idle[0]) / idle_wall
                idle_own_cores = (time.process_time() - idle[1]) / idle_wall
                timings.clear()
                hit_ids: list[str] = []
                cpu_before = (process_cpu_s(broker.pid), time.process_time())
                begun = time.time()
                burst_rows: list[dict] = []
                if is_burst:
                    # Each burst lands at another point of the alerter's fetch wait.
                    for k in range(bursts):
                        burst_begun = time.time()
                        burst_ids = [
                            send(camera, query_id)[0]
                            for camera, query_id in pairs[k * burst : (k + 1) * burst]
                        ]
                        producer.flush()
                        hits_sent_s = max(sent[hit_id] for hit_id in burst_ids) - burst_begun
                        if not follower.wait_for(burst_ids, 120):
                            raise SystemExit(f"{case}: alerts of burst {k + 1} missing after 120 s")
                        created = sorted(follower.received[hit_id][1] for hit_id in burst_ids)
                        burst_rows.append(
                            {
                                "hits_sent_s": hits_sent_s,  # the last hit handed to the producer
                                "burst_s": created[-1] - burst_begun,  # first hit sent -> last alert sent
                                "raising_s": created[-1] - created[0],  # first -> last alert sent
                                # Once the alerter has the hits (CreateTime has ms resolution).
                                "alerts_per_s": (len(created) - 1) / max(created[-1] - created[0], 1e-3),
                            }
                        )
                        hit_ids += burst_ids
                        time.sleep(0.5 + 0.25 * k)
                else:
                    for index, (camera, query_id) in enumerate(pairs, start=1):
                        time.sleep(max(0.0, begun + (index - 1) * pace_s - time.time()))
                        hit_id, future = send(camera, query_id)
                        future.get(timeout=10)
                        hit_ids.append(hit_id)
                if not follower.wait_for(hit_ids, 120):
                    missing = sum(hit_id not in follower.received for hit_id in hit_ids)
                    raise SystemExit(f"{case}: {missing} of {len(hit_ids)} alerts missing after 120 s")
                window_s = time.time() - begun
                broker_cores = (process_cpu_s(broker.pid) - cpu_before[0]) / window_s
                own_cores = (time.process_time() - cpu_before[1]) / window_s
                remembered = service.policy.remembered_hits
            finally:
                stop.set()
                thread.join(30)
                service.close()
                follower.halt.set()
                follower.join(10)
                producer.close()
            if errors:
                raise SystemExit(f"{case}: the alerter failed: {errors[0]!r}")
            # The policy record the last checkpoint wrote (GroupStateLog.save's encoding).
            snapshot_bytes = len(
                json.dumps(
                    service.policy.to_state(include_hits=False), separators=(",", ":"), ensure_ascii=False
                ).encode()
            )
    received = [follower.received[hit_id] for hit_id in hit_ids]
    to_sent = [created - acked[hit_id] for hit_id, (_, created, _) in zip(hit_ids, received, strict=True)]
    to_received = [got - acked[hit_id] for hit_id, (got, _, _) in zip(hit_ids, received, strict=True)]
    row = {
        "case": case,
        "warm_up": warm,
        "hits": len(hit_ids),
        "pace_s": None if is_burst else pace_s,
        "cameras": len(cameras),
        "service_start_s": started_s,
        "priming_alert_s": first_alert_s,
        "spoken_ahead_s": warmed_s,
        "timestamp_types": sorted({kind for _, _, kind in received}),
        "hit_ack": stats_ms([acked[h] - sent[h] for h in hit_ids]),
        "to_alert_sent": stats_ms(to_sent),
        "to_alert_received": stats_ms(to_received),
        "handle": stats_ms(timings.handle),
        "speak": stats_ms([s for s, _ in timings.speak]),
        "speak_cached": sum(1 for _, cached in timings.speak if cached),
        "speak_none": sum(1 for _, cached in timings.speak if cached is None),
        "batches": len(timings.checkpoint),
        "checkpoint": stats_ms(timings.checkpoint),
        "snapshot_save": stats_ms(timings.snapshot_save),
        "remembered_hits": remembered,
        "window_s": window_s,
        "broker_cores": broker_cores,
        "idle_s": idle_wall,
        "idle_broker_cores": idle_broker_cores,
        "idle_alerter_and_harness_cores": idle_own_cores,
        "alerter_and_harness_cores": own_cores,
        "snapshot_bytes": snapshot_bytes,
    }
    if is_burst:
        row["burst"] = burst
        row["bursts"] = burst_rows
        for key in ("hits_sent_s", "burst_s", "raising_s", "alerts_per_s"):
            row[key] = statistics.median(b[key] for b in burst_rows)  # median over the bursts
    return row


# --- bench/run.py ----------------------------------------------------------------------------


def _run_role(arguments: list[str]) -> dict:
    command = [sys.executable, str(Path(__file__)), *arguments]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def bench(quick: bool, rounds: int) -> dict:
    """`rounds` speech processes (their samples pooled), then one process per service case."""
    speech_args = ["--role=speech"] + (["--sentences=4", "--gtts-next=2"] if quick else [])
    speech_runs = []
    for round_index in range(rounds):
        run = _run_role([*speech_args, f"--seed={round_index}"])
        speech_runs.append(run)
        vi = statistics.median(r["synthesis_s"] for r in run["espeak"]["vi"])
        en = statistics.median(r["synthesis_s"] for r in run["espeak"]["en"])
        print(
            f"  speech round {round_index + 1}/{rounds}: espeak-ng vi {1000 * vi:.0f} ms, "
            f"en {1000 * en:.0f} ms; "
            f"gTTS first alert {run['gtts']['here']['first_s']:.3f} s here, "
            f"{run['gtts']['silent']['first_s']:.2f} s on a silent network",
            flush=True,
        )
    service_args = ["--hits=6", "--burst=20", "--bursts=2", "--idle-s=1"] if quick else []
    cases = []
    for case in CASES:
        row = _run_role(["--role=service", f"--case={case}", *service_args])
        cases.append(row)
        print(describe(row), flush=True)
    return {"speech": summarize_speech(speech_runs), "cases": cases}


def summarize_speech(runs: list[dict]) -> dict:
    espeak = {}
    for language in ("vi", "en"):
        rows = [row for run in runs for row in run["espeak"][language]]
        synthesis = [row["synthesis_s"] for row in rows]
        espeak[language] = {
            "rounds": len(runs),
            "synthesis": stats_ms(synthesis),
            "synthesis_round_medians_ms": [
                1000 * statistics.median(row["synthesis_s"] for row in run["espeak"][language])
                for run in runs
            ],
            "audio_s_median": statistics.median(row["audio_s"] for row in rows),
            "chars_median": statistics.median(row["chars"] for row in rows),
            "real_time_factor_median": statistics.median(row["synthesis_s"] / row["audio_s"] for row in rows),
        }
    gtts = {}
    for network in ("here", "silent"):
        tries = [run["gtts"][network] for run in runs]
        gtts[network] = {
            "first": stats_ms([t["first_s"] for t in tries]),
            "next": stats_ms([s for t in tries for s in t["next_s"]]),
            "gtts_failed_after": stats_ms(
                [t["gtts_failed_after_s"] for t in tries if t["gtts_failed_after_s"]]
            ),
            "gtts_tried_per_synthesizer": [t["gtts_tried"] for t in tries],
            "gtts_ok": any(t["gtts_ok"] for t in tries),
            "engines": sorted({engine for t in tries for engine in t["engines"]}),
            "failure": tries[0]["failure"],
        }
    return {
        "espeak": espeak,
        "cache_hit": stats_ms([s for run in runs for s in run["cache_hit_s"]]),
        "gtts": gtts,
        "gtts_settings": {"timeout_s": 3.0, "retries": 1, "cooldown_s": 60.0},
    }


def describe(row: dict) -> str:
    sent, got = row["to_alert_sent"], row["to_alert_received"]
    line = (
        f"  {row['case']:10s}: {row['hits']} hits, hit acked -> alert sent p50 {sent['median_ms']:.0f} ms "
        f"p90 {sent['p90_ms']:.0f} max {sent['max_ms']:.0f}; -> received p50 {got['median_ms']:.0f} ms; "
        f"checkpoint p50 {row['checkpoint']['median_ms']:.1f} ms over {row['batches']} batches"
    )
    if "alerts_per_s" in row:
        line += f"; {row['alerts_per_s']:.0f} alerts/s"
    return line


def _ms(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _three(stats: dict, digits: int = 0) -> str:
    return (
        f"{_ms(stats['median_ms'], digits)} | {_ms(stats['p90_ms'], digits)} | {_ms(stats['max_ms'], digits)}"
    )


def table(result: dict) -> str:
    speech = result["speech"]
    lines = [
        "Speech synthesis (`SpeechSynthesizer.synthesize`, wall time of the call; each sentence a "
        "distinct alert sentence, so a cache miss unless said):",
        "",
        "| engine, case | language | calls | synthesis median (ms) | p90 (ms) | max (ms) "
        "| audio median (s) | real-time factor (median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for language, row in speech["espeak"].items():
        stats = row["synthesis"]
        lines.append(
            f"| espeak-ng, not cached | {language} | {stats['n']} | {_three(stats, 1)} "
            f"| {row['audio_s_median']:.2f} | {row['real_time_factor_median']:.4f} |"
        )
    hit = speech["cache_hit"]
    lines.append(f"| cache hit (same sentence again) | vi + en | {hit['n']} | {_three(hit, 2)} | - | - |")
    settings = speech["gtts_settings"]
    for network, what in (
        ("here", "this machine's network"),
        ("silent", "a network that never answers (local proxy)"),
    ):
        g = speech["gtts"][network]
        lines.append(
            f"| gTTS then espeak-ng (defaults), {what}: first alert | vi | {g['first']['n']} "
            f"| {_three(g['first'], 1)} | - | - |"
        )
        lines.append(
            f"| ... next alert, gTTS cooling down ({settings['cooldown_s']:.0f} s) | vi | {g['next']['n']} "
            f"| {_three(g['next'], 1)} | - | - |"
        )
    lines += [
        "",
        "gTTS on this machine (timeout {timeout_s:g} s, {retries} retry, cool-down {cooldown_s:g} s): "
        "here, {here}; with a network that never answers, {silent}.".format(
            **settings,
            here=_gtts_sentence(speech["gtts"]["here"]),
            silent=_gtts_sentence(speech["gtts"]["silent"]),
        ),
        "",
        "Hit to alert through the alerter service (ms from the hit acknowledged by the broker; "
        "sent = the alert record's Kafka CreateTime, received = on the broker, read by a follower "
        "polling with fetch_max_wait_ms 10):",
        "",
        "| case | hits | pace | spoken ahead | hit acked -> alert sent p50 | p90 | max "
        "| -> alert received p50 | p90 | max | handling per hit p50 (ms) | speech per alert p50 (ms) "
        "| checkpoint per batch p50 | p90 (ms) | batches | last policy snapshot (kB) "
        "| idle cores: alerter + harness / broker |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in result["cases"]:
        pace = "burst" if row["pace_s"] is None else f"{1000 * row['pace_s']:.0f} ms"
        lines.append(
            f"| {CASE_TEXT[row['case']]} | {row['hits']} | {pace} | {row['speak_cached']}/{row['hits']} "
            f"| {_three(row['to_alert_sent'])} | {_three(row['to_alert_received'])} "
            f"| {_ms(row['handle']['median_ms'], 2)} | {_ms(row['speak']['median_ms'], 2)} "
            f"| {_ms(row['checkpoint']['median_ms'], 1)} | {_ms(row['checkpoint']['p90_ms'], 1)} "
            f"| {row['batches']} | {row['snapshot_bytes'] / 1000:,.1f} "
            f"| {row['idle_alerter_and_harness_cores']:.3f} / {row['idle_broker_cores']:.3f} |"
        )
    bursts = [row for row in result["cases"] if "alerts_per_s" in row]
    if bursts:
        lines.append("")
        for row in bursts:
            each = ", ".join(f"{1000 * b['burst_s']:.0f}" for b in row["bursts"])
            lines.append(
                f"- {CASE_TEXT[row['case']].capitalize()} ({len(row['bursts'])} bursts of {row['burst']} "
                f"hits, {row['batches']} batches in all; medians over the bursts): hits sent in "
                f"{1000 * row['hits_sent_s']:.0f} ms; first hit sent -> last alert sent "
                f"{1000 * row['burst_s']:.0f} ms (each burst: {each} ms); the alerts went out within "
                f"{1000 * row['raising_s']:.0f} ms of each other, {row['alerts_per_s']:,.0f} alerts/s "
                f"once the alerter had the hits."
            )
    for row in result["cases"]:
        if row["case"].startswith("warm-20k"):
            lines.append(
                f"- {CASE_TEXT[row['case']].capitalize()}: {row['remembered_hits']:,} hit ids remembered, "
                f'each a record of its own on "alert-state"; the policy record (the rest) is '
                f"{row['snapshot_bytes'] / 1000:,.1f} kB, queued in "
                f"{_ms(row['snapshot_save']['median_ms'], 1)} ms (median); {row['snapshot_save']['n']} "
                f"checkpoints in {row['batches']} batches of {row['hits']} hits."
            )
    return "\n".join(lines)


def _gtts_sentence(g: dict) -> str:
    if g["gtts_ok"]:
        return "gTTS answered (online)"
    failed = g["gtts_failed_after"]["median_ms"]
    cause = g["failure"] or "unknown"
    reason = cause.split("the last: ", 1)[-1]
    short = reason
    for marker in (
        "NameResolutionError",
        "no answer within",
        "ConnectionError",
        "ConnectTimeout",
        "ProxyError",
    ):
        if marker in reason:
            short = marker if marker != "no answer within" else reason[:40]
            break
    return (
        f"gTTS gave up after {_ms(failed, 1)} ms (both attempts; {short[:80]}), espeak-ng spoke, and gTTS "
        f"was tried {max(g['gtts_tried_per_synthesizer'])} time(s) per synthesizer in all"
    )


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", choices=("speech", "service"), required=True)
    parser.add_argument("--sentences", type=int, default=25, help="speech: timed sentences per language")
    parser.add_argument("--gtts-next", type=int, default=5, help="speech: alerts after gTTS's first failure")
    parser.add_argument("--seed", type=int, default=0, help="speech: which sentences")
    parser.add_argument("--case", choices=CASES, default="cold")
    parser.add_argument("--hits", type=int, default=40, help="service: hits in a paced case")
    parser.add_argument("--pace-s", type=float, default=0.2, help="service: seconds between hits")
    parser.add_argument("--burst", type=int, default=100, help="service: hits in a burst")
    parser.add_argument("--bursts", type=int, default=3, help="service: bursts in a burst case")
    parser.add_argument("--idle-s", type=float, default=3.0, help="service: CPU measured without hits")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.role == "speech":
        print(json.dumps(measure_speech(args.sentences, args.gtts_next, args.seed)))
    else:
        print(
            json.dumps(
                measure_service(args.case, args.hits, args.pace_s, args.burst, args.bursts, args.idle_s)
            )
        )


if __name__ == "__main__":
    main()
