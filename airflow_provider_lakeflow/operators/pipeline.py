"""Operators for Lakeflow Connect pipelines: create (idempotently), run an update, stop, delete.

Importing this module (DAG parsing) loads no databricks-sdk and no aiohttp: those load when a task runs.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    BaseOperator,
    ResumableJobMixin,
    conf,
)

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow._hooks import make_hook as _hook
from airflow_provider_lakeflow.errors import LakeflowInputError
from airflow_provider_lakeflow.links import LakeflowUpdateLink

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

ON_ACTIVE_UPDATE_POLICIES = ("fail", "reuse", "wait", "cancel")


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


class _PipelineRefMixin:
    """Resolve ``pipeline_id`` / ``pipeline_name`` (exactly one) to an id."""

    pipeline_id: str | None
    pipeline_name: str | None
    databricks_conn_id: str

    @property
    def hook(self) -> LakeflowHook:
        return _hook(self.databricks_conn_id)

    def resolve_pipeline_id(self, hook: LakeflowHook) -> str:
        from airflow_provider_lakeflow.hooks import api

        _check_pipeline_ref(self.pipeline_id, self.pipeline_name)
        return hook.run(api.resolve_pipeline_id(self.pipeline_id, self.pipeline_name))


class LakeflowCreateIngestionPipelineOperator(BaseOperator):
    """Create a Lakeflow Connect pipeline, or bring the one with the same name up to date.

    :param spec: the pipeline body as for ``databricks pipelines create --json``: a dict, a JSON string, or a path
        to a ``.json``/``.yml``/``.yaml`` file, relative to the DAG file's folder or absolute (templated). ``name`` is
        required; it identifies the pipeline. It may also be a Databricks Asset Bundle file with
        ``resources: pipelines: <key>: {...}`` (see docs/bundles.md).
    :param resource_key: the bundle's pipeline to use (required when the bundle file has several; templated).
    :param bundle_variables: values for the bundle's ``${var.<name>}`` references (templated); the file's
        ``variables: <name>: default:`` fill in the rest.
    :param update_if_exists: when a pipeline with that name exists and its spec differs, edit it (default). When
        false, a differing pipeline is left as it is and a warning is logged.
    :param databricks_conn_id: the Airflow connection.

    Returns the ``pipeline_id``; pushes XCom ``pipeline_url``. Every rule of ``airflow_provider_lakeflow.spec`` is
    checked before any request; a literal dict spec is checked when the DAG file is parsed.
    """

    template_fields: Sequence[str] = ("spec", "resource_key", "bundle_variables")
    template_ext: Sequence[str] = ()
    ui_color = "#ff7b46"

    def __init__(
        self,
        *,
        spec: dict[str, Any] | str,
        resource_key: str | None = None,
        bundle_variables: dict[str, Any] | str | None = None,
        update_if_exists: bool = True,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.resource_key = resource_key
        self.bundle_variables = bundle_variables
        self.update_if_exists = update_if_exists
        self.databricks_conn_id = databricks_conn_id
        if isinstance(spec, dict) and "{{" not in json.dumps([spec, resource_key, bundle_variables], default=str):
            self._checked_spec()  # a literal spec fails at DAG parse time, not at run time

    def _checked_spec(self) -> dict[str, Any]:
        from airflow_provider_lakeflow.bundles import load_pipeline_spec

        dag = getattr(self, "dag", None) if getattr(self, "has_dag", lambda: False)() else None
        base_dir = os.path.dirname(dag.fileloc) if dag is not None and getattr(dag, "fileloc", None) else None
        return load_pipeline_spec(
            self.spec, base_dir=base_dir, resource_key=self.resource_key, bundle_variables=self.bundle_variables
        )

    def execute(self, context: Context) -> str:
        from airflow_provider_lakeflow.hooks import api
        from airflow_provider_lakeflow.spec import WRITE_ONLY_FIELDS, spec_differs
        from airflow_provider_lakeflow.spec_rules import check_before_request, check_edit

        spec = self._checked_spec()
        hook = _hook(self.databricks_conn_id)
        check_before_request(spec, hook)
        name = spec["name"]
        matches = hook.run(api.find_pipelines_by_name(name))
        if len(matches) > 1:
            ids = ", ".join(sorted(p["pipeline_id"] for p in matches))
            raise AirflowFailException(
                f"{len(matches)} pipelines are named '{name}' ({ids}). Fix: delete or rename the duplicates; "
                "this operator identifies a pipeline by its exact name."
            )
        if not matches:
            pipeline_id = hook.run(api.create_pipeline(spec))
            self.log.info("Created pipeline '%s': %s", name, pipeline_id)
        else:
            pipeline_id = matches[0]["pipeline_id"]
            live = hook.run(api.get_pipeline(pipeline_id)).get("spec") or {}
            comparable = {k: v for k, v in spec.items() if k not in WRITE_ONLY_FIELDS}
            if not spec_differs(comparable, live):
                self.log.info("Pipeline '%s' (%s) already matches the spec; nothing to do", name, pipeline_id)
            elif self.update_if_exists:
                check_edit(spec, live)
                hook.run(api.edit_pipeline(pipeline_id, spec))
                self.log.info("Updated pipeline '%s' (%s) to the spec", name, pipeline_id)
            else:
                self.log.warning(
                    "Pipeline '%s' (%s) differs from the spec; left as it is because update_if_exists=False",
                    name,
                    pipeline_id,
                )
        context["ti"].xcom_push(key="pipeline_url", value=api.pipeline_url(hook.host, pipeline_id))
        self._lineage_input = (spec, hook.host)
        return pipeline_id

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (with apache-airflow-providers-openlineage installed): the spec's sources and tables."""
        from airflow_provider_lakeflow.lineage import operator_lineage

        lineage_input = getattr(self, "_lineage_input", None)
        if lineage_input is None:
            return None
        spec, host = lineage_input
        return operator_lineage(spec, host)


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
    :param cancel_on_kill: stop the update when the task is killed (``on_kill``, and the trigger's ``on_kill`` on
        Airflow 3.3) or runs into ``execution_timeout``.
    :param progress_interval: while the update runs, read per-table progress from the event log at most this often
        (seconds; one extra request each time); ``None`` turns it off.
    :param asset_alias: publish one Airflow Asset per table the update landed, through an ``AssetAlias`` of this
        name added to the task's outlets at parse time.
    :param databricks_conn_id: the Airflow connection.

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
        self.databricks_conn_id = databricks_conn_id
        self._update_id: str | None = None
        self._resolved_pipeline_id: str | None = None
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
        _seconds("poll_interval", self.poll_interval, allow_none=False)
        _seconds("timeout", self.timeout)
        _seconds("progress_interval", self.progress_interval)
        if self.asset_alias is not None and (not isinstance(self.asset_alias, str) or not self.asset_alias.strip()):
            raise LakeflowInputError(f"asset_alias must be a non-empty name, got {self.asset_alias!r}.")
        full: list[str] | None = None
        partial: list[str] | None = None
        if templated or all(_is_literal(v) for v in (self.full_refresh_selection, self.refresh_selection)):
            full = _selection("full_refresh_selection", self.full_refresh_selection)
            partial = _selection("refresh_selection", self.refresh_selection)
            if self.full_refresh and (full or partial):
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

    # -- ResumableJobMixin ------------------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        self._check_arguments(templated=True)
        if "task_state_store" in context or not _has_resume_store_fallback():
            return self.execute_resumable(context)
        return _execute_resumable_with_variables(self, context)

    def submit_job(self, context: Context) -> str:
        from airflow_provider_lakeflow.hooks import api

        full, partial = self._check_arguments(templated=True)
        hook = self.hook
        pipeline_id = self._pipeline_id(hook)
        pipeline = hook.run(api.get_pipeline(pipeline_id))
        active = api.active_update(pipeline)
        if active is not None:
            active_id = active["update_id"]
            url = api.update_url(hook.host, pipeline_id, active_id)
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
                hook.run(api.stop_pipeline(pipeline_id))
            self.log.info("Waiting for update %s of pipeline %s to end before starting one", active_id, pipeline_id)
            outcome = self._wait_in_worker(
                hook,
                pipeline_id,
                active_id,
                end_time=self._end_time(context),
                success_states=api.TERMINAL_UPDATE_STATES,
            )
            if outcome.status == "timeout":
                raise AirflowException(f"{outcome.message}. No update was started: the wait for it timed out.")
            pipeline = hook.run(api.get_pipeline(pipeline_id))
        update_id = hook.run(
            api.start_update(
                pipeline_id,
                known_update_ids=api.update_ids(pipeline),
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
        from airflow_provider_lakeflow.hooks import api

        self._update_id = update_id
        ti = context["ti"]
        url = api.update_url(hook.host, pipeline_id, update_id)
        ti.xcom_push(key="pipeline_id", value=pipeline_id)
        ti.xcom_push(key="update_id", value=update_id)
        ti.xcom_push(key="update_url", value=url)
        self.log.info("Lakeflow update: %s", url)
        # The stored id is the pipeline and the update, so a reconnect needs no name look-up.
        return f"{pipeline_id}/{update_id}"

    def get_job_status(self, external_id: Any, context: Context) -> str:
        from airflow_provider_lakeflow.hooks import api

        pipeline_id, update_id = str(external_id).split("/", 1)
        update = self.hook.run(api.get_update(pipeline_id, update_id))
        return str(update.get("state"))

    def is_job_active(self, status: str) -> bool:
        return status not in ("COMPLETED", "FAILED", "CANCELED")

    def is_job_succeeded(self, status: str) -> bool:
        return status == "COMPLETED"

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        pipeline_id, update_id = str(external_id).split("/", 1)
        hook = self.hook
        if self._update_id != update_id:  # reconnecting after a retry or a dead worker
            self.log.info("Reconnecting to update %s of pipeline %s started by an earlier try", update_id, pipeline_id)
            self._adopt(context, hook, pipeline_id, update_id)
        if not self.wait_for_completion:
            _forget_resume_variable(context)
            return update_id
        end_time = self._end_time(context)
        if self.deferrable:
            from airflow_provider_lakeflow.hooks import api
            from airflow_provider_lakeflow.triggers.pipeline import LakeflowPipelineUpdateTrigger

            # Check once before deferring: an update that already ended needs no triggerer round trip.
            update = hook.run(api.get_update(pipeline_id, update_id))
            if update.get("state") in api.TERMINAL_UPDATE_STATES:
                outcome = self._wait_in_worker(hook, pipeline_id, update_id, end_time=end_time)
                self._finish(context, outcome.as_event())
                return update_id
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
            outcome = self._wait_in_worker(hook, pipeline_id, update_id, end_time=end_time)
        except BaseException as exc:  # AirflowTaskTimeout (execution_timeout) derives from BaseException on 2.x
            if type(exc).__name__ in ("AirflowTaskTimeout", "KeyboardInterrupt") and self.cancel_on_kill:
                self._stop(hook, pipeline_id, update_id, reason=type(exc).__name__)
            raise
        self._finish(context, outcome.as_event())
        # ResumableJobMixin returns this when it reconnects to an update an earlier try started.
        return update_id

    def get_job_result(self, external_id: Any, context: Context) -> str:
        pipeline_id, update_id = str(external_id).split("/", 1)
        if self._update_id != update_id:  # already finished in an earlier try
            self._adopt(context, self.hook, pipeline_id, update_id)
            if self.wait_for_completion:
                self._finish(
                    context,
                    {
                        "status": "success",
                        "pipeline_id": pipeline_id,
                        "update_id": update_id,
                        "state": "COMPLETED",
                        "message": "",
                    },
                )
        return update_id

    # -- waiting -----------------------------------------------------------------------------------------------------
    def _end_time(self, context: Context | None = None) -> float | None:
        """The wait's absolute deadline: ``timeout`` from now, and ``execution_timeout`` from the task's start."""
        limits = []
        timeout = _seconds("timeout", self.timeout)
        if timeout is not None:
            limits.append(time.time() + timeout)
        if self.execution_timeout is not None:
            started = getattr(context.get("ti") if context else None, "start_date", None)
            start = started.timestamp() if started is not None else time.time()
            # Leave room to stop the update before Airflow kills the task.
            limits.append(start + max(1.0, self.execution_timeout.total_seconds() - 5))
        return min(limits) if limits else None

    def _wait_in_worker(
        self,
        hook: LakeflowHook,
        pipeline_id: str,
        update_id: str,
        *,
        end_time: float | None = None,
        success_states: Any = ("COMPLETED",),
    ) -> Any:
        from airflow_provider_lakeflow.hooks.waiting import wait_for_update

        failure_states = [s for s in ("FAILED", "CANCELED") if s not in success_states]
        return hook.run(
            wait_for_update(
                pipeline_id,
                update_id,
                host=hook.host,
                poll_interval=self.poll_interval,
                end_time=end_time,
                success_states=success_states,
                failure_states=failure_states,
                log=self.log,
                progress_interval=self.progress_interval,
            )
        )

    def _stop(self, hook: LakeflowHook, pipeline_id: str, update_id: str, *, reason: str) -> None:
        from airflow_provider_lakeflow.hooks import api

        self.log.warning("Stopping update %s of pipeline %s (%s)", update_id, pipeline_id, reason)
        try:
            hook.run(api.stop_pipeline(pipeline_id))
        except Exception as exc:  # the task is failing anyway; say why the stop did not happen
            self.log.error("Could not stop pipeline %s: %s: %s", pipeline_id, type(exc).__name__, exc)

    def _finish(self, context: Context, event: dict[str, Any]) -> None:
        """Turn a wait's outcome (from the worker or the trigger) into XComs and the task's result."""
        from airflow_provider_lakeflow.hooks import api
        from airflow_provider_lakeflow.triggers.base import check_event

        event = check_event(event, "LakeflowPipelineUpdateTrigger")
        status = event["status"]
        pipeline_id, update_id = event["pipeline_id"], event["update_id"]
        _forget_resume_variable(context)
        hook = self.hook
        ti = context["ti"]
        ti.xcom_push(key="state", value=event.get("state"))
        if status == "timeout":
            self._stop(hook, pipeline_id, update_id, reason="timeout")
            raise AirflowException(f"{event['message']}. The update was stopped because the wait timed out.")
        if status == "error":
            raise AirflowException(
                f"Waiting for update {update_id} of pipeline {pipeline_id} failed: {event['message']}"
            )
        events = hook.run(api.update_events(pipeline_id, update_id))
        metrics = api.table_metrics(events)
        self._table_metrics = metrics
        self._table_schemas = api.table_schemas(events)
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
        if status == "failed":
            raise AirflowException(event["message"])
        self._publish_assets(context, hook.host, metrics)
        self.log.info("%s", event["message"])

    def _publish_assets(self, context: Context, host: str, metrics: dict[str, dict[str, Any]]) -> None:
        """One Asset event per table this update landed, through the AssetAlias declared at parse time."""
        if self.asset_alias is None:
            return
        from airflow.providers.common.compat.assets import Asset, AssetAlias

        from airflow_provider_lakeflow.lineage import asset_uri

        alias_events = context["outlet_events"][AssetAlias(name=self.asset_alias)]
        for table, values in sorted(metrics.items()):
            if values.get("status") in (None, "COMPLETED"):
                alias_events.add(Asset(uri=asset_uri(host, table)), extra={"table": table, **values})

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (with apache-airflow-providers-openlineage installed): sources in, landed tables out."""
        from airflow_provider_lakeflow.hooks import api
        from airflow_provider_lakeflow.lineage import operator_lineage

        pipeline_id = self._resolved_pipeline_id or task_instance.xcom_pull(task_ids=self.task_id, key="pipeline_id")
        if not pipeline_id:
            return None
        hook = self.hook
        spec = hook.run(api.get_pipeline(pipeline_id)).get("spec") or {}
        landed = getattr(self, "_table_metrics", None)
        if landed is None:
            landed = task_instance.xcom_pull(task_ids=self.task_id, key="table_metrics")
        schemas = getattr(self, "_table_schemas", None)
        update_id = self._update_id or task_instance.xcom_pull(task_ids=self.task_id, key="update_id")
        if schemas is None and update_id:  # not the instance that ran the wait: read the update's events again
            schemas = api.table_schemas(hook.run(api.update_events(pipeline_id, update_id)))
        return operator_lineage(spec, hook.host, landed=list(landed) if landed else None, schemas=schemas)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        self._finish(context, event or {})
        return str((event or {}).get("update_id"))

    def on_kill(self) -> None:
        if self.cancel_on_kill and self._update_id and self._resolved_pipeline_id:
            self._stop(self.hook, self._resolved_pipeline_id, self._update_id, reason="task killed")


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


class LakeflowStopPipelineOperator(_PipelineRefMixin, BaseOperator):
    """Stop a pipeline's active update (a no-op when there is none).

    :param pipeline_id: the pipeline's id (templated). Exactly one of ``pipeline_id`` / ``pipeline_name``.
    :param pipeline_name: the pipeline's exact name (templated).
    :param wait_for_idle: wait until the stopped update reaches a terminal state (CANCELED, usually).
    :param poll_interval: seconds between polls while waiting.
    :param databricks_conn_id: the Airflow connection.

    Returns the id of the update it stopped, or None.
    """

    template_fields: Sequence[str] = ("pipeline_id", "pipeline_name")

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        wait_for_idle: bool = True,
        poll_interval: float = 5,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.wait_for_idle = wait_for_idle
        self.poll_interval = poll_interval
        self.databricks_conn_id = databricks_conn_id
        if (pipeline_id is None) == (pipeline_name is None):
            _check_pipeline_ref(pipeline_id, pipeline_name)
        _seconds("poll_interval", poll_interval, allow_none=False)

    def execute(self, context: Context) -> str | None:
        from airflow_provider_lakeflow.hooks import api
        from airflow_provider_lakeflow.hooks.waiting import wait_for_update

        hook = self.hook
        pipeline_id = self.resolve_pipeline_id(hook)
        active = api.active_update(hook.run(api.get_pipeline(pipeline_id)))
        if active is None:
            self.log.info("Pipeline %s has no active update; nothing to stop", pipeline_id)
            return None
        hook.run(api.stop_pipeline(pipeline_id))
        self.log.info("Stop requested for update %s of pipeline %s", active["update_id"], pipeline_id)
        if self.wait_for_idle:
            outcome = hook.run(
                wait_for_update(
                    pipeline_id,
                    active["update_id"],
                    host=hook.host,
                    poll_interval=self.poll_interval,
                    end_time=None
                    if self.execution_timeout is None
                    else time.time() + self.execution_timeout.total_seconds(),
                    success_states=api.TERMINAL_UPDATE_STATES,
                    failure_states=(),
                    log=self.log,
                )
            )
            self.log.info("Update %s is %s", active["update_id"], outcome.state)
        return active["update_id"]


class LakeflowDeletePipelineOperator(_PipelineRefMixin, BaseOperator):
    """Delete a pipeline (its tables are kept or dropped as the workspace's cascade rule says).

    :param pipeline_id: the pipeline's id (templated). Exactly one of ``pipeline_id`` / ``pipeline_name``.
    :param pipeline_name: the pipeline's exact name (templated).
    :param missing_ok: succeed when the pipeline does not exist (default), instead of failing.
    :param databricks_conn_id: the Airflow connection.

    Returns the deleted pipeline's id, or None when there was none.
    """

    template_fields: Sequence[str] = ("pipeline_id", "pipeline_name")

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        missing_ok: bool = True,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.missing_ok = missing_ok
        self.databricks_conn_id = databricks_conn_id
        if (pipeline_id is None) == (pipeline_name is None):
            _check_pipeline_ref(pipeline_id, pipeline_name)

    def execute(self, context: Context) -> str | None:
        from databricks.sdk.errors import NotFound

        from airflow_provider_lakeflow.hooks import api

        hook = self.hook
        try:
            pipeline_id = self.resolve_pipeline_id(hook)
            hook.run(api.delete_pipeline(pipeline_id))
        except (NotFound, api.PipelineNotFound) as exc:
            if not self.missing_ok:
                raise AirflowFailException(f"Cannot delete: {exc}") from exc
            self.log.info("Pipeline %s does not exist; nothing to delete", self.pipeline_id or self.pipeline_name)
            return None
        self.log.info("Deleted pipeline %s", pipeline_id)
        return pipeline_id
