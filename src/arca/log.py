"""The one logging configuration, used by `arca serve` (every worker) and every command.

Two formats of the same records, to stderr:

- `text`, for a terminal: `2026-12-01T09:30:00.123Z INFO  arca.access GET /v2/ 200 ·
  method=GET route=/v2/ status=200 ... request_id=...`: the message, then every fact
  the caller passed in `extra`, as key=value;
- `json`, for a log collector: one object per line with `time`, `level`, `logger`,
  `message`, the facts as fields, and `exception` (the traceback) when there is one.

Every record logged while a request is served carries its `request_id` (a context
variable set by api/observe.py), so a storage error can be traced to its access line.
arca's loggers, uvicorn's and the access log (`arca.access`) follow `log_level`; other
libraries' loggers stay at warning, so `debug` is arca's debugging, not botocore's.

uvicorn answers bytes that are not HTTP (skopeo and crane open with a TLS ClientHello to
find out whether a registry speaks TLS) with a 400 and a warning, "Invalid HTTP request
received.", once per probe. That is routine for a plain-HTTP registry, so the warning is
turned into one explanatory debug line (`TlsProbeFilter`).
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import logging.config
import re
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "arca_request_id", default=None
)

TRACE = 5  # uvicorn's level below debug
_LEVELS = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO}
_LEVELS |= {"warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}
# Attributes every LogRecord has: anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
_UVICORN_PROBE = "Invalid HTTP request received."
TLS_PROBE_MESSAGE = (
    "non-HTTP bytes on the plain-HTTP port, answered 400: most likely a client probing"
    " for TLS (skopeo, crane and podman do, then retry over HTTP)"
)


def facts(record: logging.LogRecord) -> dict[str, Any]:
    """What the caller passed in `extra` (and the request id), in the order given."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _time(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _level(record: logging.LogRecord) -> str:
    return "TRACE" if record.levelno == TRACE else record.levelname


class TextFormatter(logging.Formatter):
    """One readable line per record (a traceback, if any, on the lines below)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_time(record)} {_level(record):<7} {record.name} {record.getMessage()}"
        details = facts(record)
        if details:
            line += " · " + " ".join(f"{k}={_text(v)}" for k, v in details.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the facts, exception."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _time(record),
            "level": _level(record).lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in facts(record).items():
            document.setdefault(key, value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


# What makes a value need quotes: `\s` is str.isspace's set (both use Py_UNICODE_ISSPACE).
_NEEDS_QUOTES = re.compile(r"[\s\"'=]")


def _text(value: Any) -> str:
    # One regex search, not a Python generator step per character: every access line
    # renders a dozen values (the request id alone is 32 characters).
    text = str(value)
    if not text or _NEEDS_QUOTES.search(text):
        return json.dumps(text, ensure_ascii=False)
    return text


class RequestIdFilter(logging.Filter):
    """Adds the request id of the request being served, if any, to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            current = request_id.get()
            if current is not None:
                record.request_id = current
        return True


class TlsProbeFilter(logging.Filter):
    """uvicorn's "Invalid HTTP request received." warning, as one debug line."""

    def __init__(self, level: str = "info") -> None:
        super().__init__()
        self.enabled = _LEVELS[level] <= logging.DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != _UVICORN_PROBE:
            return True
        record.msg, record.args = TLS_PROBE_MESSAGE, ()
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self.enabled


def logging_config(
    level: str = "info", log_format: str = "text", access_log: bool = True
) -> dict[str, Any]:
    """A `logging.config.dictConfig` document; uvicorn applies it in every worker."""
    numeric = _LEVELS[level]
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    ours = {"level": numeric, "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"arca": {"()": f"{__name__}.{formatter.__name__}"}},
        "filters": {
            "request_id": {"()": f"{__name__}.RequestIdFilter"},
            "tls_probe": {"()": f"{__name__}.TlsProbeFilter", "level": level},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "arca",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            "arca": ours,
            "arca.access": {
                "level": numeric if access_log else logging.CRITICAL + 1,
                "propagate": True,
            },
            "uvicorn": {"level": numeric, "handlers": [], "propagate": True},
            "uvicorn.error": {**ours, "filters": ["tls_probe"]},
            "uvicorn.access": {"level": logging.WARNING, "propagate": True},  # arca.access
        },
        "root": {"level": max(numeric, logging.WARNING), "handlers": ["stderr"]},
    }


def configure(level: str = "info", log_format: str = "text", access_log: bool = True) -> None:
    """Configure logging for this process (a command; `arca serve` hands the same to
    uvicorn, which applies it in each worker)."""
    logging.addLevelName(TRACE, "TRACE")
    logging.config.dictConfig(logging_config(level, log_format, access_log))
