"""One SQL statement as the emulator keeps it (request, state, result rows), and the scripted rule it matched."""

from __future__ import annotations

import concurrent.futures
import re
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StatementRule:
    """Scripted behaviour for statements whose text matches ``pattern`` (a regex, searched)."""

    pattern: re.Pattern[str]
    delay: float = 0.0
    error_message: str | None = None
    error_code: str = "BAD_REQUEST"
    sql_state: str | None = None
    remaining: int | None = None


@dataclass
class Statement:
    statement_id: str
    text: str
    warehouse_id: str
    catalog: str
    schema: str
    parameters: list[dict[str, Any]]
    row_limit: int | None
    rule: StatementRule | None
    state: str = "PENDING"
    error: dict[str, Any] | None = None
    sql_state: str | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    truncated: bool = False
    cancel_event: threading.Event = field(default_factory=threading.Event)
    future: concurrent.futures.Future[None] | None = None
    cursor: Any = None

    def summary(self) -> dict[str, Any]:
        return {
            "statement_id": self.statement_id,
            "statement": self.text,
            "warehouse_id": self.warehouse_id,
            "parameters": self.parameters,
            "state": self.state,
            "error": self.error,
            "row_count": len(self.rows),
        }
