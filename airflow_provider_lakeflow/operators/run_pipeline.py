"""Run one update of a Lakeflow Connect pipeline and wait for it, in the worker or deferred to the triggerer.

Importing this module (DAG parsing) loads no databricks-sdk and no aiohttp: those load when a task runs.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    BaseOperator,
    ResumableJobMixin,
)

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow.errors import LakeflowInputError
from airflow_provider_lakeflow.links import LakeflowUpdateLink
from airflow_provider_lakeflow.operators import resume_store
from airflow_provider_lakeflow.operators._common import (
    UpdateRef,
    _check_pipeline_ref,
    _default_deferrable,
    _is_literal,
    _PipelineRefMixin,
    _seconds,
    _table_selections,
    check_event,
    check_policies,
    stop_update,
    wait_deadline,
    wait_in_worker,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook


ON_ACTIVE_UPDATE_POLICIES = ("fail", "reuse", "wait", "cancel")


class LakeflowRunPipelineOperator(_PipelineRefMixin, ResumableJobMixin, BaseOperator):
    """Start one update of a pipeline and wait for it, in the worker or deferred to the triggerer.

    :param pipeline_id: the pipeline's id (templated). Exactly one of ``pipeline_id`` / ``pipeline_name``.
    :param pipeline_name: the pipeline's exact name (templated).
    :param full_refresh: reprocess every table from scratch.
    :param full_refresh_selection: tables to fully refresh (templated list of names).
    :param refresh_selection: tables to refresh incrementally (templated list); other tables are left alone.
    :param on_active_update: when the pipeline already has an update running: ``"fail"``, ``"reuse"`` (adopt it),
        ``"wait"`` (let it end, then start one) or ``"cancel"`` (stop it, then start one). The waits of "wait" and
        "cancel" run in the worker and count against ``timeout``.
    :param wait_for_completion: wait for the update to end (default) or return once it started.
    :param deferrable: wait in the triggerer instead of a worker slot; defaults to ``[operators] default_deferrable``.
    :param poll_interval: seconds between polls.
    :param timeout: longest wait (seconds or timedelta); on expiry the update is stopped (whatever
        ``cancel_on_kill`` says) and the task fails.
    :param cancel_on_kill: stop the update when the task is killed (``on_kill``; while deferred, through the
        trigger on Airflow 3.1 and later, and on 2.11 not at all, which the task log says when it defers) or runs
        into ``execution_timeout``.
    :param progress_interval: while the update runs, read per-table progress from the event log at most this often
        (seconds; one extra request each time); ``None`` turns it off.
    :param asset_alias: publish one Airflow Asset per table the update landed, through an ``AssetAlias`` of this
        name added to the task's outlets at parse time.
    :param on_schema_change: ``"fail"`` (default: the failure's fix names the exact ``full_refresh_selection``) or
        ``"full_refresh_tables"``: when every error is a schema change whose documented fix is a full refresh of
        named tables, start one follow-up update that fully refreshes exactly those tables, and end as it ends.
    :param on_no_data: a COMPLETED update that landed no rows in any table: ``"ignore"`` (default), ``"warn"``, or
        ``"fail"`` (with the likely causes).
    :param databricks_conn_id: the Airflow connection.

    A failed update raises ``LakeflowUpdateFailed`` (category, error classes, tables, fix) and pushes XCom
    ``failure``; categories no retry can fix do not use the task's retries.

    Returns the ``update_id``. XCom: ``pipeline_id``, ``update_id``, ``update_url`` (before waiting), then
    ``state`` and ``table_metrics``. A retry, or a task restarted after its worker died, reconnects to the update it
    started (``ResumableJobMixin`` on Airflow 3.3, an Airflow Variable on 2.11).
    """

    template_fields: Sequence[str] = ("pipeline_id", "pipeline_name", "full_refresh_selection", "refresh_selection")
    operator_extra_links = (LakeflowUpdateLink(),)
    external_id_key = "lakeflow_update"
    ui_color = "#ff7b46"

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        full_refresh: bool = False,
        full_refresh_selection: Sequence[str] | str | None = None,
        refresh_selection: Sequence[str] | str | None = None,
        on_active_update: str = "fail",
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 30,
        timeout: float | datetime.timedelta | None = None,
        cancel_on_kill: bool = True,
        progress_interval: float | None = 60,
        asset_alias: str | None = None,
        on_schema_change: str = "fail",
        on_no_data: str = "ignore",
        databricks_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        if asset_alias is not None:
            from airflow.providers.common.compat.assets import AssetAlias

            # Declared at parse time, filled at run time with one Asset per landed table: the DAG file calls no API.
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), AssetAlias(name=asset_alias)]
        super().__init__(**kwargs)
        self.progress_interval = progress_interval
        self.asset_alias = asset_alias
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.full_refresh = full_refresh
        self.full_refresh_selection = full_refresh_selection
        self.refresh_selection = refresh_selection
        self.on_active_update = on_active_update
        self.wait_for_completion = wait_for_completion
        self.deferrable = _default_deferrable() if deferrable is None else deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.cancel_on_kill = cancel_on_kill
        self.on_schema_change = on_schema_change
        self.on_no_data = on_no_data
        self.databricks_conn_id = databricks_conn_id
        self._update_id: str | None = None
        self._resolved_pipeline_id: str | None = None
        self._follow_up_of: str | None = None  # the failed update a schema-change follow-up repairs
        self._check_arguments(templated=False)

    # -- validation -------------------------------------------------------------------------------------------------
    def _check_arguments(self, *, templated: bool) -> tuple[list[str] | None, list[str] | None]:
        """At parse time check what is literal; after templating (``templated=True``) check everything."""
        if templated or (self.pipeline_id is None) == (self.pipeline_name is None):
            _check_pipeline_ref(self.pipeline_id, self.pipeline_name)
        if self.on_active_update not in ON_ACTIVE_UPDATE_POLICIES:
            raise LakeflowInputError(
                f"on_active_update={self.on_active_update!r} is not a policy. "
                f"Fix: use one of {', '.join(ON_ACTIVE_UPDATE_POLICIES)}."
            )
        if not isinstance(self.full_refresh, bool):
            raise LakeflowInputError(f"full_refresh must be true or false, got {self.full_refresh!r}.")
        if not isinstance(self.wait_for_completion, bool):
            raise LakeflowInputError(f"wait_for_completion must be true or false, got {self.wait_for_completion!r}.")
        check_policies(self.on_schema_change, self.on_no_data)
        _seconds("poll_interval", self.poll_interval, allow_none=False)
        _seconds("timeout", self.timeout)
        _seconds("progress_interval", self.progress_interval)
        if self.asset_alias is not None and (not isinstance(self.asset_alias, str) or not self.asset_alias.strip()):
            raise LakeflowInputError(f"asset_alias must be a non-empty name, got {self.asset_alias!r}.")
        if templated or all(_is_literal(v) for v in (self.full_refresh_selection, self.refresh_selection)):
            return _table_selections(self.full_refresh, self.full_refresh_selection, self.refresh_selection)
        return None, None

    # -- ResumableJobMixin ------------------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        self._check_arguments(templated=True)
        return resume_store.execute_resumable(self, context)

    def submit_job(self, context: Context) -> str:
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations

        full, partial = self._check_arguments(templated=True)
        hook = self.hook
        pipeline_id = self._pipeline_id(hook)
        pipeline = hook.run(operations.get_pipeline(pipeline_id))
        active = operations.active_update(pipeline)
        if active is not None:
            active_id = active["update_id"]
            url = operations.update_url(hook.host, pipeline_id, active_id)
            if self.on_active_update == "fail":
                raise AirflowFailException(
                    f"Pipeline {pipeline_id} already has an active update {active_id} ({active.get('state')}): {url}. "
                    "Fix: set on_active_update to 'reuse', 'wait' or 'cancel', or wait for it to end."
                )
            if self.on_active_update == "reuse":
                self.log.info("Reusing the active update %s of pipeline %s: %s", active_id, pipeline_id, url)
                return self._adopt(context, hook, pipeline_id, active_id)
            if self.on_active_update == "cancel":
                self.log.info(
                    "Stopping the active update %s of pipeline %s before starting one", active_id, pipeline_id
                )
                hook.run(operations.stop_pipeline(pipeline_id))
            self.log.info("Waiting for update %s of pipeline %s to end before starting one", active_id, pipeline_id)
            outcome = wait_in_worker(
                self,
                hook,
                pipeline_id,
                active_id,
                end_time=wait_deadline(self.timeout, self.execution_timeout, context),
                success_states=operations.TERMINAL_UPDATE_STATES,
            )
            if outcome.status == "timeout":
                raise AirflowException(f"{outcome.message}. No update was started: the wait for it timed out.")
            pipeline = hook.run(operations.get_pipeline(pipeline_id))
        update_id = hook.run(
            operations.start_update(
                pipeline_id,
                known_update_ids=operations.update_ids(pipeline),
                full_refresh=self.full_refresh,
                full_refresh_selection=full,
                refresh_selection=partial,
            )
        )
        self.log.info("Started update %s of pipeline %s", update_id, pipeline_id)
        return self._adopt(context, hook, pipeline_id, update_id)

    def _pipeline_id(self, hook: LakeflowHook) -> str:
        if self._resolved_pipeline_id is None:
            self._resolved_pipeline_id = self.resolve_pipeline_id(hook)
        return self._resolved_pipeline_id

    def _adopt(self, context: Context, hook: LakeflowHook, pipeline_id: str, update_id: str) -> str:
        """Make ``update_id`` this task's update: XComs go out before any waiting, so they survive a failure."""
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations

        self._update_id = update_id
        ti = context["ti"]
        url = operations.update_url(hook.host, pipeline_id, update_id)
        ti.xcom_push(key="pipeline_id", value=pipeline_id)
        ti.xcom_push(key="update_id", value=update_id)
        ti.xcom_push(key="update_url", value=url)
        self.log.info("Lakeflow update: %s", url)
        return str(UpdateRef(pipeline_id, update_id))

    def get_job_status(self, external_id: Any, context: Context) -> str:
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations

        pipeline_id, update_id = UpdateRef.parse(external_id)
        update = self.hook.run(operations.get_update(pipeline_id, update_id))
        return str(update.get("state"))

    def is_job_active(self, status: str) -> bool:
        return status not in ("COMPLETED", "FAILED", "CANCELED")

    def is_job_succeeded(self, status: str) -> bool:
        return status == "COMPLETED"

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        pipeline_id, update_id = UpdateRef.parse(external_id)
        hook = self.hook
        if self._update_id != update_id:  # reconnecting after a retry or a dead worker
            self.log.info("Reconnecting to update %s of pipeline %s started by an earlier try", update_id, pipeline_id)
            self._adopt(context, hook, pipeline_id, update_id)
        if not self.wait_for_completion:
            resume_store.forget(context)
            return update_id
        self._wait_and_finish(context, hook, pipeline_id, update_id)
        # ResumableJobMixin returns this when it reconnects to an update an earlier try started.
        return update_id

    def get_job_result(self, external_id: Any, context: Context) -> str:
        pipeline_id, update_id = UpdateRef.parse(external_id)
        if self._follow_up_of == update_id:  # this try repaired it with a follow-up, which is the result
            return str(self._update_id)
        if self._update_id != update_id:  # already finished in an earlier try: report the state it ended in
            hook = self.hook
            self._adopt(context, hook, pipeline_id, update_id)
            if self.wait_for_completion:
                self._finish(context, wait_in_worker(self, hook, pipeline_id, update_id).as_event())
        return update_id

    # -- waiting -----------------------------------------------------------------------------------------------------
    def _wait_and_finish(
        self, context: Context, hook: LakeflowHook, pipeline_id: str, update_id: str, remedy_of: str | None = None
    ) -> None:
        """Wait for the update (deferred after one check, or in the worker) and end the task as it ends.

        ``remedy_of`` names the failed update when this is the schema-change follow-up, so that its failure does not
        start another one.
        """
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.airflow_versions import kill_note
        from airflow_provider_lakeflow.workspace import operations

        end_time = wait_deadline(self.timeout, self.execution_timeout, context)
        if self.deferrable:
            # Check once before deferring: an update that already ended needs no triggerer round trip.
            update = hook.run(operations.get_update(pipeline_id, update_id))
            if update.get("state") not in operations.TERMINAL_UPDATE_STATES:
                # the trigger's module loads the hook and its request engine, which DAG parsing never needs
                from airflow_provider_lakeflow.triggers.pipeline import LakeflowPipelineUpdateTrigger

                note = kill_note(pipeline_id, update_id) if self.cancel_on_kill else None
                if note:
                    self.log.warning(note)
                self.defer(
                    trigger=LakeflowPipelineUpdateTrigger(
                        pipeline_id=pipeline_id,
                        update_id=update_id,
                        databricks_conn_id=self.databricks_conn_id,
                        poll_interval=self.poll_interval,
                        end_time=end_time,
                        cancel_on_kill=self.cancel_on_kill,
                        progress_interval=self.progress_interval,
                    ),
                    method_name="execute_complete",
                    # Airflow's own trigger timeout fires only after ours, so the update is stopped by execute_complete.
                    timeout=None if end_time is None else datetime.timedelta(seconds=end_time - time.time() + 60),
                )
        try:
            outcome = wait_in_worker(self, hook, pipeline_id, update_id, end_time=end_time)
        except BaseException as exc:  # AirflowTaskTimeout (execution_timeout) derives from BaseException on 2.x
            if type(exc).__name__ in ("AirflowTaskTimeout", "KeyboardInterrupt") and self.cancel_on_kill:
                stop_update(hook, self.log, pipeline_id, update_id, reason=type(exc).__name__)
            raise
        self._finish(context, outcome.as_event(), remedy_of=remedy_of)

    def _finish(self, context: Context, event: dict[str, Any], remedy_of: str | None = None) -> None:
        """Turn a wait's outcome (from the worker or the trigger) into XComs and the task's result."""
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.lineage import publish_table_assets
        from airflow_provider_lakeflow.operators.update_outcome import (
            check_no_data,
            on_failed_update,
            remedied,
            start_follow_up,
        )

        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations

        event = check_event(event, "LakeflowPipelineUpdateTrigger")
        status = event["status"]
        pipeline_id, update_id = event["pipeline_id"], event["update_id"]
        resume_store.forget(context)
        hook = self.hook
        ti = context["ti"]
        ti.xcom_push(key="state", value=event.get("state"))
        if status == "timeout":
            stop_update(hook, self.log, pipeline_id, update_id, reason="timeout")
            raise AirflowException(f"{event['message']}. The update was stopped because the wait timed out.")
        if status == "error":
            raise AirflowException(
                f"Waiting for update {update_id} of pipeline {pipeline_id} failed: {event['message']}"
            )
        events = hook.run(operations.update_events(pipeline_id, update_id))
        metrics = operations.table_metrics(events)
        self._table_metrics = metrics
        self._table_schemas = operations.table_schemas(events)
        ti.xcom_push(key="table_metrics", value=metrics)
        for table, values in sorted(metrics.items()):
            self.log.info(
                "Table %s: %s rows (%s upserted, %s deleted) %s",
                table,
                values.get("num_output_rows", "?"),
                values.get("num_upserted_rows", "?"),
                values.get("num_deleted_rows", "?"),
                values.get("status", ""),
            )
        if status == "failed":  # fails the task, unless a schema-change follow-up is due
            failure, tables = on_failed_update(self, context, hook, event, events, remedy_of=remedy_of)
            follow_up = start_follow_up(context, hook, failure, tables, self.log)
            self._follow_up_of = update_id
            resume_store.remember(context, self.external_id_key, self._adopt(context, hook, pipeline_id, follow_up))
            ti.xcom_push(key="remedied", value=remedied(hook.host, failure, follow_up, tables))
            self._wait_and_finish(context, hook, pipeline_id, follow_up, remedy_of=update_id)
            return  # the follow-up update finished the task
        check_no_data(self, context, hook.host, event, metrics)
        if self.asset_alias is not None:
            publish_table_assets(context["outlet_events"], self.asset_alias, hook.host, metrics)
        self.log.info("%s", event["message"])

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (with apache-airflow-providers-openlineage installed): sources in, landed tables out."""
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.lineage import update_lineage

        pipeline_id = self._resolved_pipeline_id or task_instance.xcom_pull(task_ids=self.task_id, key="pipeline_id")
        if not pipeline_id:
            return None
        landed = getattr(self, "_table_metrics", None)
        if landed is None:
            landed = task_instance.xcom_pull(task_ids=self.task_id, key="table_metrics")
        update_id = self._update_id or task_instance.xcom_pull(task_ids=self.task_id, key="update_id")
        return update_lineage(self.hook, pipeline_id, update_id, landed, getattr(self, "_table_schemas", None))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        self._finish(context, event or {})
        return str(self._update_id if self._follow_up_of else (event or {}).get("update_id"))

    def on_kill(self) -> None:
        if self.cancel_on_kill and self._update_id and self._resolved_pipeline_id:
            stop_update(self.hook, self.log, self._resolved_pipeline_id, self._update_id, reason="task killed")
