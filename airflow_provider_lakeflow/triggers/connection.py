"""The deferrable wait on a Unity Catalog connection becoming ready."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook
from airflow_provider_lakeflow.triggers.base import LakeflowPollingTrigger
from airflow_provider_lakeflow.workspace.waiting import wait_for_connection

if TYPE_CHECKING:
    from airflow_provider_lakeflow.workspace.messages import Operation
    from airflow_provider_lakeflow.workspace.waiting import ConnectionOutcome


class LakeflowConnectionReadyTrigger(LakeflowPollingTrigger):
    """Poll one Unity Catalog connection until it is ready, has failed, or ``end_time`` passes.

    Ready: the connection exists and its ``provisioning_info.state`` is ACTIVE, DEGRADED (with a warning) or absent.
    Waiting: the connection does not exist yet (state ``NOT_FOUND``), or is PROVISIONING or UPDATING. Failed: FAILED
    or DELETING. Yields one event ``{"status": "success" | "failed" | "timeout" | "error", "connection_name",
    "state", "message"}``. ``end_time`` is absolute (epoch seconds) so a triggerer restart keeps it. Nothing is
    started by the wait, so a killed task has nothing to stop.
    """

    def __init__(
        self,
        connection_name: str,
        databricks_conn_id: str = LakeflowHook.default_conn_name,
        poll_interval: float = 30,
        end_time: float | None = None,
    ) -> None:
        super().__init__()
        self.connection_name = connection_name
        self.databricks_conn_id = databricks_conn_id
        self.poll_interval = poll_interval
        self.end_time = end_time

    def identity(self, outcome: Any = None) -> dict[str, Any]:
        return {"connection_name": self.connection_name}

    def wait(self, host: str) -> Operation[ConnectionOutcome]:
        return wait_for_connection(
            self.connection_name, poll_interval=self.poll_interval, end_time=self.end_time, log=self.log
        )
