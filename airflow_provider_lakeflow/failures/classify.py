"""What a failed update means and what to do about it, from Databricks' documented error conditions.

Pure functions over the raw event-log dicts of one update: no databricks-sdk, no HTTP. A message's condition
(``[CLASS.SUB]``) and ``SQLSTATE`` decide the category (:mod:`airflow_provider_lakeflow.failures.categories`), never
its prose, which Databricks says may change between releases; tables come from
:mod:`airflow_provider_lakeflow.failures.tables`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_lakeflow.failures.categories import (
    CATEGORIES,
    PREFIX_RULES,
    RULES,
    SQLSTATE_RULES,
    Category,
    Rule,
    parse_condition,
    rule_for,
)
from airflow_provider_lakeflow.failures.tables import SpecTable, event_table, spec_tables

__all__ = [
    "CATEGORIES",
    "PREFIX_RULES",
    "RULES",
    "SQLSTATE_RULES",
    "Category",
    "ClassifiedError",
    "Rule",
    "UpdateFailure",
    "classify",
    "no_data_failure",
    "parse_condition",
    "rule_for",
]


@dataclass(frozen=True)
class ClassifiedError:
    """One error of an update: its condition, SQLSTATE, what it means, and the destination table it is about."""

    message: str
    condition: str | None
    sqlstate: str | None
    rule: Rule
    table: str | None

    @property
    def category(self) -> str:
        return self.rule.category


@dataclass
class UpdateFailure:
    """How an update failed, for the task log, ``LakeflowUpdateFailed`` and the ``failure`` XCom."""

    category: str
    error_classes: list[str]
    tables: list[str]
    fix: str
    update_url: str
    pipeline_id: str
    update_id: str
    state: str | None
    messages: list[str]
    retry: bool
    errors: list[ClassifiedError] = field(default_factory=list)

    @property
    def title(self) -> str:
        return CATEGORIES[self.category].title

    def full_refresh_tables(self) -> list[str] | None:
        """The tables to fully refresh when every error is a schema change whose documented fix is exactly that."""
        if not self.errors or any(
            not (e.rule.full_refresh and e.category == "schema_change_full_refresh" and e.table) for e in self.errors
        ):
            return None
        return sorted({str(e.table) for e in self.errors})

    def as_xcom(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "error_classes": list(self.error_classes),
            "tables": list(self.tables),
            "fix": self.fix,
            "update_url": self.update_url,
            "pipeline_id": self.pipeline_id,
            "update_id": self.update_id,
            "state": self.state,
            "retry": self.retry,
            "messages": list(self.messages),
        }

    def describe(self) -> str:
        """The task log's account: category, tables and fix first, then the raw messages."""
        lines = [
            f"Update {self.update_id} of pipeline {self.pipeline_id} ended in state {self.state}: {self.title} "
            f"(category {self.category}).",
        ]
        if self.tables:
            lines.append(f"Tables: {', '.join(self.tables)}")
        lines.append(f"Fix: {self.fix}")
        if not self.retry:
            lines.append("Retries: none used; an Airflow retry cannot fix this.")
        lines.append(f"Update: {self.update_url}")
        if self.messages:
            lines.append("Errors from the pipeline's event log:")
            lines.extend(f"- {m}" for m in self.messages)
        return "\n".join(lines)


def _messages(event: Mapping[str, Any]) -> list[str]:
    exceptions = (event.get("error") or {}).get("exceptions") or []
    texts = [str(e.get("message")) for e in exceptions if isinstance(e, Mapping) and e.get("message")]
    return texts or ([str(event["message"])] if event.get("message") else [])


def _render_fix(text: str, tables: list[str]) -> str:
    names = ", ".join(tables) if tables else "the affected tables"
    return text.format(tables=names, selection=repr(list(tables)) if tables else "[...]")


def _distinct(errors: list[ClassifiedError]) -> list[ClassifiedError]:
    """One error per condition and table; the update-level event that repeats a flow's error without its table
    is dropped in favour of the flow's."""
    out: list[ClassifiedError] = []
    for error in errors:
        key = (error.condition or error.message, error.sqlstate)
        group = [e for e in out if (e.condition or e.message, e.sqlstate) == key]
        if any(e.table == error.table for e in group) or (error.table is None and group):
            continue
        out = [e for e in out if not (e in group and e.table is None)]
        out.append(error)
    return out


SpecSource = Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None


def classify(
    events: Iterable[Mapping[str, Any]],
    *,
    pipeline_id: str,
    update_id: str,
    state: str | None,
    update_url: str,
    spec: SpecSource = None,
) -> UpdateFailure:
    """Classify the ERROR events of one failed (or cancelled) update.

    Each event's outermost exception that carries a condition decides its category. Errors without any condition
    (summaries, wrappers) count only when nothing else is classifiable: then the category is ``unknown`` and the raw
    messages are all there is. ``spec`` (the pipeline's spec, or a callable that reads it: called only when an event
    names a source table) maps source tables to destination tables.
    """
    loaded: list[list[SpecTable]] = []

    def tables_of_spec() -> list[SpecTable]:
        if not loaded:
            raw = spec() if callable(spec) else spec
            loaded.append(spec_tables(raw))
        return loaded[0]

    messages: list[str] = []
    found: list[tuple[ClassifiedError, Mapping[str, Any]]] = []
    for event in events:
        if event.get("level") != "ERROR":
            continue
        texts = _messages(event)
        messages.extend(t for t in texts if t not in messages)
        chosen = next((t for t in texts if parse_condition(t)[0]), texts[0] if texts else "")
        condition, sqlstate = parse_condition(chosen)
        origin = event.get("origin") or {}
        dataset = str(origin.get("dataset_name") or origin.get("flow_name") or "")
        table = dataset if dataset.count(".") == 2 else None  # the flow's fully qualified destination
        found.append((ClassifiedError(chosen, condition, sqlstate, rule_for(condition, sqlstate), table), event))
    errors: list[ClassifiedError] = []
    for error, event in found:
        known = [e for e, _ in found if e.table and (e.condition or e.message) == (error.condition or error.message)]
        if error.table is None and not known and spec is not None:
            # Only an error no flow event already placed needs the spec (source names -> destination tables).
            error = replace(error, table=event_table(event, tables_of_spec(), error.message))
        errors.append(error)
    errors = _distinct(errors)
    if any(e.condition or e.category != "unknown" for e in errors):
        errors = [e for e in errors if e.condition or e.category != "unknown"]
    if state == "CANCELED":
        category = "cancelled"
    elif not errors:
        category = "unknown"
    else:
        order = list(CATEGORIES)
        category = min((e.category for e in errors), key=order.index)
    tables = sorted({e.table for e in errors if e.table})
    error_classes = list(dict.fromkeys(e.condition for e in errors if e.condition))
    fixes: list[str] = []
    if state == "CANCELED" or not errors:
        fixes.append(_render_fix(CATEGORIES[category].fix, tables))
    else:
        for e in errors:
            own = [str(e.table)] if e.table else []
            text = _render_fix(e.rule.fix or CATEGORIES[e.category].fix, own)
            if text not in fixes:
                fixes.append(text)
    retry = CATEGORIES[category].retry and all(CATEGORIES[e.category].retry for e in errors)
    return UpdateFailure(
        category=category,
        error_classes=error_classes,
        tables=tables,
        fix=" ".join(fixes) if len(fixes) == 1 else " ".join(f"({i}) {f}" for i, f in enumerate(fixes, 1)),
        update_url=update_url,
        pipeline_id=pipeline_id,
        update_id=update_id,
        state=state,
        messages=messages,
        retry=retry,
        errors=errors,
    )


def no_data_failure(
    metrics: Mapping[str, Mapping[str, Any]], *, pipeline_id: str, update_id: str, update_url: str
) -> UpdateFailure | None:
    """A COMPLETED update whose flows landed no rows in any table, as a failure (None when rows landed)."""
    if any((m.get("num_output_rows") or 0) > 0 or (m.get("num_upserted_rows") or 0) > 0 for m in metrics.values()):
        return None
    tables = sorted(metrics)
    return UpdateFailure(
        category="no_data",
        error_classes=[],
        tables=tables,
        fix=_render_fix(CATEGORIES["no_data"].fix, tables),
        update_url=update_url,
        pipeline_id=pipeline_id,
        update_id=update_id,
        state="COMPLETED",
        messages=[],
        retry=CATEGORIES["no_data"].retry,
    )
