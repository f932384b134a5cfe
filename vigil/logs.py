"""Logging for the `vigil` command: one line per record on stderr.

Commands that are tools (zeroshot, models) print plain warnings. Services (ingest, broker,
and the ones to come) log JSON lines at INFO, with the `camera_id` / `query_id` / ... fields
their records carry in `extra`, so a log shipper can index them. python-json-logger
formats; `VIGIL_LOG_FORMAT` (json | text) and `VIGIL_LOG_LEVEL` override the defaults.
"""

from __future__ import annotations

import logging
import os
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "vigil: %(levelname)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(service: bool = False) -> None:
    """Install the stderr handler: JSON at INFO for services, text at WARNING for tools."""
    log_format = os.environ.get("VIGIL_LOG_FORMAT", "json" if service else "text")
    level = os.environ.get("VIGIL_LOG_LEVEL", "INFO" if service else "WARNING").upper()
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "name": "logger"})
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python logs every failed reconnect at ERROR, many a second while a broker is down;
    # Vigil's own producer and consumers report broker trouble once, with the address.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    # Milvus lite narrates every segment build and compaction at INFO (several a second).
    logging.getLogger("milvus_lite").setLevel(logging.WARNING)
