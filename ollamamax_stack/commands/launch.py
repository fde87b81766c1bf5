"""`ollamamax launch redis|postgres|prometheus`: run a `full` profile dependent on its port."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ollamamax_stack.commands import common
from ollamamax_stack.errors import UsageError
from ollamamax_stack.markers import SERVICE_ENV

PROGRAMS = ("redis", "postgres", "prometheus")


def register(app: typer.Typer) -> None:
    """Add the `launch` command to the root app."""
    app.command("launch", help="Run a dependent (redis, postgres, prometheus) from its "
                               "Debian package on its registry port; exit 69 if not installed.")(
        launch_command)


def launch_command(
    ctx: typer.Context,
    program: Annotated[str, typer.Argument(help=f"One of: {', '.join(PROGRAMS)}.",
                                           show_default=False)],
) -> None:
    """Exec the dependent on the host, port and run directory the registry gives it."""
    if program not in PROGRAMS:
        raise UsageError(f"unknown program {program!r}; choose one of {', '.join(PROGRAMS)}")
    registry = common.registry(ctx)
    # `up` and the systemd units name the service; by hand, the program's name is the service's.
    service = registry.service(os.environ.get(SERVICE_ENV, program))
    host, port, run_dir = registry.bind_host(service), service.primary_port, registry.run_dir
    if program == "redis":
        from ollamamax_stack.dependents.redis import launch_redis
        launch_redis(host, port, run_dir)
    elif program == "postgres":
        from ollamamax_stack.dependents.postgres import launch_postgres
        launch_postgres(host, port, run_dir)
    else:
        from ollamamax_stack.dependents.prometheus import launch_prometheus
        launch_prometheus(registry, host, port, run_dir)
