"""SQL Server on premises into Unity Catalog with Lakeflow Connect: CDC through a gateway in your network.

For a database in your own data center, the ingestion *gateway* is what reaches it: a pipeline on classic compute
that runs continuously in your cloud network (a customer-managed VPC or VNet-injected workspace) with a route to the
database (VPN, ExpressRoute, Direct Connect or Interconnect, and the firewall open from the gateway's subnet to the
SQL Server port). The gateway reads the change log and stages it in a Unity Catalog volume; a serverless *ingestion
pipeline*, triggered from Airflow, lands the tables. Nothing serverless talks to the database.

This DAG:

1. creates (or updates) the Unity Catalog connection from the Airflow connection ``sqlserver_plant`` (host is the
   private address the gateway can reach; credentials templated and masked);
2. waits until the connection is ready;
3. creates the gateway (idempotent by name), on classic compute chosen by a cluster policy that pins it to the
   network with the route, and makes sure it is running;
4. creates the ingestion pipeline, fed the gateway's id through XCom (``ingestion_gateway_id``);
5. runs one ingestion update per hour and waits for it in the triggerer.

Table configuration for an operational database: tables with a primary key need none; a table without one (the
sensor readings log here) names the columns that identify a row. ``full_refresh_window`` keeps the snapshot queries
of a (re)load to the weekend night, off the plant's busy hours.

Prerequisites: change data capture or change tracking enabled on the database (see the Lakeflow Connect SQL Server
docs), network connectivity from the gateway's compute to the server, a cluster policy for the gateway (its id in the
Airflow Variable ``lakeflow_gateway_policy_id``), and an Airflow connection ``sqlserver_plant`` with host, port, login
and password.
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

# Against a real workspace 30 s is a sensible poll; the offline demo and tests set this lower.
POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "sqlserver_plant"

GATEWAY_SPEC = {
    "name": "sqlserver-plant-gateway",
    "catalog": "main",
    "schema": "plant_staging",
    # Classic compute, always on: the gateway follows the change log between ingestion runs.
    "continuous": True,
    "clusters": [
        {
            "label": "default",
            # The policy fixes the node type and the network (the subnet with the route to the data center).
            "policy_id": "{{ var.value.lakeflow_gateway_policy_id }}",
            "apply_policy_default_values": True,
            "num_workers": 1,
        }
    ],
    "gateway_definition": {
        "connection_name": CONNECTION_NAME,
        "gateway_storage_catalog": "main",
        "gateway_storage_schema": "plant_staging",
        "gateway_storage_name": "sqlserver-plant-gateway",
    },
}

INGESTION_SPEC = {
    "name": "sqlserver-plant-ingestion",
    "serverless": True,
    "catalog": "main",
    "schema": "plant",
    "ingestion_definition": {
        "ingestion_gateway_id": "{{ ti.xcom_pull(task_ids='create_gateway') }}",
        "full_refresh_window": {
            "start_hour": 1,
            "days_of_week": ["SATURDAY", "SUNDAY"],
            "time_zone_id": "Europe/Berlin",
        },
        "table_configuration": {"scd_type": "SCD_TYPE_1"},
        "objects": [
            {
                "table": {
                    "source_catalog": "mes",
                    "source_schema": "dbo",
                    "source_table": "work_orders",
                    "destination_catalog": "main",
                    "destination_schema": "plant",
                    # Keep every status change of a work order.
                    "table_configuration": {"scd_type": "SCD_TYPE_2"},
                }
            },
            {
                "table": {
                    "source_catalog": "mes",
                    "source_schema": "dbo",
                    "source_table": "machines",
                    "destination_catalog": "main",
                    "destination_schema": "plant",
                }
            },
            {
                "table": {
                    "source_catalog": "mes",
                    "source_schema": "dbo",
                    "source_table": "sensor_readings",
                    "destination_catalog": "main",
                    "destination_schema": "plant",
                    # No primary key in the source: say which columns identify a reading.
                    "table_configuration": {"primary_keys": ["machine_id", "sensor_id", "read_at"]},
                }
            },
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_sqlserver_onprem",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "sqlserver", "cdc", "on-premises"],
) as dag:
    create_connection = LakeflowCreateConnectionOperator(
        task_id="create_connection",
        name=CONNECTION_NAME,
        connection_type="SQLSERVER",
        options={
            "host": "{{ conn.sqlserver_plant.host }}",
            "port": "{{ conn.sqlserver_plant.port }}",
            "user": "{{ conn.sqlserver_plant.login }}",
            "password": "{{ conn.sqlserver_plant.password }}",
            # On premises the server usually has a certificate from an internal CA that the gateway trusts through
            # its own configuration; set this to "false" once it does.
            "trustServerCertificate": "true",
        },
        comment="Plant MES database on premises, read by the Lakeflow gateway (managed by Airflow)",
    )
    connection_ready = LakeflowConnectionReadySensor(
        task_id="wait_for_connection",
        connection_name=CONNECTION_NAME,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=30 * 60,
    )
    create_gateway = LakeflowCreateIngestionPipelineOperator(task_id="create_gateway", spec=GATEWAY_SPEC)
    # Starts the gateway when it is not running (after maintenance, say); adopts its update when it is. Never stops it.
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
