"""Operator extra links."""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom


class LakeflowUpdateLink(BaseOperatorLink):
    """ "Lakeflow Update": the workspace page of the update the task started (from its ``update_url`` XCom)."""

    name = "Lakeflow Update"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        url = XCom.get_value(ti_key=ti_key, key="update_url")
        return url if isinstance(url, str) else ""
