"""One way to fuzz the running API from its own OpenAPI document: `schemathesis run` (the CLI,
the stable interface; the pytest plugin's `from_fixture` fails on pytest 9.2) on a config file
written per run. Bounded and reproducible: `max_examples` per operation and phase, the
deterministic mode, no example database, the stateful phase off. Every response must pass the
checks below; the test fails with schemathesis's report (each failure with a curl line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECKS = (
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "not_a_server_error",
)


def run_schemathesis(
    url: str,
    workdir: Path,
    *,
    token: str | None,
    max_examples: int,
    request_timeout_s: float = 10,
    selection: tuple[str, ...] = (),
    extra_config: str = "",
    timeout_s: float = 300,
) -> str:
    """Fuzz `url`/openapi.json (the operations `selection` picks, e.g. ("--include-tag", "users"))
    as the bearer of `token` (None: without credentials); returns the report of a passing run."""
    auth = f'\n[auth.openapi.bearerToken]\nbearer = "{token}"\n' if token else ""
    checks = "\n".join(f"{check}.enabled = true" for check in CHECKS)
    (workdir / "schemathesis.toml").write_text(
        f"""
workers = 1
request-timeout = {request_timeout_s}
color = false

[cache]
enabled = false

[generation]
mode = "all"
max-examples = {max_examples}
deterministic = true
database = "none"

[phases]
examples.enabled = true
coverage.enabled = true
fuzzing.enabled = true
stateful.enabled = false

[checks]
enabled = false
{checks}
{extra_config}{auth}"""
    )
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", "schemathesis.toml", "run"]
    run = subprocess.run(
        [*command, *selection, f"{url}/openapi.json"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert " passed" in report, report
    # The run's figures (operations, test cases generated and passed) for the test log.
    print("\n".join(_figures(report)))
    return report


def _figures(report: str) -> list[str]:
    """The report's "API Operations:" and "Test cases:" sections: each heading and its indented lines."""
    kept, inside = [], False
    for line in report.splitlines():
        if line.startswith(("API Operations", "Test cases")):
            inside = True
        elif not line.startswith(" "):
            inside = False
        if inside and line.strip():
            kept.append(line)
    return kept
