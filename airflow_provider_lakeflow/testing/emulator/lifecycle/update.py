"""The update state machine and its event log, computed lazily from the clock.

An update stores only its start time and the phase boundaries of its script; its state is a ``bisect`` over those
boundaries at read time, so thousands of updates cost nothing while nobody looks, and a poll is O(log phases).
Events are derived from the same timeline (a deterministic plan) and materialized only when the event log is read.
"""

from __future__ import annotations

import bisect
import math
import uuid
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_lakeflow.testing.emulator.api.listing import format_timestamp
from airflow_provider_lakeflow.testing.emulator.api.spec_rules import report_table_name

#: The columns of every table the emulator lands (the SQL warehouse creates them with these types), announced in each
#: flow's ``flow_definition`` event as Databricks does.
LANDED_SCHEMA = (
    ("id", "LONG"),
    ("name", "STRING"),
    ("amount", "DECIMAL(12,2)"),
    ("is_active", "BOOLEAN"),
    ("created_date", "DATE"),
    ("updated_at", "TIMESTAMP"),
    ("_ingested_at", "TIMESTAMP"),
)
PHASES = ("QUEUED", "WAITING_FOR_RESOURCES", "INITIALIZING", "SETTING_UP_TABLES", "RUNNING")
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED"})
OUTCOMES = ("COMPLETED", "FAILED")
# Share of the default script's total per phase; STOPPING is the pause between a stop request and CANCELED.
DEFAULT_FRACTIONS = {
    "QUEUED": 0.05,
    "WAITING_FOR_RESOURCES": 0.15,
    "INITIALIZING": 0.2,
    "SETTING_UP_TABLES": 0.2,
    "RUNNING": 0.4,
    "STOPPING": 0.05,
}
DEFAULT_ERROR = "Scripted failure: the emulator's script for this pipeline ends in FAILED."
SCHEMA_TABLES_PER_SPEC = 3
_EVENT_NS = uuid.UUID("6c1f1c9e-2a8e-4d3e-9a59-6b1b7e0c5a10")
EXCEPTION_CLASS = "com.databricks.pipelines.common.errors.DLTException"
_ORIGIN_SOURCE = {
    "source_catalog": "ingestion_source_catalog_name",
    "source_schema": "ingestion_source_schema_name",
    "source_table": "ingestion_source_table_name",
}


@dataclass(frozen=True)
class Script:
    """How updates of a pipeline play out. ``rows``: int for every table, or {table: n} (full or short names)."""

    phase_seconds: dict[str, float]
    outcome: str = "COMPLETED"
    error_message: str | None = None
    rows: int | dict[str, int] | None = None
    tables: tuple[str, ...] | None = None
    data_quality: dict[str, Any] | None = None
    #: {table: seconds after RUNNING starts at which its flow COMPLETES} (full or short names); others at the end.
    table_seconds: dict[str, float] | None = None

    @classmethod
    def default(cls, update_seconds: float) -> Script:
        return cls({k: update_seconds * f for k, f in DEFAULT_FRACTIONS.items()})

    def with_overrides(
        self,
        *,
        phase_seconds: float | dict[str, float] | None = None,
        outcome: str | None = None,
        error_message: str | None = None,
        rows: int | dict[str, int] | None = None,
        tables: list[str] | tuple[str, ...] | None = None,
        data_quality: dict[str, Any] | None = None,
        table_seconds: dict[str, float] | None = None,
    ) -> Script:
        phases = dict(self.phase_seconds)
        if isinstance(phase_seconds, (int, float)):
            phases = dict.fromkeys(phases, float(phase_seconds))
        elif phase_seconds:
            unknown = set(phase_seconds) - set(DEFAULT_FRACTIONS)
            if unknown:
                raise ValueError(f"phase_seconds: unknown phase(s) {sorted(unknown)}; known: {list(DEFAULT_FRACTIONS)}")
            phases.update({k: float(v) for k, v in phase_seconds.items()})
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        return replace(
            self,
            phase_seconds=phases,
            outcome=outcome or self.outcome,
            error_message=error_message if error_message is not None else self.error_message,
            rows=rows if rows is not None else self.rows,
            tables=tuple(tables) if tables is not None else self.tables,
            data_quality=data_quality if data_quality is not None else self.data_quality,
            table_seconds=staggered(table_seconds) if table_seconds is not None else self.table_seconds,
        )


@dataclass(frozen=True)
class Flow:
    """One destination table an update writes, with where it comes from."""

    name: str
    source_catalog: str | None = None
    source_schema: str | None = None
    source_table: str | None = None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def pipeline_flows(spec: dict[str, Any], script: Script) -> list[Flow]:
    """The destination tables of a pipeline.

    table spec -> ``dest_catalog.dest_schema.(destination_table or source_table)``; report spec -> destination_table or
    the URL's last path segment; schema spec -> the script's ``tables`` (short names are put in the spec's destination
    schema) or by default ``<source_schema>_table_1..3``. A pipeline without ingestion_definition has the script's
    ``tables`` (fully qualified names as given) or none.
    """
    d = spec.get("ingestion_definition")
    if not isinstance(d, dict):
        return [Flow(t) for t in script.tables or ()]
    flows: list[Flow] = []
    for obj in d.get("objects") or []:
        if t := obj.get("table"):
            name = t.get("destination_table") or t.get("source_table")
            flows.append(
                Flow(
                    f"{t['destination_catalog']}.{t['destination_schema']}.{name}",
                    t.get("source_catalog"),
                    t.get("source_schema"),
                    t.get("source_table"),
                )
            )
        elif r := obj.get("report"):
            name = r.get("destination_table") or report_table_name(r.get("source_url") or "")
            flows.append(Flow(f"{r['destination_catalog']}.{r['destination_schema']}.{name}"))
        elif s := obj.get("schema"):
            prefix = f"{s['destination_catalog']}.{s['destination_schema']}"
            base = _slug(s.get("source_schema") or "schema") or "schema"
            names = script.tables or tuple(f"{base}_table_{i}" for i in range(1, SCHEMA_TABLES_PER_SPEC + 1))
            for n in names:
                full = n if n.count(".") == 2 else f"{prefix}.{n}"
                flows.append(Flow(full, s.get("source_catalog"), s.get("source_schema"), full.rsplit(".", 1)[-1]))
    return flows


def match_flow(flows: list[Flow], name: str) -> Flow | None:
    """A selection names a table fully (``c.s.t``) or by its unique short name."""
    low = name.lower()
    for f in flows:
        if f.name.lower() == low:
            return f
    short = [f for f in flows if f.name.rsplit(".", 1)[-1].lower() == low]
    return short[0] if len(short) == 1 else None


def staggered(table_seconds: dict[str, float]) -> dict[str, float]:
    if not isinstance(table_seconds, dict):
        raise ValueError(f"table_seconds must be {{table: seconds}}, got {table_seconds!r}")
    out = {}
    for table, seconds in table_seconds.items():
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"table_seconds: {table!r} needs a number of seconds >= 0, got {seconds!r}")
        out[str(table)] = float(seconds)
    return out


def lookup(mapping: dict[str, Any] | None, table: str) -> Any:
    """A per-table script value by full or short name."""
    for key in (table, table.rsplit(".", 1)[-1]):
        if mapping and key in mapping:
            return mapping[key]
    return None


def default_rows(table: str) -> int:
    """Deterministic row count per table: ``1000 + crc32(name) % 9000``."""
    return 1000 + zlib.crc32(table.encode()) % 9000


def rows_for(script: Script, table: str) -> int:
    if isinstance(script.rows, int):
        return script.rows
    if isinstance(script.rows, dict):
        for key in (table, table.rsplit(".", 1)[-1]):
            if key in script.rows:
                return int(script.rows[key])
    return default_rows(table)


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
    conditions: tuple[Any, ...] = ()  # scripted error conditions that fail this update (conditions.Fired)
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

    def materialize(self, now: float, pipeline_name: str, next_seq: int) -> list[dict[str, Any]]:
        """The events whose time has come since the last call, numbered from ``next_seq``."""
        elapsed = now - self.created
        plan = self.plan()
        out: list[dict[str, Any]] = []
        while self.emitted < len(plan) and plan[self.emitted][0] <= elapsed:
            offset, kind, data = plan[self.emitted]
            out.append(self._event(self.emitted, offset, kind, data, pipeline_name, next_seq + len(out)))
            self.emitted += 1
        return out

    def _error(self, flow: Flow | None = None) -> dict[str, Any]:
        """The error of a failed flow (``flow``) or of the update: a scripted condition's message when there is one."""
        own = [c for c in self.conditions if flow is not None and c.flow == flow]
        update_level = [c for c in self.conditions if c.flow is None] or list(self.conditions)
        scripted = own or ([] if flow is not None else update_level)
        message = scripted[0].message if scripted else self.fail_message or self.script.error_message or DEFAULT_ERROR
        return {"fatal": True, "exceptions": [{"class_name": EXCEPTION_CLASS, "message": message}]}

    def _event(self, index: int, offset: float, kind: str, data: Any, pipeline_name: str, seq: int) -> dict[str, Any]:
        ts = self.created + offset
        short = self.update_id[:6]
        origin: dict[str, Any] = {
            "pipeline_id": self.pipeline_id,
            "pipeline_name": pipeline_name,
            "update_id": self.update_id,
        }
        ev: dict[str, Any] = {
            "id": str(uuid.uuid5(_EVENT_NS, f"{self.update_id}/{index}")),
            "sequence": {"control_plane_seq_no": seq},
            "timestamp": format_timestamp(ts),
            "level": "INFO",
            "maturity_level": "STABLE",
            "event_type": kind,
            "origin": origin,
            "_ms": int(ts * 1000),
        }
        if kind == "create_update":
            ev["message"] = f"Update {short} started by {self.cause}."
            ev["details"] = {
                "create_update": {
                    "cause": self.cause,
                    "config": self.config,
                    "full_refresh": bool(self.request.get("full_refresh")),
                    "full_refresh_selection": self.request.get("full_refresh_selection") or [],
                    "refresh_selection": self.request.get("refresh_selection") or [],
                    "validate_only": bool(self.request.get("validate_only")),
                    "explore_only": False,
                }
            }
        elif kind == "update_progress":
            ev["message"] = f"Update {short} is {data}."
            ev["details"] = {"update_progress": {"state": data}}
            if data == "FAILED":
                ev["level"] = "ERROR"
                ev["error"] = self._error()
        elif kind == "flow_definition":
            flow = data[0]
            origin.update(
                flow_id=str(uuid.uuid5(_EVENT_NS, f"{self.pipeline_id}/{flow.name}")),
                flow_name=flow.name,
                dataset_name=flow.name,
            )
            ev["message"] = f"Flow '{flow.name}' is defined as an ingestion flow."
            ev["details"] = {
                "flow_definition": {
                    "output_dataset": flow.name,
                    "flow_type": "INGESTION",
                    "schema": [{"name": name, "data_type": kind_} for name, kind_ in LANDED_SCHEMA],
                }
            }
        else:
            flow, status = data[0], data[1]
            fraction = data[2] if len(data) > 2 else None
            origin.update(
                flow_id=str(uuid.uuid5(_EVENT_NS, f"{self.pipeline_id}/{flow.name}")),
                flow_name=flow.name,
                dataset_name=flow.name,
            )
            if self.connection_name:
                origin["ingestion_source_connection_name"] = self.connection_name
            for attr, key in _ORIGIN_SOURCE.items():
                value = getattr(flow, attr)
                if value:
                    origin[key] = value
            ev["sequence"]["data_plane_id"] = {"instance": "execution", "seq_no": seq}
            verb = "has" if status in TERMINAL or status in ("STOPPED",) else "is"
            ev["message"] = f"Flow '{flow.name}' {verb} {status}."
            progress: dict[str, Any] = {"status": status}
            if status == "COMPLETED" or fraction is not None:
                n = rows_for(self.script, flow.name)
                if fraction is not None:
                    n = int(n * fraction)
                progress["metrics"] = {"num_output_rows": n, "num_upserted_rows": n, "num_deleted_rows": 0}
                dq = (self.script.data_quality or {}).get(flow.name) or (self.script.data_quality or {}).get(
                    flow.name.rsplit(".", 1)[-1]
                )
                if dq is not None:
                    progress["data_quality"] = dq
            elif status == "FAILED":
                ev["level"] = "ERROR"
                ev["error"] = {**self._error(flow), "fatal": False}
            ev["details"] = {"flow_progress": progress}
        return ev
