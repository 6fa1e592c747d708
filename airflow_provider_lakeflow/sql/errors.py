"""The PEP 249 exceptions of the SQL hook's DB-API module, and the three a statement's end raises."""

from __future__ import annotations


class Warning(Exception):
    """PEP 249 Warning."""


class Error(Exception):
    """PEP 249 base error."""


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


class StatementFailed(DatabaseError):
    """The warehouse ran the statement and it failed (``status.state == FAILED``); the message is the server's."""

    def __init__(self, statement_id: str, message: str, error_code: str | None, sql_state: str | None) -> None:
        detail = f" (SQLSTATE {sql_state})" if sql_state and sql_state not in message else ""
        super().__init__(f"Statement {statement_id} failed: {message}{detail}")
        self.statement_id = statement_id
        self.error_code = error_code
        self.sql_state = sql_state


class StatementCanceled(OperationalError):
    """The statement ended CANCELED (or CLOSED) before it produced a result."""


class StatementTimeout(OperationalError):
    """The statement ran longer than ``statement_timeout``; it was canceled."""
