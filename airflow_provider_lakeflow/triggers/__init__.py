"""Deferrable triggers: native asyncio polling through ``LakeflowHook.arun``."""

from airflow_provider_lakeflow.triggers.connection import LakeflowConnectionReadyTrigger
from airflow_provider_lakeflow.triggers.events import LakeflowTableLandedTrigger, LakeflowUpdateEventTrigger
from airflow_provider_lakeflow.triggers.freshness import LakeflowPipelineFreshnessTrigger
from airflow_provider_lakeflow.triggers.pipeline import LakeflowPipelineUpdateTrigger

__all__ = [
    "LakeflowConnectionReadyTrigger",
    "LakeflowPipelineFreshnessTrigger",
    "LakeflowPipelineUpdateTrigger",
    "LakeflowTableLandedTrigger",
    "LakeflowUpdateEventTrigger",
]
