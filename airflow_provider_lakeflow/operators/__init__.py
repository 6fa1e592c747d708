"""Operators. Importing this package (DAG parsing) loads neither databricks-sdk nor aiohttp."""

from airflow_provider_lakeflow.operators.connection import LakeflowCreateConnectionOperator
from airflow_provider_lakeflow.operators.create_pipeline import LakeflowCreateIngestionPipelineOperator
from airflow_provider_lakeflow.operators.pipeline import LakeflowDeletePipelineOperator, LakeflowStopPipelineOperator
from airflow_provider_lakeflow.operators.run_pipeline import LakeflowRunPipelineOperator

__all__ = [
    "LakeflowCreateConnectionOperator",
    "LakeflowCreateIngestionPipelineOperator",
    "LakeflowDeletePipelineOperator",
    "LakeflowRunPipelineOperator",
    "LakeflowStopPipelineOperator",
]
