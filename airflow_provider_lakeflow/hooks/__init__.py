"""Hooks: ``LakeflowHook`` for the workspace REST API, ``LakeflowSqlHook`` for SQL (common-sql ``DbApiHook``).

``LakeflowSqlHook`` is resolved on first access so that importing this package does not load common-sql's hook module
(and, through it, SQLAlchemy and sqlparse) for code that never runs SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

if TYPE_CHECKING:
    from airflow_provider_lakeflow.hooks.sql import LakeflowSqlHook

__all__ = ["LakeflowHook", "LakeflowSqlHook"]


def __getattr__(name: str) -> Any:
    if name == "LakeflowSqlHook":
        from airflow_provider_lakeflow.hooks.sql import LakeflowSqlHook

        return LakeflowSqlHook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
