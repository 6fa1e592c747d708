"""Operators. Importing this package (DAG parsing) loads neither databricks-sdk nor aiohttp."""

from airflow_provider_lakeflow.operators.connection import LakeflowCreateConnectionOperator
from airflow_provider_lakeflow.operators.pipeline import (
    LakeflowCreateIngestionPipelineOperator,
    LakeflowDeletePipelineOperator,
    LakeflowRunPipelineOperator,
    LakeflowStopPipelineOperator,
)

__all__ = [
    "LakeflowCreateConnectionOperator",
    "LakeflowCreateIngestionPipelineOperator",
    "LakeflowDeletePipelineOperator",
    "LakeflowRunPipelineOperator",
    "LakeflowStopPipelineOperator",
]
