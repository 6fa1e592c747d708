"""MySQL change data capture into Unity Catalog with Lakeflow Connect, end to end from Airflow. **Public Preview**.

The same two-pipeline shape as ``example_lakeflow_sqlserver_cdc``: an ingestion *gateway* (classic compute, running
continuously) reads MySQL's binary log and stages the changes; a serverless *ingestion pipeline*, triggered from
Airflow, lands the tables. Compared with ``example_lakeflow_query_based`` (MySQL without a gateway), CDC sees deletes
and needs no cursor column, at the price of the always-on gateway and binary-log set-up on the server.

This DAG creates the connection (credentials from the Airflow connection ``mysql_orders``, templated and masked), waits
for it, creates the gateway (idempotent) and makes sure it runs, creates the ingestion pipeline with the gateway's id
from XCom, and runs one ingestion update per hour in the triggerer.

MySQL has no catalog level: a MySQL database is the ``source_schema``. Tables with a primary key need no key in the
spec; ``order_events``, an append-only log without one, names its identifying columns.

Prerequisites: row-based binary logging enabled and retained long enough on the server, a user allowed to read it and
the tables (see the Lakeflow Connect MySQL docs), network access from the gateway's compute, and the Airflow connection
``mysql_orders`` with host, port, login and password.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import (
    LakeflowCreateConnectionOperator,
    LakeflowCreateIngestionPipelineOperator,
    LakeflowRunPipelineOperator,
)
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "mysql_orders"

GATEWAY_SPEC = {
    "name": "mysql-orders-gateway",
    "catalog": "main",
    "schema": "orders_staging",
    "continuous": True,
    "clusters": [{"label": "default", "node_type_id": "m5d.large", "num_workers": 1}],  # a node type of your cloud
    "gateway_definition": {
        "connection_name": CONNECTION_NAME,
        "gateway_storage_catalog": "main",
        "gateway_storage_schema": "orders_staging",
        "gateway_storage_name": "mysql-orders-gateway",
    },
}


def _table(name: str, **table_configuration) -> dict:
    body = {
        "source_schema": "orders",
        "source_table": name,
        "destination_catalog": "main",
        "destination_schema": "orders",
    }
    if table_configuration:
        body["table_configuration"] = table_configuration
    return {"table": body}


INGESTION_SPEC = {
    "name": "mysql-orders-ingestion",
    "serverless": True,
    "catalog": "main",
    "schema": "orders",
    "ingestion_definition": {
        "ingestion_gateway_id": "{{ ti.xcom_pull(task_ids='create_gateway') }}",
        "table_configuration": {"scd_type": "SCD_TYPE_1"},
        "objects": [
            _table("customers"),
            # Keep each status change of an order.
            _table("orders", scd_type="SCD_TYPE_2"),
            _table("order_items"),
            _table("order_events", primary_keys=["order_id", "event_seq"]),
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_mysql_cdc",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "mysql", "cdc", "public-preview"],
) as dag:
    create_connection = LakeflowCreateConnectionOperator(
        task_id="create_connection",
        name=CONNECTION_NAME,
        connection_type="MYSQL",
        options={
            "host": "{{ conn.mysql_orders.host }}",
            "port": "{{ conn.mysql_orders.port }}",
            "user": "{{ conn.mysql_orders.login }}",
            "password": "{{ conn.mysql_orders.password }}",
        },
        comment="Orders database, for Lakeflow Connect CDC (managed by Airflow)",
    )
    connection_ready = LakeflowConnectionReadySensor(
        task_id="wait_for_connection",
        connection_name=CONNECTION_NAME,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=30 * 60,
    )
    create_gateway = LakeflowCreateIngestionPipelineOperator(task_id="create_gateway", spec=GATEWAY_SPEC)
    ensure_gateway_running = LakeflowRunPipelineOperator(
        task_id="ensure_gateway_running",
        pipeline_id=create_gateway.output,
        on_active_update="reuse",
        wait_for_completion=False,
        cancel_on_kill=False,
    )
    create_ingestion = LakeflowCreateIngestionPipelineOperator(task_id="create_ingestion", spec=INGESTION_SPEC)
    run_ingestion = LakeflowRunPipelineOperator(
        task_id="run_ingestion",
        pipeline_id=create_ingestion.output,
        on_active_update="wait",
        deferrable=True,
        poll_interval=POLL_SECONDS,
        timeout=pendulum.duration(hours=2),
    )
    create_connection >> connection_ready >> create_gateway
    ensure_gateway_running >> create_ingestion
