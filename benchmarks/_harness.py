"""Shared helpers for the benchmarks: the emulator in a separate process, a keep-alive setup client, machine facts.

Stdlib only (plus the emulator's stdlib control client), so that a benchmark's parent process stays light and the
variants it measures run in fresh subprocesses.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

TOKEN = "emulator-token"
INGESTION_OBJECT = {
    "table": {
        "source_schema": "dbo",
        "source_table": "orders",
        "destination_catalog": "main",
        "destination_schema": "bronze",
    }
}


@contextlib.contextmanager
def emulator(
    update_seconds: float, log_path: str | None = None, extra_args: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m airflow_provider_lakeflow.testing.emulator`` in its own process; yields (url, process)."""
    stderr: Any = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_lakeflow.testing.emulator",
            "--port",
            "0",
            "--update-seconds",
            str(update_seconds),
            *extra_args,
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        url = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if "listening on" in line:
                url = line.strip().split()[-1]
            if line.strip() == "READY":
                break
        if url is None:
            raise RuntimeError(f"the emulator did not start (exit code {proc.poll()})")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            stderr.close()


class ApiClient:
    """One keep-alive HTTP/1.1 connection for setting up workspaces (not measured)."""

    def __init__(self, url: str, token: str = TOKEN) -> None:
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        self._conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=self._headers)
        response = self._conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} -> {response.status} {data[:300]!r}")
        return json.loads(data) if data else {}

    def create_pipelines(self, n: int, prefix: str = "bench") -> list[str]:
        return [
            self.call(
                "POST",
                "/api/2.0/pipelines",
                {
                    "name": f"{prefix}-{i}",
                    "ingestion_definition": {"connection_name": "bench_conn", "objects": [INGESTION_OBJECT]},
                },
            )["pipeline_id"]
            for i in range(n)
        ]

    def start_update(self, pipeline_id: str) -> str:
        return self.call("POST", f"/api/2.0/pipelines/{pipeline_id}/updates", {})["update_id"]

    def close(self) -> None:
        self._conn.close()


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError, StopIteration), open("/proc/meminfo") as f:
        kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{os.cpu_count()} CPUs ({cpu}){mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {datetime.date.today().isoformat()}"
    )


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in (
        "apache-airflow",
        "airflow-provider-lakeflow",
        "apache-airflow-providers-databricks",
        "databricks-sdk",
        "aiohttp",
    ):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def wait_for_file(path: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker not ready after {timeout}s")
        time.sleep(0.05)


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
