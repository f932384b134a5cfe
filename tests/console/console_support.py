"""What the console tests share besides fixtures: the browser's settings, the pipeline's
tokens and footage, and a handle on the running pipeline."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from vigil.paths import var_dir

VIGIL = str(Path(sys.executable).with_name("vigil"))
CHROMIUM = "/usr/bin/chromium"
# Debian's chromium, never a downloaded build (`playwright install` cannot run offline).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
# A cat, then a motorcycle, late enough into the stream that the console is signed in and
# following the live stream before the first is raised (the services start in ~10-20 s on 2 cores).
EVENTS = (("cat", 22.0, 27.0), ("motorcycle", 32.0, 37.0))
CLIP_SECONDS = 42
OPERATOR, ADMIN = "olga", "ada"
TOKENS = {OPERATOR: "console-operator-token-0123456789", ADMIN: "console-admin-token-0123456789"}
ARTIFACTS = var_dir() / "test-artifacts" / "console"


@dataclass
class Pipeline:
    base_url: str
    process: subprocess.Popen
    log: Path

    def get(self, path: str, token: str = TOKENS[OPERATOR], **params) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return requests.get(f"{self.base_url}{path}", headers=headers, params=params, timeout=10)
