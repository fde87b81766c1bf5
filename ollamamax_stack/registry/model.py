"""The validated shape of `config/ports.toml`: the stack, its services, their probes.

Plain frozen dataclasses: pydantic validates them (registry/validate.py) from the markers in
their annotations, and only when a registry is not in the cache of validated ones.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from ollamamax_stack.errors import UsageError
from ollamamax_stack.registry.constraints import POSITIVE, Check, Strict, at_least, matches

DEFAULT_PROFILE = "default"
PORT_MIN, PORT_MAX = 1, 65535
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
ENV_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_WORKERS = 64


def _check_port(value: int) -> int:
    if not PORT_MIN <= value <= PORT_MAX:
        raise ValueError(f"port {value} is out of range {PORT_MIN}-{PORT_MAX}")
    return value


def _check_text(value: str) -> str:
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    return value


_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|[0-9A-Fa-f:.]+|)$")


def _check_host(value: str) -> str:
    if not _HOST.match(value):
        raise ValueError(f"{value!r} is not an IP address or host name")
    return value


def _check_host_name(value: str) -> str:
    if not value or not _HOST.match(value):
        raise ValueError(f"{value!r} is not a host name or IP address (no port, no scheme)")
    return value.lower()


def _check_env_value(value: str) -> str:
    if any(ch in value for ch in "\0\n\r"):
        raise ValueError("an environment value must not contain NUL or a line break")
    return value


def _check_workers(value: int) -> int:
    if not 1 <= value <= MAX_WORKERS:
        raise ValueError(f"workers must be 1-{MAX_WORKERS} or \"auto\", got {value}")
    return value


def _check_glob(value: str) -> str:
    if not value.strip():
        raise ValueError("an empty pattern matches nothing")
    return _check_text(value)


def _own_service(command: str | None) -> str | None:
    """NAME of `ollamamax serve NAME ...`; None for any other command (or none)."""
    if not command or "serve" not in command:
        return None  # most commands: no need to split them
    try:
        words = shlex.split(command or "")  # (mutmut: `or` never read: command is set here)
    except ValueError:
        return None
    return words[2] if len(words) >= 3 and words[:2] == ["ollamamax", "serve"] else None


# --- issue 19, pulls: `[services.ollama] models = [...]`, pulled onto every node -------------
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9._-]*)?$"
ModelName = Annotated[str, matches(MODEL_NAME_PATTERN)]  # Ollama's `name[:tag]`, no spaces
# --- end of issue 19, pulls ----------------------------------------------------------------

Port = Annotated[int, Strict(), Check(_check_port)]
Glob = Annotated[str, Check(_check_glob)]
PathText = Annotated[str, Check(_check_text)]
Host = Annotated[str, Check(_check_host)]
HostName = Annotated[str, Check(_check_host_name)]  # a name a Host header may carry
Seconds = Annotated[float, POSITIVE]
StrictBool = Annotated[bool, Strict()]
StrictInt = Annotated[int, Strict()]
EnvText = Annotated[str, Check(_check_env_value)]
Workers = Annotated[int, Strict(), Check(_check_workers)]
# compose's service_completed_successfully, service_healthy, service_started
Condition = Literal["completed", "ready", "started"]


class _Strict:
    # Read by pydantic when it validates the dataclass: an unknown key is an error.
    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}


# --- Logs and env files (issue 18): `[stack] logs`, `env_file` in [stack] and per service ---
LOG_MAX_BYTES_MIN = 4096  # below this a busy service would rotate on every few lines
LOG_BACKUPS_MAX = 100


def _check_env_path(value: str) -> str:
    if not value.strip():
        raise ValueError("an env file path must not be empty")
    return _check_text(value)


EnvPath = Annotated[str, Check(_check_env_path)]


def _check_backups(value: int) -> int:
    if value > LOG_BACKUPS_MAX:
        raise ValueError(f"backups must be at most {LOG_BACKUPS_MAX}, got {value}")
    return value


@dataclass(frozen=True)
class LogRotation(_Strict):
    """`[stack] logs = {max_bytes, backups}`: when a service's log rotates, and how many stay."""

    max_bytes: Annotated[StrictInt, at_least(LOG_MAX_BYTES_MIN)] = 10 * 1024 * 1024
    backups: Annotated[StrictInt, at_least(0), Check(_check_backups)] = 3


@dataclass(frozen=True)
class EnvFile(_Strict):
    """One env file, as compose's long form `{path = "...", required = false}`."""

    path: EnvPath
    required: StrictBool = True


# compose's `env_file`: one path, or a list of paths and `{path, required}` tables.
EnvFileSpec = EnvPath | EnvFile | list[EnvPath | EnvFile]


def env_files(spec: Any) -> list[EnvFile]:
    """The env files of an `env_file` value, in order (tables from the cache come back as dicts)."""
    if spec is None:
        return []
    items = spec if isinstance(spec, list) else [spec]
    return [item if isinstance(item, EnvFile) else
            EnvFile(**item) if isinstance(item, dict) else EnvFile(str(item)) for item in items]
# --- end of logs and env files ---


@dataclass(frozen=True)
class Probe(_Strict):
    """How to tell a service is ready (or alive): one of http, tcp, exec, log."""

    http: str | None = None
    tcp: StrictBool = False
    exec: PathText | None = None
    log: PathText | None = None
    port: str | None = None
    timeout: Seconds = 30.0
    period: Seconds = 0.05
    failures: Annotated[StrictInt, at_least(1)] = 3

    def __post_init__(self) -> None:
        kinds = [k for k in ("http", "exec", "log") if getattr(self, k) is not None]
        if self.tcp:
            kinds.append("tcp")
        if len(kinds) > 1:
            raise ValueError(f"a probe has one kind, got {' and '.join(kinds)}")
        if self.http is not None and not self.http.startswith("/"):
            raise ValueError(f"http probe path must start with '/', got {self.http!r}")
        if self.log is not None:
            try:
                re.compile(self.log)
            except re.error as exc:
                raise ValueError(f"log probe {self.log!r} is not a valid regex: {exc}") from None

    @property
    def kind(self) -> Literal["http", "tcp", "exec", "log"]:
        """The probe's kind; a probe that names none is a TCP connect."""
        if self.http is not None:
            return "http"
        if self.exec is not None:
            return "exec"
        if self.log is not None:
            return "log"
        return "tcp"


@dataclass(frozen=True)
class RestartPolicy(_Strict):
    """Restarts after a crash: exponential backoff, capped, reset after a stable period."""

    limit: Annotated[StrictInt, at_least(0)] = 5
    backoff: Seconds = 0.25
    max_backoff: Seconds = 10.0
    stable: Seconds = 10.0


@dataclass(frozen=True)
class Stack(_Strict):
    """The `[stack]` table: name, bind host, paths, and the files checked for drift."""

    name: Annotated[str, matches(NAME_PATTERN)] = "ollamamax"
    host: Host = "127.0.0.1"
    hosts: list[HostName] = field(default_factory=list)  # Host headers every service accepts
    root: PathText = "."
    run_dir: PathText = ".ollamamax"
    procfile: PathText | None = None
    drift_files: list[PathText] = field(default_factory=list)
    # --- logs and env files (issue 18) ---
    logs: LogRotation = field(default_factory=LogRotation)
    env_file: EnvFileSpec | None = None

    @property
    def env_files(self) -> list[EnvFile]:
        """The stack's env files, read for every managed service before its own."""
        return env_files(self.env_file)


@dataclass(frozen=True)
class Checks(_Strict):
    """The `[checks]` table: paths `ports check` leaves out, and more files it checks for drift."""

    exclude: list[Glob] = field(default_factory=list)
    drift_files: list[PathText] = field(default_factory=list)


@dataclass(frozen=True)
class Service(_Strict):
    """One service of the stack: its ports, how it starts, what it needs, how it is probed."""

    name: str = ""
    description: str = ""
    port: Port | None = None
    ports: dict[Annotated[str, matches(r"^[a-z][a-z0-9_]*$")], Port] = field(
        default_factory=dict
    )
    container_port: Port | None = None
    host: Host | None = None
    scheme: Annotated[str, matches(r"^[a-z][a-z0-9+.-]*$")] = "http"
    external: StrictBool = False
    optional: StrictBool = False
    privileged: StrictBool = False
    shift: StrictBool = True
    # A list (each must be ready), or a table of conditions: {migrate = "completed", ...}.
    depends_on: list[str] | dict[str, Condition] = field(default_factory=list)
    readiness: Probe = field(default_factory=lambda: Probe(tcp=True))
    liveness: Probe | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    endpoints: dict[str, str] = field(default_factory=dict)
    cors: list[str] = field(default_factory=list)
    hosts: list[HostName] = field(default_factory=list)  # more Host headers this one accepts
    env_keys: list[str] | dict[str, list[str]] = field(default_factory=list)
    compose_names: list[str] = field(default_factory=list)
    images: list[Annotated[str, matches(r"^[a-z0-9][a-z0-9._/-]*$")]] = field(
        default_factory=list
    )  # container images that are this service (`redis`, `grafana/grafana`), without tags
    config_files: list[PathText] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    command: PathText | None = None
    # Processes of one service on the same (held) sockets: a number, or "auto" (one per core).
    workers: Workers | Literal["auto"] = 1
    env: dict[Annotated[str, matches(ENV_KEY_PATTERN)], EnvText] = field(default_factory=dict)
    # -- one-shot tasks and watch-and-roll (issue 18, items 4 and 5) --------------------------
    # "task": runs to completion (a migration); done when it exits 0, failed on any other exit.
    kind: Literal["service", "task"] = "service"
    # Files (globs relative to the root) whose saved change rolls the service under `up --watch`.
    watch: list[Glob] = field(default_factory=list)
    # -------------------------------------------------------------------------------------------
    # --- env files (issue 18): read before `env`, which wins over them ---
    env_file: EnvFileSpec | None = None
    # Issue 19, pulls: the models an Ollama service's nodes should hold (the inference service
    # pulls them onto each node at start and when one joins; `OLLAMAMAX_<SERVICE>_MODELS`).
    models: list[ModelName] = field(default_factory=list)
    # Decided from `command` whenever a Service is made, never read from the TOML: the name of
    # the stack's own service it runs (`ollamamax serve NAME`), else None.
    own: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "own", _own_service(self.command))
        if self.port is not None and self.ports:
            raise ValueError("give either `port` or `ports`, not both")
        if self.port is None and not self.ports and not self.task:
            raise ValueError("a service needs `port` or `ports`")
        if self.task and (self.external or self.liveness is not None or self.workers != 1):
            raise ValueError("a task runs once: no `external`, `liveness` or `workers`")
        names = set(self.port_map)
        if isinstance(self.env_keys, dict):
            unknown = sorted(set(self.env_keys) - names)
            if unknown:
                raise ValueError(f"env_keys names unknown port {unknown[0]!r}")
        for probe in (self.readiness, self.liveness):
            if probe is not None and probe.port is not None and probe.port not in names:
                raise ValueError(f"probe port {probe.port!r} is not one of {sorted(names)}")

    @property
    def env_files(self) -> list[EnvFile]:
        """This service's own env files, in order (later ones win)."""
        return env_files(self.env_file)

    @property
    def port_map(self) -> dict[str, int]:
        """Every port by name; a single `port` is named `main`; a task without one has none."""
        if self.ports:
            return dict(self.ports)
        return {"main": self.port} if self.port is not None else {}

    @property
    def task(self) -> bool:
        """Whether it runs once to completion (`kind = "task"`) instead of serving."""
        return self.kind == "task"

    @property
    def conditions(self) -> dict[str, Condition]:
        """What each dependency must reach first; the list form means "ready" for each."""
        if isinstance(self.depends_on, dict):
            return dict(self.depends_on)
        return {name: "ready" for name in self.depends_on}

    @property
    def primary_port(self) -> int:
        """The first port: the one `PORT` carries and URLs point at (0 for a portless task)."""
        return next(iter(self.port_map.values()), 0)

    @property
    def named_ports(self) -> bool:
        """Whether the registry names this service's ports (`ports = {...}`)."""
        return bool(self.ports)

    @property
    def managed(self) -> bool:
        """Whether the stack launches this service (as opposed to only probing it)."""
        return not self.external

    @property
    def held(self) -> bool:
        """Whether the stack launches it as one of its own services, on sockets it holds."""
        return self.managed and self.own is not None

    @property
    def env_key_map(self) -> dict[str, list[str]]:
        """The env keys that name each port, by port name."""
        if isinstance(self.env_keys, dict):
            return {k: list(v) for k, v in self.env_keys.items()}
        if not self.port_map:
            return {}
        return {next(iter(self.port_map)): list(self.env_keys)}

    def probe_port(self, probe: Probe) -> int:
        """The port a probe checks: its named port, else the primary one."""
        return self.port_map[probe.port] if probe.port else self.primary_port

    def in_profile(self, profile: str) -> bool:
        """Compose semantics: no profiles means every profile."""
        return not self.profiles or profile in self.profiles


@dataclass(frozen=True, kw_only=True)
class RegistryFile(_Strict):
    """The whole TOML document."""

    stack: Stack = field(default_factory=Stack)
    checks: Checks = field(default_factory=Checks)
    services: dict[Annotated[str, matches(NAME_PATTERN)], Service]


@dataclass(frozen=True)
class Registry:
    """A loaded registry: every service (ports shifted by `offset`) and the active profile."""

    stack: Stack
    services: dict[str, Service]
    source: Path
    root: Path
    offset: int = 0
    profile: str = DEFAULT_PROFILE
    run_dir_override: Path | None = field(default=None)
    checks: Checks = field(default_factory=Checks)

    @property
    def run_dir(self) -> Path:
        """Where supervisord, logs, sockets and secrets of this stack live."""
        if self.run_dir_override is not None:
            return self.run_dir_override.resolve()
        return (self.root / self.stack.run_dir).resolve()

    @property
    def profiles(self) -> list[str]:
        """Every profile the registry knows, the default first."""
        names = {p for s in self.services.values() for p in s.profiles}
        return [DEFAULT_PROFILE, *sorted(names - {DEFAULT_PROFILE})]

    @property
    def active(self) -> list[Service]:
        """The services of the active profile, in registry order."""
        return [s for s in self.services.values() if s.in_profile(self.profile)]

    @property
    def managed(self) -> list[Service]:
        """The active services the stack launches."""
        return [s for s in self.active if s.managed]

    def service(self, name: str) -> Service:
        """The named service, or a usage error that lists the known ones."""
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(self.services)
            raise UsageError(f"unknown service {name!r} (known: {known})") from None

    def bind_host(self, service: Service) -> str:
        """The address the service binds."""
        return service.host or self.stack.host

    def connect_host(self, service: Service) -> str:
        """The address clients use to reach the service (a wildcard bind is reached on loopback)."""
        host = self.bind_host(service)
        return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)

    def url(self, service: Service, port_name: str | None = None) -> str:
        """The base URL of a service (its primary port unless a port is named); "" without one."""
        if not service.port_map:
            return ""
        port = service.port_map[port_name] if port_name else service.primary_port
        host = self.connect_host(service)
        if ":" in host:
            host = f"[{host}]"
        return f"{service.scheme}://{host}:{port}"

    def path(self, relative: str) -> Path:
        """A path from the registry resolved against the project root."""
        return (self.root / relative).resolve()
