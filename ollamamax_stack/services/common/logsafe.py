"""Logging that no request can forge: control characters escaped, tokens redacted."""

from __future__ import annotations

import logging
import sys
from types import TracebackType

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ollamamax_stack.services.common.textsafe import printable, redact_tokens

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class SafeFormatter(logging.Formatter):
    """One record, one line: control characters in messages and arguments are escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        """The record's line with its control characters escaped."""
        return printable(super().formatMessage(record))

    def formatException(self, ei: ExcInfo) -> str:  # noqa: N802 - logging's name
        """A traceback keeps its lines, but no line keeps a control character."""
        return "\n".join(printable(line) for line in super().formatException(ei).split("\n"))


def setup_logging() -> None:
    """Log to stderr through the SafeFormatter (the services' only logging set-up)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


class SafeAccessLogger(AbstractAccessLogger):
    """`remote "METHOD path HTTP/x" status bytes seconds "agent"`, with `?token=` redacted."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Write one access line."""
        version = request.version
        target = redact_tokens(request.raw_path.split("?", 1)[0], request.query_string)
        line = (f'{request.remote or "-"} "{request.method} {target} '
                f'HTTP/{version.major}.{version.minor}" {response.status} '
                f'{response.body_length} {time:.3f}s '
                f'"{request.headers.get("User-Agent", "-")}"')
        self.logger.info("%s", printable(line))
