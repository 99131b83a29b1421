"""Logging for post-mortems: UTC with milliseconds and the node's region on every line, and the
request id of the REST call being served, so that several nodes' logs merge and sort by time
and a provider's call can be followed into the federation messages it caused.

Two formats: text (default) and JSON lines (``--log-format json`` or ``[logging] format``):
``{"ts": …, "region": …, "level": …, "logger": …, "request_id": …, "message": …}``. Either way
a record is one line, and no credential is ever written (``redact``).
"""

from __future__ import annotations

import contextvars
import io
import json
import logging
import re
import sys
import threading
import time
from typing import Any

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def current_request_id() -> str:
    """The id of the request being served, "" outside one."""
    found = REQUEST_ID.get()
    return "" if found == "-" else found


# Credentials never reach a log line, whoever writes it (this node, aiohttp's server and access
# loggers, a library's traceback): bearer tokens and Authorization values, this node's token
# formats (slo_/slh_/slp_ + secret) and one-time spend codes (sac_<region>_<secret>), whole or
# cut short, in the message and in any exception text. Applied to the final line.
_SECRETS = re.compile(
    r"(?i)(?P<keep>authorization\s*[:=]\s*)[^'\"\r\n]*"
    r"|(?P<bearer>bearer\s+)[^\s'\",;]+"
    r"|\b(?P<prefix>sl[ohp]_|sac_[0-9]{6}_)[A-Za-z0-9_\-]+"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """The text with every credential replaced by ``[redacted]`` (its kind kept)."""
    return _SECRETS.sub(
        lambda m: (m.group("keep") or m.group("bearer") or m.group("prefix") or "") + REDACTED,
        text,
    )


class _Context(logging.Filter):
    def __init__(self, region: str) -> None:
        super().__init__()
        self.region = region

    def filter(self, record: logging.LogRecord) -> bool:
        record.region = self.region
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    """One line per record: a traceback is folded onto it (`` | `` between its lines), so that
    every line of the log starts with its time, and credentials are redacted."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if getattr(record, "stray", None):
            line += "\n" + str(getattr(record, "stray", ""))
        return redact(line.replace("\n", " | "))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, credentials redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(self._format(record))

    def _format(self, record: logging.LogRecord) -> str:
        ts = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z"
        )
        entry = {
            "ts": ts,
            "region": getattr(record, "region", ""),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif getattr(record, "stray", None):
            entry["exception"] = str(getattr(record, "stray", ""))
        return json.dumps(entry, ensure_ascii=False)


class StrayLines(io.TextIOBase):
    """What a library writes to ``sys.stderr`` itself (gRPC prints a cancelled call's
    traceback after logging it), turned into log records in the node's format: a traceback
    (``Traceback …`` and its indented lines, up to the exception line) becomes one record with
    the traceback as its exception text, any other line a record of its own."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self._logger = logger
        self._partial = ""
        self._traceback: list[str] = []
        self._lock = threading.Lock()
        self._inside = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if getattr(self._inside, "active", False):  # logging itself failed: say it raw
            if sys.__stderr__ is not None:
                sys.__stderr__.write(text)
            return len(text)
        with self._lock:
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
            self._inside.active = True
            try:
                for line in lines:
                    self._line(line)
            finally:
                self._inside.active = False
        return len(text)

    def _line(self, line: str) -> None:
        if line.startswith("Traceback (most recent call last):"):
            self._traceback = [line]
        elif self._traceback and (line.startswith(" ") or not line.strip()):
            self._traceback.append(line)
        elif self._traceback:
            self._traceback.append(line)
            self._logger.error(
                "%s (printed by a library)", line, extra={"stray": "\n".join(self._traceback)}
            )
            self._traceback = []
        elif line.strip():
            self._logger.warning("%s", line)

    def flush(self) -> None:
        with self._lock:
            if self._partial:
                self._line(self._partial)
                self._partial = ""


def setup(region: str, level: int = logging.INFO, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.__stderr__)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        formatter = TextFormatter(
            "%(asctime)s.%(msecs)03dZ %(region)s %(levelname)s %(name)s [%(request_id)s]: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    handler.addFilter(_Context(region))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # What Python would print raw on stderr goes through the log instead, in its format:
    # warnings, an exception nobody caught (in the main thread, another thread, or a
    # finalizer), each with its traceback folded into the line or the JSON "exception" field.
    logging.captureWarnings(True)
    crashed = logging.getLogger("suanli.uncaught")

    def excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        crashed.critical("uncaught %s", kind.__name__, exc_info=(kind, exc, tb))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        crashed.error(
            "uncaught %s in thread %s",
            args.exc_type.__name__,
            name,
            exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
        )

    def unraisable_hook(unraisable: Any) -> None:
        crashed.error(
            "%s: %r",
            unraisable.err_msg or "exception ignored",
            unraisable.object,
            exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback),
        )

    sys.stderr = StrayLines(logging.getLogger("suanli.stderr"))
    sys.excepthook = excepthook
    threading.excepthook = thread_hook
    sys.unraisablehook = unraisable_hook
