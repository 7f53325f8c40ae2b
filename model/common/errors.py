"""The one exception type for a user's data or configuration mistake. The CLI prints its message
as a single line and exits with status 2 (no traceback); anything else is a bug.

Names read from a user's file (image file names, keys, ids) go through :func:`quote_name` before
they reach a message: a control character in a name must not break the one-line contract or fake
an ``error:`` line of its own."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message names the file and the record at fault."""


def quote_name(name: object) -> str:
    """``name`` made safe for a one-line message: unchanged when every character is printable
    (ordinary file names read as before), else Python's ``repr`` of it, so control characters
    (newline, carriage return, escape, NUL ...) show as escapes: ``'a\\nerror: b.jpg'``."""
    text = str(name)
    if text and text.isprintable() and text == text.strip():
        return text
    return repr(text)


def one_line(message: str) -> str:
    """``message`` with every control character escaped (the CLI's last line of defence: a
    message built from unquoted data still prints as exactly one line)."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
                   for c in message)
