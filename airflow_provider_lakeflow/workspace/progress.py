"""A running update's per-table progress, read from its event log while a wait polls it."""

from __future__ import annotations

import datetime
import time
from typing import Any

from airflow_provider_lakeflow.workspace import operations


def epoch_ms(timestamp: str) -> int | None:
    """An event's ISO timestamp in epoch milliseconds (None when it is not one)."""
    try:
        moment = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return int(moment.timestamp() * 1000)


class TableProgress:
    """Rows landed so far per destination table, logged once per table per change."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.rows: dict[str, Any] = {}
        self.since_ms: int | None = None
        self._last_read = float("-inf")

    def due(self, interval: float | None) -> bool:
        if interval is None or time.monotonic() - self._last_read < interval:
            return False
        self._last_read = time.monotonic()
        return True

    def report(self, events: list[dict]) -> None:
        for event in events:
            stamp = epoch_ms(event.get("timestamp") or "")
            if stamp is not None and (self.since_ms is None or stamp > self.since_ms):
                self.since_ms = stamp
        for table, metrics in operations.table_metrics(events).items():
            rows = metrics.get("num_output_rows")
            if rows is None or self.rows.get(table) == rows:
                continue
            self.rows[table] = rows
            self.log.info("Table %s: %s rows so far (%s)", table, rows, metrics.get("status", "RUNNING"))
