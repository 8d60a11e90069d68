"""Logging set-up: plain lines or JSON lines (``server.log_format``).

Logged values can come from clients (a request path, a header). In the text format, control and
other non-printable characters are escaped, so a value cannot end its line and forge another, and
continuation lines (tracebacks) are indented, so only a record's first line starts at column 0.
The JSON format is safe as it is: ``json.dumps`` escapes them (``ensure_ascii``).
"""

from __future__ import annotations

import json
import logging
import sys
import time


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def escape(text: str) -> str:
    """``text`` on one line: a backslash doubled, anything non-printable as its Python escape (``\\n``, ``\\x1b``)."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(ch if ch.isprintable() and ch != "\\" else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def field_value(value: object) -> str:
    """A ``key=value`` field's value, quoted when it has a space, quote or ``=``, so it cannot pose as more fields."""
    text = escape(str(value))
    if text and not any(ch in text for ch in ' "='):
        return text
    return '"' + text.replace('"', '\\"') + '"'


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message key=value...``, one line per record (plus an indented traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {escape(record.getMessage())}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{escape(str(k))}={field_value(v)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self._indented(self.formatException(record.exc_info))
        if record.stack_info:
            line += "\n" + self._indented(self.formatStack(record.stack_info))
        return line

    @staticmethod
    def _indented(block: str) -> str:
        return "\n".join("    " + escape(part) for part in block.split("\n"))


def setup_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's own access log is replaced by our request-log middleware (no query strings).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
