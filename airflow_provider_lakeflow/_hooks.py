"""Making a LakeflowHook from an operator or sensor without importing the hook at DAG parse time."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook


def make_hook(databricks_conn_id: str) -> LakeflowHook:
    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

    return LakeflowHook(databricks_conn_id=databricks_conn_id)
