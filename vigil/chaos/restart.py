"""`vigil up` started again on a chaos run's folder: is what an operator set still there?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from vigil.chaos.faults import answers
from vigil.chaos.model import ADMIN_TOKEN
from vigil.chaos.scenario import start_up, stop_up, wait_until


@dataclass
class Restarted:
    alerts: dict  # alert id -> its view from the API (status, acknowledged_by, ...)
    query_ids: set


def restart_keeps(home: Path, seconds: float = 90.0) -> Restarted:
    """`vigil up` again on the run's folder (its config, broker log, Milvus): once its API answers,
    every alert record and the standing queries as they are now. The camera is gone: ingest
    retries it meanwhile, which changes nothing here."""
    from vigil.services.broker.local import free_loopback_port
    from vigil.services.common.kafka import KafkaSettings, QueryTableReader

    config = home / "vigil.yaml"
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    ports = {
        "broker": free_loopback_port(),
        "detector": document["detector"]["metrics_port"],
        "alerter": document["alerter"]["metrics_port"],
        "api": document["api"]["port"],
    }
    up = start_up(home, config, ports)
    try:
        url = f"http://127.0.0.1:{ports['api']}"
        # Ready: the API has read the alert book back from "alert-state".
        wait_until(lambda: answers(f"{url}/readyz"), seconds, "the API", up)
        listed = requests.get(
            f"{url}/api/v1/alerts",
            params={"status": "all", "limit": 1000},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        listed.raise_for_status()
        alerts = {view["alert_id"]: view for view in listed.json()["alerts"]}
        settings = KafkaSettings(bootstrap=f"127.0.0.1:{ports['broker']}")
        with QueryTableReader(settings) as reader:
            query_ids = set(reader.load(timeout_s=30))
        return Restarted(alerts=alerts, query_ids=query_ids)
    finally:
        stop_up(up)
