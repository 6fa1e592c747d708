"""Where the run operator keeps the update it started, so that a retry (or a task restarted after its worker died)
reconnects to it: Airflow 3.3's task state store through ``ResumableJobMixin``, and on older Airflow an Airflow
Variable that stands in for it. Delete the Variable half with Airflow 2.11 support.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


def _has_task_state_store(context: Context) -> bool:
    """Airflow < 3.3 has no task state store: common-compat's stand-in mixin, and no ``task_state_store`` in the
    context."""
    if "task_state_store" in context:
        return True
    from airflow.providers.common.compat.sdk import ResumableJobMixin as Mixin  # Airflow's compat layer, loaded once

    return not Mixin.__module__.startswith("airflow.providers.common.compat")


def _variable_key(context: Context) -> str:
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return f"lakeflow_update__{ti.dag_id}__{ti.task_id}__{ti.run_id}__{map_index}"


def execute_resumable(op: Any, context: Context) -> Any:
    """``ResumableJobMixin.execute_resumable`` where Airflow keeps the reference, or the same decisions with the
    reference kept in an Airflow Variable."""
    if _has_task_state_store(context):
        return op.execute_resumable(context)
    from airflow.models import Variable  # Airflow 2.11 only: the ORM model, never needed where the store exists

    key = _variable_key(context)
    stored = Variable.get(key, default_var=None)
    if stored:
        status = op.get_job_status(stored, context)
        if op.is_job_active(status):
            op.poll_until_complete(stored, context)
            return op.get_job_result(stored, context)
        if op.is_job_succeeded(status):
            Variable.delete(key)
            return op.get_job_result(stored, context)
        op.log.warning("The update %s of an earlier try ended %s; starting a new one", stored, status)
    external_id = op.submit_job(context)
    Variable.set(key, external_id)
    op.poll_until_complete(external_id, context)
    return op.get_job_result(external_id, context)


def remember(context: Context, key: str, external_id: str) -> None:
    """Point a retry at ``external_id`` (a schema-change follow-up, not the update that failed)."""
    store = context.get("task_state_store") if hasattr(context, "get") else None
    if store is not None:
        store.set(key, external_id)
        return
    if not _has_task_state_store(context):
        from airflow.models import Variable  # Airflow 2.11 only (as above)

        Variable.set(_variable_key(context), external_id)


def forget(context: Context) -> None:
    """The update ended: nothing for a retry to reconnect to (the task state store forgets on its own)."""
    if not _has_task_state_store(context):
        from airflow.models import Variable  # Airflow 2.11 only (as above)

        Variable.delete(_variable_key(context))
