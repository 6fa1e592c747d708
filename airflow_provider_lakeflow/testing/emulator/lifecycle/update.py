"""The update state machine, computed lazily from the clock.

An update stores only its start time and the phase boundaries of its script; its state is a ``bisect`` over those
boundaries at read time, so thousands of updates cost nothing while nobody looks, and a poll is O(log phases).
Events are derived from the same timeline (a deterministic plan) and materialized only when the event log is read
(``events.py`` renders them).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lakeflow.testing.emulator.lifecycle.conditions import Fired
from airflow_provider_lakeflow.testing.emulator.lifecycle.script import PHASES, TERMINAL, Flow, Script, lookup


def format_timestamp(epoch_seconds: float) -> str:
    """RFC 3339 with milliseconds and ``Z``, as the event log writes it."""
    ms = int(epoch_seconds * 1000)
    d = dt.datetime.fromtimestamp(ms // 1000, tz=dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


@dataclass
class Update:
    """One pipeline update. ``created`` is epoch seconds; everything else is offsets from it."""

    update_id: str
    pipeline_id: str
    ordinal: int
    created: float
    cause: str
    config: dict[str, Any]
    request: dict[str, Any]
    flows: list[Flow]
    script: Script
    continuous: bool = False
    fail_message: str | None = None  # a failure decided at start (e.g. gateway not running)
    connection_name: str | None = None
    conditions: tuple[Fired, ...] = ()  # scripted error conditions that fail this update
    stop_offset: float | None = None
    stopping_seconds: float = 0.0
    emitted: int = 0
    starts: list[float] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    end: float = math.inf
    outcome: str = "COMPLETED"
    _plan: list[tuple[float, str, Any]] | None = None

    def __post_init__(self) -> None:
        phases = list(PHASES)
        if self.fail_message or any(c.flow is None for c in self.conditions):
            phases = phases[:3]  # fails while initializing: the gateway/connection check
        elif self.lands_nothing:
            phases = phases[:4]
        t = 0.0
        for p in phases:
            self.starts.append(t)
            self.states.append(p)
            t += max(0.0, self.script.phase_seconds.get(p, 0.0))
        self.continuous = self.continuous and not self.fail_message and not self.lands_nothing
        self.end = math.inf if self.continuous else t
        self.outcome = "FAILED" if self.fail_message or self.conditions else self.script.outcome
        self.stopping_seconds = max(0.0, self.script.phase_seconds.get("STOPPING", 0.0))

    def state(self, now: float) -> str:
        """The hot path of every poll: two comparisons and a bisect."""
        elapsed = now - self.created
        if self.stop_offset is not None and elapsed >= self.stop_offset:
            return "CANCELED" if elapsed >= self.stop_offset + self.stopping_seconds else "STOPPING"
        if elapsed >= self.end:
            return self.outcome
        return self.states[max(0, bisect.bisect_right(self.starts, elapsed) - 1)]

    def is_active(self, now: float) -> bool:
        return self.state(now) not in TERMINAL

    def finish_time(self) -> float:
        """Epoch seconds at which the update is terminal (inf while it runs continuously)."""
        if self.stop_offset is not None:
            return self.created + self.stop_offset + self.stopping_seconds
        return self.created + self.end

    def stop(self, now: float, immediately: bool = False) -> bool:
        if not self.is_active(now):
            return False
        self._plan = None
        self.stop_offset = max(0.0, now - self.created)
        if immediately:
            self.stopping_seconds = 0.0
        return True

    # ---- wire shapes -------------------------------------------------------------------------------------------
    @property
    def lands_nothing(self) -> bool:
        """A validate-only or test-only update: it checks the pipeline and updates no dataset."""
        return bool(self.request.get("validate_only") or self.request.get("test_only"))

    def info(self, now: float, *, detail: bool) -> dict[str, Any]:
        """UpdateInfo; ``detail`` adds what only GetUpdate returns (config, mode)."""
        out: dict[str, Any] = {
            "pipeline_id": self.pipeline_id,
            "update_id": self.update_id,
            "cause": self.cause,
            "creation_time": int(self.created * 1000),
            "state": self.state(now),
            **self.request,
        }
        if detail:
            out["config"] = self.config
            out["mode"] = "CONTINUOUS" if self.continuous else "DEFAULT"
        return out

    def state_info(self, now: float) -> dict[str, Any]:
        return {"update_id": self.update_id, "state": self.state(now), "creation_time": format_timestamp(self.created)}

    # ---- the event plan ----------------------------------------------------------------------------------------
    def plan(self) -> list[tuple[float, str, Any]]:
        """(offset, kind, data) in emission order; a stop truncates it and appends STOPPING/CANCELED."""
        if self._plan is not None:
            return self._plan
        p: list[tuple[float, str, Any]] = [(0.0, "create_update", None)]
        for state, start in zip(self.states, self.starts, strict=True):
            p.append((start, "update_progress", state))
            if state == "SETTING_UP_TABLES" and not self.lands_nothing:
                p.extend((start, "flow_definition", (f,)) for f in self.flows)
                p.extend((start, "flow_progress", (f, "QUEUED")) for f in self.flows)
            elif state == "RUNNING":
                p.extend((start, "flow_progress", (f, "RUNNING")) for f in self.flows)
                lands = self._completions(start)
                if not math.isinf(self.end):
                    # Batches land while the flows run, as on Databricks: partial row counts a third and two
                    # thirds of the way through each flow's run.
                    for fraction in (1 / 3, 2 / 3):
                        p.extend(
                            (start + (lands[f.name] - start) * fraction, "flow_progress", (f, "RUNNING", fraction))
                            for f in self.flows
                        )
        if not math.isinf(self.end):
            if "RUNNING" in self.states:
                lands = self._completions(self.starts[self.states.index("RUNNING")])
                failing = {c.flow.name for c in self.conditions if c.flow is not None}
                if not failing and self.outcome == "FAILED":
                    # A scripted failure fails the first flow that runs to the end (early tables have landed).
                    first = next((f.name for f in self.flows if lands[f.name] >= self.end), None)
                    failing = {first} if first else set()
                for f in self.flows:
                    failed = f.name in failing
                    at = self.end if failed else lands[f.name]
                    p.append((at, "flow_progress", (f, "FAILED" if failed else "COMPLETED")))
            p.append((self.end, "update_progress", self.outcome))
            p.sort(key=lambda e: e[0])  # staggered tables: emission order is time order (the sort is stable)
        if self.stop_offset is not None:
            cut = self.stop_offset
            p = [e for e in p if e[0] <= cut]
            last: dict[str, str] = {}
            for _, kind, data in p:
                if kind == "flow_progress":
                    last[data[0].name] = data[1]
            p.append((cut, "update_progress", "STOPPING"))
            done = cut + self.stopping_seconds
            p.extend(
                (done, "flow_progress", (f, "STOPPED")) for f in self.flows if last.get(f.name) in ("QUEUED", "RUNNING")
            )
            p.append((done, "update_progress", "CANCELED"))
        self._plan = p
        return p

    def _completions(self, running_start: float) -> dict[str, float]:
        """When each flow COMPLETES: ``table_seconds`` after RUNNING starts (never after the update's end)."""
        out = {}
        for f in self.flows:
            seconds = lookup(self.script.table_seconds, f.name)
            out[f.name] = self.end if seconds is None else min(self.end, running_start + float(seconds))
        return out
