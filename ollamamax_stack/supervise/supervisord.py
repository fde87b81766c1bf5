"""supervisord as the stack runs it, changed in one place so that a full disk cannot end it.

When a log write fails, supervisord's handlers print the traceback to supervisord's stderr.
On a full disk that print fails too, the exception escapes its main loop, and supervisord dies
with every service under it. Here a log write that fails is dropped; the services run on and
their logs resume once there is room again.
"""

from __future__ import annotations

from supervisor import loggers
from supervisor.supervisord import main

MODULE = "ollamamax_stack.supervise.supervisord"  # how `up` runs it, and how it is recognised

_report_failed_write = loggers.Handler.handleError


def _drop_failed_write(self: loggers.Handler) -> None:
    try:
        _report_failed_write(self)
    except OSError:
        pass  # the disk is full or gone: nowhere to say so, and no reason to stop supervising


def run() -> None:
    """Run supervisord with its arguments, failed log writes dropped."""
    loggers.Handler.handleError = _drop_failed_write
    main()


if __name__ == "__main__":
    run()
