"""Sensors. Importing this package (DAG parsing) loads neither databricks-sdk nor aiohttp."""

from airflow_provider_lakeflow.sensors.connection import LakeflowConnectionReadySensor
from airflow_provider_lakeflow.sensors.pipeline import LakeflowPipelineUpdateSensor

__all__ = ["LakeflowConnectionReadySensor", "LakeflowPipelineUpdateSensor"]
