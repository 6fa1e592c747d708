"""What the pipeline operators and sensors share: argument checks, naming a pipeline, and the hook.

Importing this module (DAG parsing) loads no databricks-sdk and no aiohttp.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Collection
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow.providers.common.compat.sdk import AirflowException, conf

from airflow_provider_lakeflow.errors import LakeflowInputError

if TYPE_CHECKING:
    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook


def _default_deferrable() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def _seconds(name: str, value: float | datetime.timedelta | None, *, allow_none: bool = True) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise LakeflowInputError(f"{name} is required.")
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LakeflowInputError(f"{name} must be a number of seconds or a timedelta, got {value!r}.")
    if value <= 0:
        raise LakeflowInputError(f"{name} must be positive, got {value}. Fix: give a positive number of seconds.")
    return float(value)


ON_SCHEMA_CHANGE_POLICIES = ("fail", "full_refresh_tables")
ON_NO_DATA_POLICIES = ("ignore", "warn", "fail")


def check_policies(on_schema_change: Any, on_no_data: Any) -> None:
    if on_schema_change not in ON_SCHEMA_CHANGE_POLICIES:
        raise LakeflowInputError(
            f"on_schema_change={on_schema_change!r} is not a policy. Fix: use one of "
            f"{', '.join(repr(p) for p in ON_SCHEMA_CHANGE_POLICIES)}."
        )
    if on_no_data not in ON_NO_DATA_POLICIES:
        raise LakeflowInputError(
            f"on_no_data={on_no_data!r} is not a policy. Fix: use one of "
            f"{', '.join(repr(p) for p in ON_NO_DATA_POLICIES)}."
        )


def wait_deadline(
    timeout: float | datetime.timedelta | None, execution_timeout: datetime.timedelta | None, context: Any
) -> float | None:
    """A wait's absolute deadline: ``timeout`` from now, and ``execution_timeout`` from the task's start (less a
    margin to stop the update before Airflow kills the task)."""
    limits = []
    seconds = _seconds("timeout", timeout)
    if seconds is not None:
        limits.append(time.time() + seconds)
    if execution_timeout is not None:
        started = getattr(context.get("ti") if context else None, "start_date", None)
        start = started.timestamp() if started is not None else time.time()
        limits.append(start + max(1.0, execution_timeout.total_seconds() - 5))
    return min(limits) if limits else None


def wait_in_worker(
    op: Any,
    hook: LakeflowHook,
    pipeline_id: str,
    update_id: str,
    *,
    end_time: float | None = None,
    success_states: Collection[str] = ("COMPLETED",),
) -> Any:
    """Wait for an update in the worker (``hook.run``) with the operator's poll interval, log and progress interval;
    the end states that are not ``success_states`` fail the wait."""
    # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
    from airflow_provider_lakeflow.workspace.waiting import DEFAULT_PROGRESS_INTERVAL, wait_for_update

    wait = wait_for_update(
        pipeline_id,
        update_id,
        host=hook.host,
        poll_interval=op.poll_interval,
        end_time=end_time,
        success_states=success_states,
        failure_states=[s for s in ("FAILED", "CANCELED") if s not in success_states],
        log=op.log,
        progress_interval=getattr(op, "progress_interval", DEFAULT_PROGRESS_INTERVAL),
    )
    return hook.run(wait)


def stop_update(hook: LakeflowHook, log: Any, pipeline_id: str, update_id: str, *, reason: str) -> None:
    """Stop a task's update because the task is ending (timeout, kill); a stop that fails is logged, not raised."""
    # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
    from airflow_provider_lakeflow.workspace import operations

    log.warning("Stopping update %s of pipeline %s (%s)", update_id, pipeline_id, reason)
    try:
        hook.run(operations.stop_pipeline(pipeline_id))
    except Exception as exc:  # the task is failing anyway; say why the stop did not happen
        log.error("Could not stop pipeline %s: %s: %s", pipeline_id, type(exc).__name__, exc)


def _check_pipeline_ref(pipeline_id: Any, pipeline_name: Any) -> None:
    if pipeline_id and pipeline_name:
        raise LakeflowInputError(
            f"Both pipeline_id ({pipeline_id!r}) and pipeline_name ({pipeline_name!r}) are set. Fix: pass only one."
        )
    if not pipeline_id and not pipeline_name:
        raise LakeflowInputError("Neither pipeline_id nor pipeline_name is set. Fix: pass one of them.")
    for field, value in (("pipeline_id", pipeline_id), ("pipeline_name", pipeline_name)):
        if value is not None and not isinstance(value, str):
            raise LakeflowInputError(f"{field} must be a string, got {type(value).__name__}.")


def _is_literal(value: Any) -> bool:
    """A value known at parse time: not a Jinja template and not an XComArg."""
    if value is None:
        return True
    if isinstance(value, str):
        return "{{" not in value
    if isinstance(value, list | tuple | set):
        return all(isinstance(v, str) and "{{" not in v for v in value)
    return False


def _selection(name: str, value: Any) -> list[str] | None:
    """A table selection as a list of names; templated values may render to a JSON list string."""
    if value is None or value == [] or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise LakeflowInputError(f"{name} is not a valid JSON list: {value!r}.") from None
        else:
            value = [part.strip() for part in text.split(",")]
    if not isinstance(value, list | tuple | set):
        raise LakeflowInputError(f"{name} must be a list of table names, got {type(value).__name__}.")
    names = list(value)
    bad = [n for n in names if not isinstance(n, str) or not n.strip() or any(c.isspace() for c in n.strip())]
    if bad:
        raise LakeflowInputError(
            f"{name} has invalid table names {bad!r}. Fix: list names like 'catalog.schema.table'."
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LakeflowInputError(f"{name} names {duplicates} more than once. Fix: list each table once.")
    return [n.strip() for n in names]


def _table_selections(
    full_refresh: Any, full_refresh_selection: Any, refresh_selection: Any
) -> tuple[list[str] | None, list[str] | None]:
    """The full and the incremental table selections of one update, checked together."""
    full = _selection("full_refresh_selection", full_refresh_selection)
    partial = _selection("refresh_selection", refresh_selection)
    if full_refresh and (full or partial):
        raise LakeflowInputError(
            "full_refresh=True refreshes every table, so a table selection makes no sense with it. "
            "Fix: drop full_refresh, or drop full_refresh_selection/refresh_selection."
        )
    overlap = sorted(set(full or ()) & set(partial or ()))
    if overlap:
        raise LakeflowInputError(
            f"Tables {overlap} are in both full_refresh_selection and refresh_selection. Fix: list each in one."
        )
    return full, partial


class UpdateRef(NamedTuple):
    """The update a run task started, as stored to reconnect to it (task state store or Variable).

    Stored as the string ``pipeline_id/update_id``: a reconnect needs no name look-up.
    """

    pipeline_id: str
    update_id: str

    def __str__(self) -> str:
        return f"{self.pipeline_id}/{self.update_id}"

    @classmethod
    def parse(cls, external_id: Any) -> UpdateRef:
        pipeline_id, update_id = str(external_id).split("/", 1)
        return cls(pipeline_id, update_id)


class _HookMixin:
    """``hook``: one LakeflowHook per operator, built at first use (its credentials and sessions serve every call)."""

    databricks_conn_id: str

    @cached_property
    def hook(self) -> LakeflowHook:
        # the hook and its request engine: at run time, never at DAG parse
        from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

        return LakeflowHook(databricks_conn_id=self.databricks_conn_id)


class _PipelineRefMixin(_HookMixin):
    """Resolve ``pipeline_id`` / ``pipeline_name`` (exactly one) to an id."""

    pipeline_id: str | None
    pipeline_name: str | None

    def resolve_pipeline_id(self, hook: LakeflowHook) -> str:
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations

        _check_pipeline_ref(self.pipeline_id, self.pipeline_name)
        return hook.run(operations.resolve_pipeline_id(self.pipeline_id, self.pipeline_name))


#: The statuses a wait's event can have (``workspace.waiting``'s outcomes).
EVENT_STATUSES = frozenset({"success", "failed", "timeout", "error"})


def check_event(event: Any, trigger: str) -> dict[str, Any]:
    """The worker side of a deferral: an event with an unknown status fails the task instead of passing for
    success."""
    status = event.get("status") if isinstance(event, dict) else None
    if status not in EVENT_STATUSES:
        raise AirflowException(f"Unexpected event from {trigger}: {event!r}")
    return event
