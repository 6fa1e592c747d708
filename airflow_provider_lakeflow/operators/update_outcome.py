"""What an ended update means for the task: a failure that says what to do, the schema-change remedy, no-data.

Called by ``LakeflowRunPipelineOperator`` and ``LakeflowPipelineUpdateSensor`` once an update is terminal (from the
worker or from a trigger's event). Importing it loads no databricks-sdk: the classification is pure
(:mod:`airflow_provider_lakeflow.failures.classify`) and the requests go through the operator's hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_lakeflow.errors import LakeflowUpdateFailed, LakeflowUpdateFailedNoRetry
from airflow_provider_lakeflow.failures.classify import UpdateFailure, classify, no_data_failure
from airflow_provider_lakeflow.workspace import operations

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook


def read_failure(
    hook: LakeflowHook,
    pipeline_id: str,
    update_id: str,
    state: str | None,
    *,
    events: list[dict] | None = None,
    since_ms: int | None = None,
) -> UpdateFailure:
    """Classify a failed update from its ERROR events (read now unless given); the spec is read only if needed."""
    if events is None:
        events = hook.run(operations.update_events(pipeline_id, update_id, since_ms=since_ms, level="ERROR"))
    return classify(
        events,
        pipeline_id=pipeline_id,
        update_id=update_id,
        state=state,
        update_url=operations.update_url(hook.host, pipeline_id, update_id),
        spec=lambda: hook.run(operations.get_pipeline(pipeline_id)).get("spec") or {},
    )


def exception_for(failure: UpdateFailure, message: str | None = None, *, retry: bool = True) -> LakeflowUpdateFailed:
    cls = LakeflowUpdateFailed if failure.retry and retry else LakeflowUpdateFailedNoRetry
    return cls(
        message or failure.describe(),
        category=failure.category,
        error_classes=failure.error_classes,
        tables=failure.tables,
        fix=failure.fix,
        update_url=failure.update_url,
    )


def fail(
    context: Context, failure: UpdateFailure, log: Any, *, soft_fail: bool = False, retry: bool = True
) -> NoReturn:
    """Push XCom ``failure``, log the account (category, tables, fix, then raw messages) and fail the task.

    ``retry=False``: never use the task's retries (a sensor: a retry would only find the same failed update).
    """
    failure.retry = failure.retry and retry
    context["ti"].xcom_push(key="failure", value=failure.as_xcom())
    text = failure.describe()
    log.error("%s", text)
    if soft_fail:
        from airflow.providers.common.compat.sdk import AirflowSkipException

        raise AirflowSkipException(text)
    raise exception_for(failure, text, retry=retry)


# --- LakeflowRunPipelineOperator -------------------------------------------------------------------------------------


def on_failed_update(
    op: Any,
    context: Context,
    hook: LakeflowHook,
    event: dict[str, Any],
    events: list[dict],
    *,
    remedy_of: str | None,
) -> tuple[UpdateFailure, list[str]]:
    """A FAILED or CANCELED update of the run operator: the failure and the tables to fully refresh when a
    schema-change follow-up is due (once per try), otherwise the task fails here."""
    pipeline_id, update_id = event["pipeline_id"], event["update_id"]
    if remedy_of is None:
        # After a deferral the operator is a new object: this try's ``remedied`` XCom says a follow-up already ran.
        ti = context["ti"]
        earlier = ti.xcom_pull(task_ids=op.task_id, key="remedied", map_indexes=getattr(ti, "map_index", -1))
        remedy_of = earlier.get("failed_update_id") if isinstance(earlier, dict) else None
    failure = read_failure(hook, pipeline_id, update_id, event.get("state"), events=events)
    tables = failure.full_refresh_tables() if failure.state == "FAILED" else None
    if op.on_schema_change == "full_refresh_tables":
        if remedy_of is not None:
            op.log.error(
                "The follow-up update %s (full refresh of the tables that update %s's schema change broke) failed "
                "too; no further update is started in this try.",
                update_id,
                remedy_of,
            )
        elif tables:
            return failure, tables
        elif failure.category == "schema_change_full_refresh":
            op.log.warning(
                "on_schema_change='full_refresh_tables' did not act: not every error of update %s is a schema "
                "change whose documented fix is a full refresh of tables this provider could name.",
                update_id,
            )
    fail(context, failure, op.log)


def start_follow_up(context: Context, hook: LakeflowHook, failure: UpdateFailure, tables: list[str], log: Any) -> str:
    """Start one update with ``full_refresh_selection`` = exactly the broken tables; returns its id, or fails the task
    with the original failure when it cannot be started."""
    log.warning(
        "Update %s failed with a schema change (%s) on %s, whose documented fix is a full refresh of those tables: "
        "on_schema_change='full_refresh_tables' starts one follow-up update with full_refresh_selection=%s",
        failure.update_id,
        ", ".join(failure.error_classes),
        ", ".join(tables),
        tables,
    )
    pipeline_id = failure.pipeline_id
    try:
        pipeline = hook.run(operations.get_pipeline(pipeline_id))
        return hook.run(
            operations.start_update(
                pipeline_id, known_update_ids=operations.update_ids(pipeline), full_refresh_selection=tables
            )
        )
    except Exception as exc:  # e.g. someone else started an update meanwhile: the original failure stands
        log.error("Could not start the follow-up update (%s: %s)", type(exc).__name__, exc)
        fail(context, failure, log)


def remedied(host: str, failure: UpdateFailure, follow_up: str, tables: list[str]) -> dict[str, Any]:
    """XCom ``remedied``: which failed update the follow-up repairs, and why."""
    return {
        "failed_update_id": failure.update_id,
        "update_id": follow_up,
        "update_url": operations.update_url(host, failure.pipeline_id, follow_up),
        "full_refresh_selection": tables,
        "error_classes": failure.error_classes,
        "reason": f"{', '.join(failure.error_classes)}: the documented fix is a full refresh of {', '.join(tables)}",
    }


def check_no_data(op: Any, context: Context, host: str, event: dict[str, Any], metrics: dict[str, Any]) -> None:
    """``on_no_data``: a COMPLETED update that landed no rows in any table is ignored, warned about, or fails."""
    if op.on_no_data == "ignore":
        return
    pipeline_id, update_id = event["pipeline_id"], event["update_id"]
    failure = no_data_failure(
        metrics,
        pipeline_id=pipeline_id,
        update_id=update_id,
        update_url=operations.update_url(host, pipeline_id, update_id),
    )
    if failure is None:
        return
    if op.on_no_data == "warn":
        op.log.warning("Update %s completed but landed no rows in any table. %s", update_id, failure.fix)
        return
    fail(context, failure, op.log)
