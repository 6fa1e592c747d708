"""Parsers for the SQL-like ``filter`` strings, page tokens and timestamps the list endpoints take."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from airflow_provider_lakeflow.testing.emulator.errors import invalid

_STRING = r"'((?:[^']|'')*)'"


def _unquote(s: str) -> str:
    return s.replace("''", "'")


def like_to_regex(pattern: str) -> re.Pattern[str]:
    """SQL LIKE: ``%`` any run, ``_`` one character; a backslash escapes the next character (``\\%``, ``\\_``)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


_NAME_LIKE = re.compile(rf"^\s*name\s+LIKE\s+{_STRING}\s*$", re.IGNORECASE | re.DOTALL)
_NOTEBOOK = re.compile(rf"^\s*notebook\s*=\s*{_STRING}\s*$", re.IGNORECASE | re.DOTALL)


def pipeline_filter(filter_: str | None) -> Callable[[dict[str, Any]], bool]:
    """``name LIKE '...'`` or ``notebook='<path>'`` (not composite), as the pipelines list API documents."""
    if not filter_:
        return lambda spec: True
    m = _NAME_LIKE.match(filter_)
    if m:
        rx = like_to_regex(_unquote(m.group(1)))
        return lambda spec: rx.fullmatch(spec.get("name") or "") is not None
    m = _NOTEBOOK.match(filter_)
    if m:
        path = _unquote(m.group(1))
        return lambda spec: any(
            (lib.get("notebook") or {}).get("path") == path
            for lib in spec.get("libraries") or []
            if isinstance(lib, dict)
        )
    raise invalid(f"filter: unsupported expression {filter_!r}; use name LIKE '<pattern>' or notebook='<path>'.")


_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
_LEVEL_EQ = re.compile(rf"^level\s*=\s*{_STRING}$", re.IGNORECASE)
_LEVEL_IN = re.compile(r"^level\s+IN\s*\((.*)\)$", re.IGNORECASE | re.DOTALL)
_ID_EQ = re.compile(rf"^id\s*=\s*{_STRING}$", re.IGNORECASE)
_TS = re.compile(rf"^timestamp\s*(>=|<=|>|<|=)\s*{_STRING}$", re.IGNORECASE)
_OPS: dict[str, Callable[[int, int], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
}


def _split_and(expr: str) -> list[str]:
    """Split on AND outside quotes."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == "'":
            quoted = not quoted
        if not quoted:
            m = _AND.match(expr, i)
            if m:
                parts.append("".join(buf).strip())
                buf = []
                i = m.end()
                continue
        buf.append(c)
        i += 1
    parts.append("".join(buf).strip())
    return parts


def _field_in(key: str, values: set[str]) -> Callable[[dict[str, Any]], bool]:
    return lambda ev: ev.get(key) in values


def _timestamp(op: Callable[[int, int], bool], ms: int) -> Callable[[dict[str, Any]], bool]:
    return lambda ev: op(ev["_ms"], ms)


def event_filter(filter_: str | None) -> Callable[[dict[str, Any]], bool]:
    """Documented event filters, ANDed: ``level='X'``, ``level in (...)``, ``id='...'``, ``timestamp <op> '...'``."""
    if not filter_ or not filter_.strip():
        return lambda ev: True
    preds: list[Callable[[dict[str, Any]], bool]] = []
    for clause in _split_and(filter_.strip()):
        if m := _LEVEL_EQ.match(clause):
            preds.append(_field_in("level", {_unquote(m.group(1)).upper()}))
        elif m := _LEVEL_IN.match(clause):
            levels = {_unquote(x).upper() for x in re.findall(_STRING, m.group(1))}
            if not levels:
                raise invalid(f"filter: empty level list in {clause!r}.")
            preds.append(_field_in("level", levels))
        elif m := _ID_EQ.match(clause):
            preds.append(_field_in("id", {_unquote(m.group(1))}))
        elif m := _TS.match(clause):
            preds.append(_timestamp(_OPS[m.group(1)], parse_timestamp_ms(_unquote(m.group(2)))))
        else:
            raise invalid(
                f"filter: unsupported clause {clause!r}; supported are level='X', level in ('A','B'), id='...' "
                "and timestamp >|>=|<|<=|= '...', combined with AND."
            )
    return lambda ev: all(p(ev) for p in preds)


def parse_timestamp_ms(text: str) -> int:
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise invalid(f"filter: cannot parse timestamp {text!r}; use RFC 3339 (2024-01-01T00:00:00.000Z).") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return int(value.timestamp() * 1000)


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, field: str = "page_token") -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except Exception:
        raise invalid(f"{field}: invalid page token {token!r}.") from None
    if not isinstance(data, dict):
        raise invalid(f"{field}: invalid page token {token!r}.")
    return data


def int_param(value: Any, field: str, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"{field}: expected an integer, got {value!r}.") from None


def bool_param(value: Any, field: str, default: bool | None = None) -> bool | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0"):
        return False
    raise invalid(f"{field}: expected true or false, got {value!r}.")
