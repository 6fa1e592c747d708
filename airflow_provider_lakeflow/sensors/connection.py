"""Wait for a Unity Catalog connection to exist and be ready (e.g. one a person creates through a UI sign-in)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    conf,
)

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow.connection_options import check_connection_name, is_literal, missing_connection_hint
from airflow_provider_lakeflow.operators._common import _HookMixin
from airflow_provider_lakeflow.sensors.base import LakeflowSensor

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class LakeflowConnectionReadySensor(_HookMixin, LakeflowSensor):
    """Succeed when a Unity Catalog connection exists and is ready; fail when it has failed or is being deleted.

    Ready means ``provisioning_info.state`` is ACTIVE, or absent (what the Databricks CLI shows as READY), or
    DEGRADED (with a warning in the log). The sensor keeps waiting while the connection does not exist yet or is
    PROVISIONING or UPDATING, and logs once per task try how to create it through the Catalog Explorer sign-in.
    FAILED and DELETING fail the task with the state and the server's message (with ``soft_fail``: skipped).

    :param connection_name: the Unity Catalog connection's name (templated).
    :param deferrable: wait in the triggerer (``poke_interval`` is the trigger's poll interval, ``timeout`` its
        absolute deadline). Default: ``[operators] default_deferrable``.
    :param databricks_conn_id: the Airflow connection to the workspace.

    Pushes XCom ``state`` (the provisioning state it ended on, None when absent) on success.
    """

    template_fields: Sequence[str] = ("connection_name",)
    ui_color = "#ff7b46"

    def __init__(
        self,
        *,
        connection_name: str,
        deferrable: bool | None = None,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.connection_name = connection_name
        self.deferrable = (
            conf.getboolean("operators", "default_deferrable", fallback=False) if deferrable is None else deferrable
        )
        self.databricks_conn_id = databricks_conn_id
        self._hint_logged_for_try: int | None = None
        if is_literal(connection_name):
            check_connection_name(connection_name, "connection_name")

    # -- the walk-through, once per try -------------------------------------------------------------------------------
    def _hint_already_logged(self, context: Context) -> bool:
        """True when an earlier poke of this task try logged the walk-through.

        In poke and deferrable modes the pokes of a try share this operator object. In reschedule mode every poke is
        a new process, so a poke after the first of its try (one with a reschedule record) counts as logged.
        """
        ti = context["ti"]
        try_number = getattr(ti, "try_number", None)
        if self._hint_logged_for_try is not None and self._hint_logged_for_try == try_number:
            return True
        return self.mode == "reschedule" and _rescheduled_in_this_try(context)

    def _log_missing(self, context: Context) -> None:
        if self._hint_already_logged(context):
            self.log.info("Connection '%s' does not exist yet", self.connection_name)
        else:
            self.log.info("%s", missing_connection_hint(self.connection_name))
        self._hint_logged_for_try = getattr(context["ti"], "try_number", None)

    # -- waiting ------------------------------------------------------------------------------------------------------
    def _succeed(self, context: Context, state: str | None, message: str) -> None:
        if state == "DEGRADED":
            self.log.warning("%s", message)
        else:
            self.log.info("%s", message)
        context["ti"].xcom_push(key="state", value=state)

    def poke(self, context: Context) -> bool:
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace.waiting import NOT_FOUND, check_connection

        name = check_connection_name(self.connection_name, "connection_name")
        result = self.hook.run(check_connection(name))
        if result.state == NOT_FOUND:
            self._log_missing(context)
            return False
        if result.verdict == "failed":
            self._fail(result.message)
        if result.verdict == "success":
            self._succeed(context, result.state, result.message)
            return True
        self.log.info("Connection '%s' is %s; waiting", name, result.state)
        return False

    def execute(self, context: Context) -> Any:
        check_connection_name(self.connection_name, "connection_name")
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):  # already ready: no triggerer round trip
            return None
        # the trigger loads Airflow's trigger modules and our request engine (~90 ms), which DAG parsing never needs
        from airflow_provider_lakeflow.triggers.connection import LakeflowConnectionReadyTrigger

        self._defer_to(
            LakeflowConnectionReadyTrigger(
                connection_name=self.connection_name,
                databricks_conn_id=self.databricks_conn_id,
                poll_interval=float(self.poke_interval),
                end_time=self._end_time(),
            )
        )

    def _on_success(self, context: Context, event: dict[str, Any]) -> None:
        self._succeed(context, event.get("state"), event.get("message") or "")


def _rescheduled_in_this_try(context: Context) -> bool:
    """Whether this task try was rescheduled before (reschedule mode: an earlier poke of the same try ran)."""
    count = context.get("task_reschedule_count")
    if count is not None:  # Airflow 3: task reschedules are per try (a new try is a new task instance id)
        return bool(count)
    try:  # Airflow 2: look the try's reschedule records up
        from airflow.models.taskreschedule import TaskReschedule
        from airflow.utils.session import create_session
        from sqlalchemy import func, select
    except ImportError:  # pragma: no cover
        return False
    ti = context["ti"]
    with create_session() as session:
        found = session.scalar(
            select(func.count())
            .select_from(TaskReschedule)
            .where(
                TaskReschedule.dag_id == ti.dag_id,
                TaskReschedule.task_id == ti.task_id,
                TaskReschedule.run_id == ti.run_id,
                TaskReschedule.map_index == getattr(ti, "map_index", -1),
                TaskReschedule.try_number == ti.try_number,
            )
        )
    return bool(found)
