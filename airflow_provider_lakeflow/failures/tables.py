"""Which destination table an error is about: the event's origin, else the source table its message names, mapped
to the destination through the pipeline's spec (``destination_table`` renames included). Pure functions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_IDENT = re.compile(r"[A-Za-z0-9_$`\"'.\-]+")


@dataclass(frozen=True)
class SpecTable:
    """A table the spec names: where it lands and, where known, where it comes from."""

    destination: str | None  # catalog.schema.table; None for a schema spec (tables found at run time)
    destination_prefix: str  # catalog.schema
    source_catalog: str | None = None
    source_schema: str | None = None
    source_table: str | None = None


def spec_tables(spec: Mapping[str, Any] | None) -> list[SpecTable]:
    definition = (spec or {}).get("ingestion_definition") or {}
    out: list[SpecTable] = []
    for obj in definition.get("objects") or []:
        for kind in ("table", "schema", "report"):
            item = obj.get(kind) if isinstance(obj, Mapping) else None
            if not isinstance(item, Mapping):
                continue
            prefix = f"{item.get('destination_catalog')}.{item.get('destination_schema')}"
            if kind == "table":
                name = item.get("destination_table") or item.get("source_table")
                out.append(
                    SpecTable(
                        f"{prefix}.{name}",
                        prefix,
                        item.get("source_catalog"),
                        item.get("source_schema"),
                        item.get("source_table"),
                    )
                )
            elif kind == "schema":
                out.append(SpecTable(None, prefix, item.get("source_catalog"), item.get("source_schema")))
            elif item.get("destination_table"):
                out.append(SpecTable(f"{prefix}.{item['destination_table']}", prefix))
    return out


def _same(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a.strip("`\"'").lower() == b.strip("`\"'").lower()


def destination_of(
    tables: list[SpecTable], source_table: str, source_schema: str | None = None, source_catalog: str | None = None
) -> str | None:
    """The destination of a source table, or None when the spec does not say (or says several)."""
    named = [
        t
        for t in tables
        if t.source_table
        and _same(t.source_table, source_table)
        and _same(t.source_schema, source_schema)
        and _same(t.source_catalog, source_catalog)
    ]
    if len(named) == 1:
        return named[0].destination
    if named:
        return None
    schemas = [t for t in tables if t.destination is None and t.source_schema]
    if source_schema is not None:
        schemas = [
            t for t in schemas if _same(t.source_schema, source_schema) and _same(t.source_catalog, source_catalog)
        ]
    if len(schemas) == 1:
        return f"{schemas[0].destination_prefix}.{source_table.strip('`')}"
    return None


def _known_destination(tables: list[SpecTable], name: str) -> str | None:
    """A destination the event names directly (fully, or by a short name unique in the spec)."""
    low = name.strip("`\"'").lower()
    for t in tables:
        if t.destination and t.destination.lower() == low:
            return t.destination
    short = [t.destination for t in tables if t.destination and t.destination.rsplit(".", 1)[-1].lower() == low]
    return short[0] if len(short) == 1 else None


def table_in_message(tables: list[SpecTable], message: str) -> str | None:
    """The destination of the first table of the spec that the message names (source, or destination)."""
    for token in _IDENT.findall(message):
        parts = [p.strip("`\"'") for p in token.strip("`\"'.").split(".") if p.strip("`\"'")]
        if not parts:
            continue
        # A bare word may name a table of a table spec; a schema spec's table needs its schema to be told apart.
        found = destination_of(
            tables if len(parts) > 1 else [t for t in tables if t.source_table],
            parts[-1],
            parts[-2] if len(parts) > 1 else None,
            parts[-3] if len(parts) > 2 else None,
        )
        found = found or (_known_destination(tables, ".".join(parts)) if len(parts) in (1, 3) else None)
        if found:
            return found
    return None


def event_table(event: Mapping[str, Any], tables: list[SpecTable], message: str) -> str | None:
    """The destination table an ERROR event is about: its origin first (stable fields), then the message."""
    origin = event.get("origin") or {}
    dataset = origin.get("dataset_name") or origin.get("flow_name")
    if dataset:
        return _known_destination(tables, dataset) or str(dataset)
    source = origin.get("ingestion_source_table_name")
    if source:
        found = destination_of(
            tables, source, origin.get("ingestion_source_schema_name"), origin.get("ingestion_source_catalog_name")
        )
        if found:
            return found
    return table_in_message(tables, message) if tables else None
