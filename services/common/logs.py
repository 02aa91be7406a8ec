"""Structured logging: one JSON object per line on stdout.

Only ``main`` modules call :func:`configure_logging`; library modules just
``logging.getLogger(__name__)``. Messages are fixed event names and the
variable parts go in ``extra=`` fields, which must hold ids, counts, sizes
and offsets only, never document text or personal data.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# The client program behind the current request (its User-Agent), for the
# audit trail only; it is never logged.
user_agent_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "user_agent", default=""
)
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default=""
)

# Attributes every LogRecord has; anything else came in through extra=.
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Client libraries that narrate every connection and rebalance at INFO; only
# their warnings and errors are worth a line in a service's log.
_CHATTY_LIBRARIES = ("kafka", "opensearch", "urllib3")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "event": record.msg,
            "request_id": request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["exc_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for library in _CHATTY_LIBRARIES:
        logging.getLogger(library).setLevel(max(root.level, logging.WARNING))
