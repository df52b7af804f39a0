"""Where the quick start's logs go: every record to files, the terminal kept quiet.

The gateway and the platform app run in one process, and each request passes both: at INFO
every request wrote three or four lines to the terminal (88,000 in one test run, issue 21 §4),
while the log folder the banner names held only PostgreSQL's and Redis's. So:

- ``<data>/logs/mobileplane.log`` gets every record at INFO and above from every service
  (both access logs, the gateway's upstream lines, the services' own), one JSON object per
  line as a pod writes them, so lines join on ``request_id``;
- ``<data>/logs/access.log`` gets one text line per request a client sent (the gateway's
  access log);
- the terminal gets warnings and errors only, and with ``--verbose`` also the gateway's
  access line: one line per request, never more.

Files rotate (:data:`MAX_BYTES` × :data:`BACKUPS`) so a long session cannot fill the disk.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import IO

from mobileplane.services.kit.logging import ContextFilter, JsonFormatter, quiet_libraries

ACCESS_LOGGER = "mobileplane.access"
#: The app whose access lines are the client's view of a request (the platform app's are
#: the same request seen again behind it).
FRONT = "gateway"
#: 10 MB a file and three old ones kept: a day of tests fits, a forgotten session stops there.
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 3
_HANDLER_NAME = "mobileplane-quickstart"
_TERMINAL_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_ACCESS_FORMAT = "%(asctime)s %(message)s %(duration_ms)sms %(request_id)s"


def is_front_access(record: logging.LogRecord) -> bool:
    """Whether ``record`` is the gateway's access line for a request."""
    return record.name == ACCESS_LOGGER and getattr(record, "service", None) == FRONT


def on_terminal(record: logging.LogRecord, *, verbose: bool) -> bool:
    """Whether ``record`` is shown on the terminal: warnings and errors always, and with
    ``verbose`` the one access line per request."""
    if record.levelno >= logging.WARNING:
        return True
    return verbose and record.levelno >= logging.INFO and is_front_access(record)


def log_files(log_dir: Path) -> dict[str, Path]:
    """The quick start's own log files, by what they hold."""
    return {"every service": log_dir / "mobileplane.log", "requests": log_dir / "access.log"}


def configure(log_dir: Path, *, verbose: bool = False, terminal: IO[str] | None = None) -> None:
    """Send the process's logs to ``log_dir`` and (filtered) to ``terminal`` (stderr);
    calling it again replaces the previous setup."""
    log_dir.mkdir(parents=True, exist_ok=True)
    files = log_files(log_dir)
    everything = _rotating(files["every service"])
    everything.setFormatter(JsonFormatter())
    access = _rotating(files["requests"])
    access.addFilter(is_front_access)
    access.setFormatter(logging.Formatter(_ACCESS_FORMAT))
    shown = logging.StreamHandler(terminal or sys.stderr)
    shown.addFilter(lambda record: on_terminal(record, verbose=verbose))
    shown.setFormatter(logging.Formatter(_TERMINAL_FORMAT))

    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(existing)
        existing.close()
    for handler in (everything, access, shown):
        handler.addFilter(ContextFilter())
        handler.set_name(_HANDLER_NAME)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet_libraries()


def _rotating(path: Path) -> logging.Handler:
    return logging.handlers.RotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
