"""The provider's exceptions: bad input (a ``ValueError`` to Python and an ``AirflowFailException`` to Airflow, so a
task with retries does not retry a mistake that only a change to the DAG can fix), and failed updates."""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class LakeflowInputError(ValueError, AirflowFailException):
    """An argument, spec or connection option that can never work; the message names the field and the fix."""


class LakeflowUpdateFailed(AirflowException):
    """A pipeline update failed (or was cancelled, or landed no data with ``on_no_data="fail"``).

    ``category`` (see the troubleshooting docs), ``error_classes`` (the documented error conditions, e.g.
    ``"SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE"``), ``tables`` (destination tables), ``fix`` (what to
    do) and ``update_url``; the message leads with them, then the event log's raw messages. A failure that no Airflow
    retry can fix is raised as :class:`LakeflowUpdateFailedNoRetry`, which is also an ``AirflowFailException``.
    """

    def __init__(
        self,
        message: str,
        *,
        category: str,
        error_classes: list[str],
        tables: list[str],
        fix: str,
        update_url: str,
    ) -> None:
        super().__init__(message)
        self.category = category
        self.error_classes = list(error_classes)
        self.tables = list(tables)
        self.fix = fix
        self.update_url = update_url

    def __reduce__(self) -> Any:  # picklable with its keyword-only attributes (Airflow ships exceptions around)
        return (
            _rebuild_update_failed,
            (type(self), str(self), self.category, self.error_classes, self.tables, self.fix, self.update_url),
        )


class LakeflowUpdateFailedNoRetry(LakeflowUpdateFailed, AirflowFailException):
    """A :class:`LakeflowUpdateFailed` whose category no retry can fix: Airflow fails the task without retrying."""


def _rebuild_update_failed(cls: type[LakeflowUpdateFailed], message: str, *fields: Any) -> LakeflowUpdateFailed:
    category, error_classes, tables, fix, update_url = fields
    return cls(message, category=category, error_classes=error_classes, tables=tables, fix=fix, update_url=update_url)
