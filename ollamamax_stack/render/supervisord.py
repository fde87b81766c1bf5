"""`render supervisord`: the supervisord configuration `ollamamax up` runs the stack with."""

from __future__ import annotations

from ollamamax_stack.registry.model import Registry
from ollamamax_stack.render.base import header, template
from ollamamax_stack.supervise.config import (
    SUPERVISOR_ENV,
    WATCHER,
    environment_line,
    escape,
    holder_program,
    programs,
    search_path,
    watcher_command,
)
from ollamamax_stack.supervise.paths import RunPaths

# supervisord's own grace before SIGKILL, a backstop: `down --timeout` (default 10 s) kills sooner.
STOP_WAIT_SECONDS = 30


def render_supervisord(registry: Registry) -> str:
    """The whole supervisord.conf for the registry's managed services (active profile)."""
    paths = RunPaths(registry.run_dir)
    common = {
        "PATH": search_path(),
        "PYTHONUNBUFFERED": "1",  # service output reaches the logs (and log probes) at once
        SUPERVISOR_ENV: str(registry.run_dir),
    }
    text = template("supervisord", "supervisord.conf").substitute(
        header=header("supervisord", registry.source),
        socket=escape(str(paths.socket)),
        logfile=escape(str(paths.supervisord_log)),
        pidfile=escape(str(paths.supervisord_pid)),
        logdir=escape(str(paths.logs)),
        identifier=escape(f"{registry.stack.name}-{registry.offset}"),
        environment=environment_line(common, expansions=2),
    )
    holder = holder_program(registry)
    if holder is not None:
        # Started with supervisord and restarted by it: every held port stays bound meanwhile.
        text += template("supervisord", "holder.conf").substitute(
            name=holder.name, command=escape(holder.command),
            directory=escape(str(holder.directory)), log=escape(escape(str(holder.log))),
            environment=environment_line(holder.environment))
    section = template("supervisord", "program.conf")
    for program in programs(registry):
        text += section.substitute(
            name=program.name,
            command=escape(program.command),
            directory=escape(str(program.directory)),
            stopwaitsecs=STOP_WAIT_SECONDS,
            log=escape(escape(str(program.log))),  # supervisord expands log paths twice
            # `[stack] logs`: supervisord rotates each service's log (name.log.1, .2, ...)
            log_max_bytes=registry.stack.logs.max_bytes,
            log_backups=registry.stack.logs.backups,
            environment=environment_line(program.environment),
        )
    text += template("supervisord", "watcher.conf").substitute(
        name=WATCHER,
        command=escape(watcher_command(registry)),
        directory=escape(str(registry.root)),
        log=escape(escape(str(paths.watcher_log))),
    )
    return text
