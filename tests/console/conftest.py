"""Fixtures of the console tests: a real pipeline (`vigil up` on real RTSP footage) with the API
on a free port, and a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from console_support import (
    ADMIN,
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    CLIP_SECONDS,
    EVENTS,
    OPERATOR,
    TOKENS,
    VIGIL,
    Pipeline,
)

from vigil.fixtures.media import MediaUnavailableError, event_clip
from vigil.services.broker.local import free_loopback_port


@pytest.fixture(scope="module")
def pipeline(new_kafka_settings, tmp_path_factory):
    """`vigil up` (ingest over real RTSP, detector, alerter with its API and the console) on the
    hall footage with a cat and a motorcycle pasted in; one standing query ("a cat") from the
    file. Yields once the API answers."""
    from vigil.fixtures.rtsp import RtspCamera

    try:
        clip = event_clip(EVENTS, seconds=CLIP_SECONDS)
    except MediaUnavailableError as error:
        pytest.skip(str(error))
    home = tmp_path_factory.mktemp("console-pipeline")
    kafka = new_kafka_settings()
    run_id = uuid.uuid4().hex[:8]
    api_port = free_loopback_port()
    camera = RtspCamera(media=clip, port=free_loopback_port(), mount="/hall", width=768, height=576, fps=10)
    config = {
        "metrics_port": 0,
        "defaults": {"fps": 2, "resize": {"max_width": 768, "max_height": 576}},
        "cameras": [{"id": "hall", "url": camera.url, "open_timeout_s": 20}],
        # Shared cores: the detector may fall behind; nothing is shed, it catches up.
        "detector": {
            "metrics_port": 0,
            "max_lag_s": 3600,
            "latency_budget_s": 3600,
            "group_id": f"c-{run_id}",
        },
        "alerter": {
            "metrics_port": 0,
            "group_id": f"console-alerter-{run_id}",
            "cameras": {"hall": {"en": "main hall", "vi": "sảnh chính"}},
            "speech": {"cache_dir": str(home / "speech"), "engines": ["espeak-ng"]},
        },
        "api": {
            "port": api_port,
            "metrics_port": 0,
            "alerter_group_id": f"console-alerter-{run_id}",
            "tokens": [
                {"name": OPERATOR, "role": "operator", "token": TOKENS[OPERATOR]},
                {"name": ADMIN, "role": "admin", "token": TOKENS[ADMIN]},
            ],
            "signing_key_file": str(home / "link-key"),
        },
        "queries": [{"id": "cat", "text": "a cat"}],
    }
    path = home / "vigil.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    environment = {
        **os.environ,
        "VIGIL_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "VIGIL_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "VIGIL_KAFKA_EVENT_PARTITIONS": str(kafka.event_partitions),
        "VIGIL_KAFKA_FRAME_PARTITIONS": str(kafka.frame_partitions),
        "VIGIL_MILVUS_URI": str(home / "milvus"),
        "VIGIL_MILVUS_THUMBNAILS_DIR": str(home / "thumbnails"),
        "VIGIL_BROKER_DIR": str(home / "broker"),
        "VIGIL_LOG_LEVEL": "WARNING",
    }
    log = home / "vigil-up.log"
    camera.start()
    with log.open("w") as output:
        process = subprocess.Popen(
            [VIGIL, "up", "--config", str(path)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=home,
        )
    running = Pipeline(f"http://127.0.0.1:{api_port}", process, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"vigil up exited early:\n{log.read_text()}"
            try:
                if requests.get(f"{running.base_url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"the API did not answer in 90 s:\n{log.read_text()}"
            time.sleep(0.3)
        yield running
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        camera.stop()
        print(f"vigil up's output: {log}")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run `make setup` (the dev extra pins it)")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make setup` (it apt-installs chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory, request):
    """Saves a page's screenshot under the test's temporary folder and as an artifact under
    var/test-artifacts/console/ (git-ignored, emptied per run); the paths are printed at the end
    of the module's tests, captured output or not."""
    folder = tmp_path_factory.mktemp("console-screenshots")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def shoot(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        artifact = ARTIFACTS / path.name
        shutil.copyfile(path, artifact)
        saved.append(artifact)
        return artifact

    yield shoot
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print()
        for artifact in saved:
            print(f"console screenshot: {artifact}")
