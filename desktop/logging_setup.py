"""The app's log file: ``<user log dir>/storedesk.log``, rotated, secrets redacted.

A support person asks for this file first, so it must exist from the first second and
must never contain a password or a bearer token: :class:`RedactSecrets` scrubs every
record before any handler sees it.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

import platformdirs

from core.cache import APP_AUTHOR, APP_NAME

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"

_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"""(?i)(["']?(?:password|passwd|token|access_token|authorization)["']?\s*[:=]\s*["']?)"""
        r"""(?!bearer\b|\*\*\*)[^\s"',}]+"""
    ),
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class RedactSecrets(logging.Filter):
    """Replaces tokens and passwords in a record's final message with ***."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not kill logging
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def default_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))


_installed: list[logging.Handler] = []


def setup_logging(log_dir: Path | None = None, level: int = logging.INFO) -> Path:
    """Install the rotating file handler (idempotent); returns the log file path."""
    log_dir = log_dir or default_log_dir()
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "storedesk.log"
    root = logging.getLogger()
    for h in _installed:
        if getattr(h, "baseFilename", None) == str(path):
            return path
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=2_000_000, backupCount=5, encoding="utf-8", delay=True
    )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RedactSecrets())
    root.addHandler(handler)
    _installed.append(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    return path


def teardown_logging() -> None:
    """Remove the handlers installed here (tests, and sign-out of a test app)."""
    root = logging.getLogger()
    while _installed:
        h = _installed.pop()
        root.removeHandler(h)
        h.close()
