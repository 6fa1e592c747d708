"""Assets for DAG files: a landed table's Asset, watched, so that ``schedule=[asset]`` runs a DAG when it lands.

Parse-time code: no connection is read and nothing heavier than Airflow itself is imported (no databricks-sdk, no
aiohttp); the watcher's trigger polls the workspace in the triggerer.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow.airflow_versions import EVENT_SCHEDULING
from airflow_provider_lakeflow.errors import LakeflowInputError
from airflow_provider_lakeflow.lineage import asset_uri

#: ``EVENT_SCHEDULING`` is True where Airflow has event-driven scheduling (Airflow 3): a DAG file can branch on it to
#: stay importable on 2.x.
__all__ = ["EVENT_SCHEDULING", "lakeflow_table_asset"]


def lakeflow_table_asset(
    table: str,
    *,
    workspace_host: str,
    pipeline_id: str | None = None,
    pipeline_name: str | None = None,
    databricks_conn_id: str = DEFAULT_CONN_ID,
    poll_interval: float = 60,
) -> Any:
    """The Asset of a destination table, with a watcher that fires once per update in which the table landed.

    Its URI, ``databricks://<workspace host>/<catalog>/<schema>/<table>``, is the one
    ``LakeflowRunPipelineOperator(asset_alias=...)`` publishes for the same table, so both name one Asset.

    :param table: the destination table, ``catalog.schema.table``.
    :param workspace_host: the workspace URL (or host name) the connection points at; it is part of the URI. It is
        given here because a DAG file must not read connections.
    :param pipeline_id: the ingestion pipeline that lands the table (exactly one of this and ``pipeline_name``).
    :param pipeline_name: the pipeline's exact name.
    :param databricks_conn_id: the Airflow connection the watcher polls with (read in the triggerer).
    :param poll_interval: seconds between polls; every table watcher of one pipeline shares one poll.
    :return: an ``airflow.sdk.Asset`` with one ``AssetWatcher`` (Airflow 3 only).
    """
    # only in DAG files that watch a table: Airflow's trigger modules and our request engine cost ~90 ms to import
    from airflow_provider_lakeflow.triggers.events import LakeflowTableLandedTrigger, require_event_scheduling

    require_event_scheduling("lakeflow_table_asset")
    if not isinstance(workspace_host, str) or not workspace_host.strip() or "{{" in workspace_host:
        raise LakeflowInputError(
            "workspace_host must be the workspace URL the connection points at (e.g. "
            f"'https://adb-1234567890123456.7.azuredatabricks.net'), got {workspace_host!r}."
        )
    trigger = LakeflowTableLandedTrigger(
        table=table,
        pipeline_id=pipeline_id,
        pipeline_name=pipeline_name,
        databricks_conn_id=databricks_conn_id,
        poll_interval=poll_interval,
    )
    from airflow.sdk import Asset, AssetWatcher

    return Asset(
        uri=asset_uri(workspace_host.strip(), trigger.table),
        watchers=[AssetWatcher(name=f"lakeflow_table_landed_{trigger.table.replace('.', '_')}", trigger=trigger)],
    )
