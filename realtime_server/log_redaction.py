"""Tickets and keys kept out of the logs of the libraries that see handshakes.

uvicorn logs each WebSocket path with its query string (`?fal_jwt_token=` holds a ticket), and at
debug level websockets logs every handshake header, `Authorization` (relay keys, fal's key)
included. The relay's own log lines never carry either.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

# Loggers that see handshakes: uvicorn's (the client side) and websockets' client (the upstream side).
HANDSHAKE_LOGGERS = ("uvicorn.error", "websockets.client")
_QUERY_PARAM = re.compile(r"([?&])([^=&\s\"'#]+)=([^&\s\"'#]*)")
_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def _redact_query(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        # Compare the name as the relay decodes it: `fal%5Fjwt%5Ftoken` is a ticket too.
        if unquote_plus(match.group(2)) == "fal_jwt_token":
            return f"{match.group(1)}{match.group(2)}=[redacted]"
        return match.group(0)

    return _QUERY_PARAM.sub(replace, text) if "=" in text else text


class RedactSecrets(logging.Filter):
    """Keep tickets and keys out of log lines.

    uvicorn logs each WebSocket path with its query string, and at debug level websockets logs
    every handshake header, `Authorization` (relay keys, fal's key) included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            if len(args) == 2 and str(args[0]).lower() in _SECRET_HEADERS:
                args = (args[0], "[redacted]")
            record.args = tuple(_redact_query(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str):
            record.msg = _redact_query(record.msg)
        return True


def redact_handshake_logs() -> None:
    """Filter the handshake loggers once per process, however many apps are built."""
    for name in HANDSHAKE_LOGGERS:
        handshake_logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in handshake_logger.filters):
            handshake_logger.addFilter(RedactSecrets())
