"""What supervisord runs for each managed service: command line, directory, environment, log."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ollamamax_stack.errors import OllamamaxError
from ollamamax_stack.handoff.client import HANDOFF_ENV, PROBE_ENV, SLOT_ENV
from ollamamax_stack.handoff.paths import holder_socket, probe_prefix
from ollamamax_stack.handoff.slots import HOLDER_PROGRAM, slots
from ollamamax_stack.markers import RUN_DIR_ENV, SERVICE_ENV
from ollamamax_stack.registry.environ import service_environment
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.supervise.paths import RunPaths

# Marks every process ollamamax starts for a stack (supervisord, the watcher) so that a later
# `down` can find them by environment even when their pid files are gone.
SUPERVISOR_ENV = "OLLAMAMAX_SUPERVISOR"
_SHELL_OPERATORS = set(";&|<>()`\n")
_SHELLS = {"sh", "bash", "dash"}
# The supervisord name of the watcher (an event listener), apart from any service's name.
WATCHER = "ollamamax-watcher"


class ConfigError(OllamamaxError):
    """A registry value cannot be written into a supervisord configuration (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Program:
    """One `[program:NAME]` section."""

    name: str
    command: str
    argv0: str | None  # the executable the command runs, when it can be told statically
    directory: Path
    environment: dict[str, str]
    log: Path


def shell_command(command: str) -> str:
    """A command supervisord can run without a shell: `/bin/sh -c 'exec …'` (exec keeps the pid)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    if len(words) == 3 and os.path.basename(words[0]) in _SHELLS and words[1] == "-c":
        return command  # already a shell: a second one around it would outlive supervisord
    simple = bool(words) and not any(ch in _SHELL_OPERATORS for ch in command)
    plain = simple and not any(ch in command for ch in "$*?~'\"\\{}[]")
    if plain:
        return command
    return f"/bin/sh -c {shlex.quote(('exec ' if simple else '') + command)}"


def dies_with_parent(command: str) -> str:
    """`command` run so that the kernel kills it when supervisord dies (PR_SET_PDEATHSIG).

    util-linux's `setpriv` sets the signal and execs, so the pid stays the service's own; where
    it is missing, the watcher's sweep on supervisord's death is the only guard.
    """
    setpriv = shutil.which("setpriv")
    return f"{setpriv} --pdeathsig KILL -- {command}" if setpriv else command


def executable(command: str) -> str | None:
    """The program a command starts (`redis-server` of `redis-server --port $PORT`), if plain."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    while words and "=" in words[0] and not words[0].startswith("="):
        words.pop(0)  # leading VAR=value assignments
    if not words or any(ch in words[0] for ch in "$`*?"):
        return None
    return words[0]


def search_path() -> str:
    """PATH for the services: this interpreter's bin directory first, so `ollamamax` resolves."""
    here = str(Path(sys.executable).parent)
    rest = [p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p and p != here]
    return os.pathsep.join([here, *rest])


def missing_executable(registry: Registry, service: Service) -> str | None:
    """The program a service's command names when it cannot be found, else None."""
    program = executable(service.command or "")
    if program is None:
        return None
    if "/" in program:
        path = Path(program) if Path(program).is_absolute() else registry.root / program
        return None if os.access(path, os.X_OK) else program
    return None if shutil.which(program, path=search_path()) else program


def program(registry: Registry, service: Service) -> Program:
    """The supervisord program for one managed service."""
    if service.command is None:
        raise ConfigError(f"service {service.name} has no command")
    return Program(
        name=service.name,
        command=dies_with_parent(shell_command(service.command)),
        argv0=executable(service.command),
        directory=registry.root,
        environment=service_environment(registry, service),
        log=RunPaths(registry.run_dir).log(service.name),
    )


def watcher_command(registry: Registry) -> str:
    """The command line of the stack's watcher (`python -m ollamamax_stack.supervise.watcher`)."""
    words = [sys.executable, "-m", "ollamamax_stack.supervise.watcher",
             "--config", str(registry.source), "--run-dir", str(registry.run_dir),
             "--offset", str(registry.offset), "--profile", registry.profile]
    return " ".join(shlex.quote(word) for word in words)


def slot_programs(registry: Registry, service: Service) -> list[Program]:
    """The programs of a held service: two slots per worker, each told where its sockets are."""
    base = program(registry, service)
    found = []
    for slot in slots(service):
        probes = probe_prefix(registry.run_dir, slot.program, service.port_map)
        env = {**base.environment, HANDOFF_ENV: str(holder_socket(registry.run_dir)),
               SLOT_ENV: slot.program, PROBE_ENV: probes}
        found.append(replace(base, name=slot.program, environment=env))
    return found


def programs(registry: Registry) -> list[Program]:
    """Every managed service of the active profile, in registry order (held ones by slot)."""
    found: list[Program] = []
    for service in registry.managed:
        if service.held:
            found.extend(slot_programs(registry, service))
        else:
            found.append(program(registry, service))
    return found


def holder_program(registry: Registry) -> Program | None:
    """The socket holder's program, when some service takes held sockets."""
    if not any(s.held for s in registry.managed):
        return None
    command = [sys.executable, "-m", "ollamamax_stack.handoff.holder",
               "--config", str(registry.source), "--run-dir", str(registry.run_dir),
               "--offset", str(registry.offset), "--profile", registry.profile]
    env = {RUN_DIR_ENV: str(registry.run_dir), SERVICE_ENV: HOLDER_PROGRAM}
    return Program(name=HOLDER_PROGRAM, command=shlex.join(command), argv0=sys.executable,
                   directory=registry.root, environment=env,
                   log=RunPaths(registry.run_dir).log(HOLDER_PROGRAM))


def escape(value: str) -> str:
    """A value as supervisord's config parser needs it: every `%` doubled."""
    return value.replace("%", "%%")


def environment_value(key: str, value: str, expansions: int = 1) -> str:
    """`KEY="value"` for supervisord's `environment=` (which cannot escape quotes inside quotes).

    supervisord expands `%` once in `[program:x]` but twice in `[supervisord]` (`expansions=2`).
    """
    if "\n" in value or "\r" in value:
        raise ConfigError(f"environment {key}: a value with a line break cannot be passed")
    quote = '"' if '"' not in value else "'"
    if quote in value or value[:1] in ("'", '"') or value[-1:] in ("'", '"'):
        raise ConfigError(f"environment {key}: value {value!r} holds both kinds of quotes")
    return f"{key}={quote}{value.replace('%', '%' * 2 ** expansions)}{quote}"


def environment_line(env: dict[str, str], expansions: int = 1) -> str:
    """The comma-joined `environment=` value."""
    return ",".join(environment_value(k, v, expansions) for k, v in env.items())
