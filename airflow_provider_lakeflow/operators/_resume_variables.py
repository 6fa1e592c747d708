"""Airflow 2.11's stand-in for ``ResumableJobMixin``'s task state store: the update's reference in an Airflow Variable.

Airflow 3.3 keeps it in the task state store. Delete this module with Airflow 2.11 support.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_lakeflow.operators.run_pipeline import LakeflowRunPipelineOperator


def _has_resume_store_fallback() -> bool:
    """Airflow < 3.3 has no task_state_store; reconnect through an Airflow Variable instead."""
    from airflow.providers.common.compat.sdk import ResumableJobMixin as Mixin

    return Mixin.__module__.startswith("airflow.providers.common.compat")


def _variable_key(context: Context) -> str:
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return f"lakeflow_update__{ti.dag_id}__{ti.task_id}__{ti.run_id}__{map_index}"


def _execute_resumable_with_variables(op: LakeflowRunPipelineOperator, context: Context) -> Any:
    """Airflow 2.11: the same decisions as ResumableJobMixin.execute_resumable, kept in an Airflow Variable."""
    from airflow.models import Variable

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


def _forget_resume_variable(context: Context) -> None:
    if _has_resume_store_fallback():
        from airflow.models import Variable

        Variable.delete(_variable_key(context))
