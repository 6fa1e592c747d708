"""How updates of a pipeline play out (``Script``) and which tables they write (``Flow``, from the pipeline's spec).

A script is what a test sets with ``script_pipeline`` / ``set_default_script``: phase lengths, outcome, rows per
table, when each table lands. The destination tables follow the spec as Databricks names them (see ``pipeline_flows``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from typing import Any, TypedDict

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
SCHEMA_TABLES_PER_SPEC = 3


class ScriptChanges(TypedDict, total=False):
    """What ``script_pipeline`` / ``set_default_script`` change in a script (their keyword arguments, declared once);
    a key left out keeps the script's value, except ``outcome``, which those operations reset to ``COMPLETED``."""

    #: one number for every phase, or {phase: seconds} for some of them (``DEFAULT_FRACTIONS`` names them)
    phase_seconds: float | dict[str, float] | None
    #: ``COMPLETED`` or ``FAILED``
    outcome: str | None
    #: the text of the failure's ERROR events
    error_message: str | None
    #: an int for every table, or {table: n} (full or short names)
    rows: int | dict[str, int] | None
    #: the destination tables of ``schema`` objects (or of a pipeline without ingestion_definition)
    tables: list[str] | tuple[str, ...] | None
    #: {table: {...}} reported in ``flow_progress``
    data_quality: dict[str, Any] | None
    #: {table: seconds after RUNNING starts at which its flow COMPLETES} (full or short names)
    table_seconds: dict[str, float] | None


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

    def with_changes(self, changes: ScriptChanges) -> Script:
        """This script with ``changes`` applied; a TypeError for a key ``ScriptChanges`` does not have."""
        unexpected = set(changes) - set(ScriptChanges.__annotations__)
        if unexpected:
            known = ", ".join(ScriptChanges.__annotations__)
            raise TypeError(f"unexpected keyword argument(s) {', '.join(sorted(unexpected))}; known: {known}")
        phase_seconds, outcome = changes.get("phase_seconds"), changes.get("outcome")
        error_message, rows = changes.get("error_message"), changes.get("rows")
        tables, data_quality = changes.get("tables"), changes.get("data_quality")
        table_seconds = changes.get("table_seconds")
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


def report_table_name(source_url: str) -> str:
    """A report's default destination: the last path segment of its URL, lowercased, non-alphanumerics as ``_``."""
    path = source_url.split("?", 1)[0].rstrip("/")
    last = path.rsplit("/", 1)[-1] if path else ""
    name = "".join(c if c.isalnum() else "_" for c in last.lower()).strip("_")
    return name or "report"


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
