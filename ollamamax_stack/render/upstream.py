"""Upstream container images for the dependents `ollamamax launch` runs from Debian packages."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from ollamamax_stack.registry.model import Service

PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"


@dataclass(frozen=True)
class Upstream:
    """An official image and the arguments that run it on the registry's port.

    `{port}` in args, environment and health is the port; `{password_file}` the path where
    the container finds its generated password (see render/passwords.py).
    """

    image: str
    args: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    health: tuple[str, ...] = ()


# The image's entrypoint drops to the redis user and chowns /data (its workdir) first; the
# password goes through a 0600 config file, never onto redis-server's command line (ps).
_REDIS_START = ('umask 077 && printf "requirepass %s\\n" "$(cat {password_file})" '
                '> /data/redis.conf && exec docker-entrypoint.sh redis-server /data/redis.conf '
                '--port {port} --save "" --appendonly no')


UPSTREAM: dict[str, Upstream] = {
    "postgres": Upstream(
        image="postgres:15",
        args=("postgres", "-p", "{port}", "-c", "listen_addresses=*"),
        # Every login, over TCP or the socket in the container, needs the password.
        environment={"POSTGRES_PASSWORD_FILE": "{password_file}",
                     "POSTGRES_HOST_AUTH_METHOD": "scram-sha-256",
                     "POSTGRES_INITDB_ARGS": "--auth-host=scram-sha-256 "
                                             "--auth-local=scram-sha-256"},
        health=("CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-p", "{port}"),
    ),
    "redis": Upstream(
        image="redis:7",
        args=("sh", "-c", _REDIS_START),
        health=("CMD-SHELL", 'REDISCLI_AUTH="$(cat {password_file})" '
                'redis-cli -p {port} ping | grep -q PONG'),
    ),
    "prometheus": Upstream(
        image="prom/prometheus:v2.53.0",
        args=(f"--config.file={PROMETHEUS_CONFIG}", "--web.listen-address=:{port}"),
        health=("CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{port}/-/ready"),
    ),
}


def argv(service: Service) -> list[str]:
    """The service's command line from the Procfile, as words."""
    return shlex.split(service.command or "")


def launched(service: Service) -> str | None:
    """NAME for a service started with `ollamamax launch NAME`, else None."""
    words = argv(service)
    if len(words) >= 3 and words[0] == "ollamamax" and words[1] == "launch":
        return words[2]
    return None


def upstream(service: Service) -> Upstream | None:
    """The upstream image for a service started with `ollamamax launch NAME`, else None."""
    name = launched(service)
    return UPSTREAM.get(name) if name else None


def own_service(service: Service) -> bool:
    """Whether the service is one of the stack's own programs (`ollamamax serve NAME`)."""
    return service.own is not None  # decided once, when the registry was loaded


def filled(words: tuple[str, ...], port: int, password_file: str = "") -> list[str]:
    """Words with `{port}` and `{password_file}` replaced."""
    return [w.replace("{port}", str(port)).replace("{password_file}", password_file)
            for w in words]


def filled_environment(up: Upstream, password_file: str) -> dict[str, str]:
    """The image's environment with `{password_file}` replaced."""
    return {k: v.replace("{password_file}", password_file) for k, v in up.environment.items()}


def reads_prometheus_config(service: Service) -> bool:
    """Whether the service's upstream image needs a prometheus.yml mounted."""
    up = upstream(service)
    return up is not None and up.args[0].startswith("--config.file=")
