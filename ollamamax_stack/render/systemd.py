"""`render systemd`: the stack target, hardened Type=notify services, optional sockets."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

from ollamamax_stack.markers import RUN_DIR_ENV
from ollamamax_stack.registry.environ import PASSWORD_FILES, service_environment
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.render.addresses import host_port
from ollamamax_stack.render.base import Rendering, header, template, unit_name
from ollamamax_stack.render.upstream import own_service

STATE = "%S"  # systemd's state directory root: /var/lib, or ~/.local/state for --user units
TIMEOUT_STOP = 15


def unit(registry: Registry, service: Service | None = None, kind: str = "service") -> str:
    """`ollamamax-<service>.<kind>`, or the stack's `.target` without a service."""
    stack = registry.stack.name
    if service is None:
        return unit_name(f"{stack}.target", f"stack name {stack!r}")
    return unit_name(f"{stack}-{service.name}.{kind}", f"service name {service.name!r}")


def _quote(word: str) -> str:
    """One ExecStart word as systemd reads it: `%` doubled, quoted when it has to be."""
    word = word.replace("%", "%%")
    # Procfile `$NAME` becomes `${NAME}`: systemd substitutes it as one word from Environment=.
    word = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", r"${\1}", word)
    if word and not re.search(r"[\s\"'\\;]", word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def executable(name: str) -> str:
    """An absolute path for a command word: the installed ollamamax, else found on PATH."""
    if name.startswith("/"):
        return name
    beside = Path(sys.executable).parent / name  # the ollamamax of this very installation
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    return found or f"/usr/bin/{name}"


def exec_start(service: Service) -> str:
    """The Procfile command with its program made absolute."""
    words = shlex.split(service.command or "")
    words[0] = executable(words[0])
    return " ".join(_quote(w) for w in words)


def _env_line(key: str, value: str, *, specifiers: bool = False) -> str:
    """One `Environment=` line; `%` is doubled unless the value holds systemd specifiers."""
    if not specifiers:
        value = value.replace("%", "%%")
    value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'Environment="{key}={value}"'


def run_dir(registry: Registry) -> str:
    """The run directory the units use: --run-dir when given, else the unit's StateDirectory."""
    if registry.run_dir_override is not None:
        return str(registry.run_dir)
    return f"{STATE}/{registry.stack.name}"


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def service_unit(registry: Registry, service: Service, *, sockets: bool, user_mode: bool) -> str:
    """The `.service` unit of one managed service."""
    active = {s.name: s for s in registry.managed}
    deps = {d: c for d, c in service.conditions.items() if d in active}
    requires = [unit(registry, active[d]) for d in deps if not active[d].optional]
    wants = [unit(registry, active[d]) for d in deps if active[d].optional]
    # "started" (compose's service_started) is pulled in but not waited for: no After=.
    waited = [unit(registry, active[d]) for d, c in deps.items() if c != "started"]
    socket = unit(registry, service, "socket") if sockets and own_service(service) else None
    after = [*waited, *([socket] if socket else []), "network.target"]
    dependencies = []
    if requires or socket:
        dependencies.append("Requires=" + " ".join([*requires, *([socket] if socket else [])]))
    if wants:
        dependencies.append("Wants=" + " ".join(wants))
    dependencies.append("After=" + " ".join(after))

    env = service_environment(registry, service)
    env.pop(RUN_DIR_ENV)
    # The generated passwords live in the units' run dir, which may be a systemd specifier.
    secrets = [_env_line(key, f"{run_dir(registry)}/{name}",
                         specifiers=registry.run_dir_override is None)
               for key, name in PASSWORD_FILES.values() if env.pop(key, None) is not None]
    stack = registry.stack.name
    identity = [f"StateDirectory={stack}", f"RuntimeDirectory={stack}/{service.name}"]
    if not user_mode:
        # One user name for every unit of the stack: they share the state directory.
        identity = [f"User={stack}", "DynamicUser=yes", *identity]
    extra = []
    if registry.run_dir_override is not None:
        extra.append(f"ReadWritePaths={registry.run_dir}")
    return template("systemd", "service.template").substitute(
        header=header("systemd", registry.source),
        description=f"{stack} {service.name}: {service.description or service.name}",
        source=registry.source, target=unit(registry),
        dependencies="\n".join(dependencies),
        start_limit_interval=f"{max(60, int(service.restart.stable * 6))}s",
        start_limit_burst=max(1, service.restart.limit),
        run_kind=template("systemd", f"kind-{service.kind}.template").substitute(
            restart_sec=_ms(service.restart.backoff)),
        exec_start=exec_start(service),
        environment="\n".join([*(_env_line(k, v) for k, v in env.items()), _env_line(
            RUN_DIR_ENV, run_dir(registry),
            specifiers=registry.run_dir_override is None), *secrets]),
        identity="\n".join(identity),
        # A task takes as long as it takes (a migration, a model pull), as systemd's default.
        timeout_start="infinity" if service.task else f"{service.readiness.timeout:g}s",
        timeout_stop=f"{TIMEOUT_STOP}s",
        extra="\n".join(extra),
    )


def socket_unit(registry: Registry, service: Service) -> str:
    """The `.socket` unit holding every port of one service, handed over as LISTEN_FDS."""
    host = registry.bind_host(service)
    listen = [f"ListenStream={host_port(host, port)}" for port in service.port_map.values()]
    return template("systemd", "socket.template").substitute(
        header=header("systemd", registry.source),
        description=f"{registry.stack.name} {service.name} ports",
        target=unit(registry), listen="\n".join(listen),
        fd_name=service.name, service_unit=unit(registry, service))


def target_unit(registry: Registry, *, user_mode: bool) -> str:
    """`<stack>.target`: starting it starts every managed service of the profile."""
    return template("systemd", "target.template").substitute(
        header=header("systemd", registry.source),
        description=f"The {registry.stack.name} stack (profile {registry.profile})",
        source=registry.source,
        wants=" ".join(unit(registry, s) for s in registry.managed),
        wanted_by="default.target" if user_mode else "multi-user.target")


def render_systemd(registry: Registry, *, socket_activation: bool = False,
                   user_mode: bool = False) -> Rendering:
    """The target, a service unit per managed service, and sockets for the stack's own services."""
    files = {unit(registry): target_unit(registry, user_mode=user_mode)}
    for service in registry.managed:
        files[unit(registry, service)] = service_unit(
            registry, service, sockets=socket_activation, user_mode=user_mode)
        if socket_activation and own_service(service):
            files[unit(registry, service, "socket")] = socket_unit(registry, service)
    return files
