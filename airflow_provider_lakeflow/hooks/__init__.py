"""Hooks: ``LakeflowHook`` for the workspace REST API."""

from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

__all__ = ["LakeflowHook"]
