"""supervisord as the stack runs it, changed in one place: stamped log lines, and a full disk.

Every line a program writes is stamped with the time supervisord read it (supervise/logstamp.py),
so `ollamamax logs` can interleave services by time and filter by `--since`.

When a log write fails, supervisord's handlers print the traceback to supervisord's stderr.
On a full disk that print fails too, the exception escapes its main loop, and supervisord dies
with every service under it. Here a log write that fails is dropped; the services run on and
their logs resume once there is room again.
"""

from __future__ import annotations

from typing import Any

from supervisor import dispatchers, loggers
from supervisor.supervisord import main

from ollamamax_stack.supervise.logstamp import Stamper

MODULE = "ollamamax_stack.supervise.supervisord"  # how `up` runs it, and how it is recognised

_report_failed_write = loggers.Handler.handleError


def _drop_failed_write(self: loggers.Handler) -> None:
    try:
        _report_failed_write(self)
    except OSError:
        pass  # the disk is full or gone: nowhere to say so, and no reason to stop supervising


_log_output = dispatchers.POutputDispatcher._log


def _log_stamped(self: Any, data: bytes) -> None:
    # One Stamper per output stream: it knows whether the chunk begins a line.
    stamper = self.__dict__.get("_ollamamax_stamper")
    if stamper is None:
        stamper = self.__dict__.setdefault("_ollamamax_stamper", Stamper())
    _log_output(self, stamper(data) if isinstance(data, bytes) else data)


def run() -> None:
    """Run supervisord with its arguments: log lines stamped, failed log writes dropped."""
    loggers.Handler.handleError = _drop_failed_write
    dispatchers.POutputDispatcher._log = _log_stamped
    main()


if __name__ == "__main__":
    run()
