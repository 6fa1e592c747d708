"""Exceptions for bad input: a ``ValueError`` to Python and an ``AirflowFailException`` to Airflow, so a task with
retries does not retry a mistake that only a change to the DAG can fix."""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowFailException


class LakeflowInputError(ValueError, AirflowFailException):
    """An argument, spec or connection option that can never work; the message names the field and the fix."""
