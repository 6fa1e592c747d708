"""A small SQL lexer: just enough to find parameter markers outside string literals, quoted names and comments.

Used by ``LakeflowSqlHook`` to turn ``%(name)s``, ``%s`` and ``?`` markers into the ``:name`` markers of the Statement
Execution API, and by the emulator to translate Databricks SQL for DuckDB. It never touches the text of literals: values
are always bound as parameters, never formatted into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

CODE = "code"
STRING = "string"  # '...' or "..." (string literals in Databricks SQL)
IDENT = "ident"  # `...`
COMMENT = "comment"

_SPECIAL = re.compile(r"'|\"|`|--|/\*")


def tokens(sql: str) -> Iterator[tuple[str, str]]:
    """Split ``sql`` into (kind, text) pieces whose concatenation is ``sql``.

    Strings end at an unescaped quote: a backslash escapes the next character (Databricks) and a doubled quote is one
    quote (standard SQL), so both dialects lex the same way. An unterminated literal or comment runs to the end.
    """
    pos, n = 0, len(sql)
    while pos < n:
        m = _SPECIAL.search(sql, pos)
        if m is None:
            yield CODE, sql[pos:]
            return
        if m.start() > pos:
            yield CODE, sql[pos : m.start()]
        start, opener = m.start(), m.group()
        if opener == "--":
            end = sql.find("\n", start)
            end = n if end < 0 else end
            yield COMMENT, sql[start:end]
        elif opener == "/*":
            end = sql.find("*/", start + 2)
            end = n if end < 0 else end + 2
            yield COMMENT, sql[start:end]
        else:
            end = _end_of_quoted(sql, start, opener)
            yield IDENT if opener == "`" else STRING, sql[start:end]
        pos = end


def _end_of_quoted(sql: str, start: int, quote: str) -> int:
    i, n = start + 1, len(sql)
    while i < n:
        c = sql[i]
        if c == "\\" and quote != "`":
            i += 2
            continue
        if c == quote:
            if i + 1 < n and sql[i + 1] == quote:  # doubled quote
                i += 2
                continue
            return i + 1
        i += 1
    return n


def unquote_string(literal: str) -> str:
    """The value of a '...' or "..." literal (backslash escapes and doubled quotes resolved)."""
    quote, body = literal[0], literal[1:-1] if len(literal) > 1 and literal[-1] == literal[0] else literal[1:]
    out: list[str] = []
    escapes = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "Z": "\x1a", "%": "\\%", "_": "\\_"}
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
        elif c == quote and i + 1 < len(body) and body[i + 1] == quote:
            out.append(quote)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)
