"""Deferrable triggers: native asyncio polling through ``LakeflowHook.arun``."""

from airflow_provider_lakeflow.triggers.pipeline import LakeflowPipelineUpdateTrigger

__all__ = ["LakeflowPipelineUpdateTrigger"]
