"""Read `config/ports.toml` (and its Procfile) into a validated Registry."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ollamamax_stack.errors import RegistryError
from ollamamax_stack.registry.graph import find_cycle
from ollamamax_stack.registry.locate import locate
from ollamamax_stack.registry.model import (
    DEFAULT_PROFILE,
    PORT_MAX,
    PORT_MIN,
    Registry,
    RegistryFile,
    Service,
)
from ollamamax_stack.registry.procfile import read_procfile

if TYPE_CHECKING:
    from pydantic import ValidationError

CONFIG_ENV = "OLLAMAMAX_CONFIG"
CANDIDATES = ("config/ports.toml", "ports.toml")


def find_registry(start: Path | None = None) -> Path:
    """The registry: `$OLLAMAMAX_CONFIG`, else the nearest `config/ports.toml` walking up."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        for candidate in CANDIDATES:
            path = directory / candidate
            if path.is_file():
                return path
    raise RegistryError(
        f"no registry found: looked for {' or '.join(CANDIDATES)} in {here} and its parents; "
        f"pass --config FILE or set {CONFIG_ENV}"
    )


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _key_path(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    # pydantic inserts union branch names like "list[str]" into locations; drop them.
    return tuple(str(p) for p in loc if not (isinstance(p, str) and ("[" in p or "-" in p and
                                                                      p.startswith("function"))))


def _validation_error(exc: ValidationError, text: str, shown: str) -> RegistryError:
    error = exc.errors(include_url=False)[0]
    path = _key_path(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        message = "unknown key"
    elif error["type"] in ("missing", "missing_argument"):
        message = "required key is missing"
    elif "input" in error and error["type"] not in ("model_type", "value_error") and not isinstance(
            error["input"], dict):
        message = f"{message} (got {error['input']!r})"
    return RegistryError(message, file=shown, key=".".join(path) or None,
                         line=locate(text, path) if path else None)


def _shift_url(url: str, shifts: dict[int, int]) -> str:
    match = re.match(r"^([a-z][a-z0-9+.-]*://[^/:]+):(\d+)(.*)$", url)
    if not match or int(match.group(2)) not in shifts:
        return url
    return f"{match.group(1)}:{shifts[int(match.group(2))]}{match.group(3)}"


def _apply_offset(services: dict[str, Service], offset: int, text: str,
                  shown: str) -> dict[str, Service]:
    if offset == 0:
        return services
    shifts: dict[int, int] = {}
    for service in services.values():
        if not service.shift:
            continue
        for name, port in service.port_map.items():
            moved = port + offset
            if not PORT_MIN <= moved <= PORT_MAX:
                key = ("services", service.name, "ports", name) if service.named_ports else (
                    "services", service.name, "port")
                raise RegistryError(
                    f"--offset {offset} moves port {port} to {moved}, outside "
                    f"{PORT_MIN}-{PORT_MAX}; choose a smaller offset",
                    file=shown, key=".".join(key), line=locate(text, key))
            shifts[port] = moved
    shifted: dict[str, Service] = {}
    for name, service in services.items():
        update: dict[str, Any] = {"cors": [_shift_url(u, shifts) for u in service.cors]}
        if service.shift:
            if service.named_ports:
                update["ports"] = {k: v + offset for k, v in service.ports.items()}
            elif service.port is not None:  # a task may have no port
                update["port"] = service.port + offset
        shifted[name] = dataclasses.replace(service, **update)
    return shifted


def _check_graph(services: dict[str, Service], text: str, shown: str) -> None:
    for service in services.values():
        for index, dep in enumerate(service.depends_on):
            if dep not in services:
                key = ("services", service.name, "depends_on")
                raise RegistryError(
                    f"unknown service {dep!r} (known: {', '.join(services)})",
                    file=shown, key=f"services.{service.name}.depends_on[{index}]",
                    line=locate(text, key))
            if dep == service.name:
                raise RegistryError("a service cannot depend on itself", file=shown,
                                    key=f"services.{service.name}.depends_on",
                                    line=locate(text, ("services", service.name, "depends_on")))
            if service.conditions[dep] == "completed" and not services[dep].task:
                key = ("services", service.name, "depends_on")
                raise RegistryError(
                    f"{dep!r} is not a task (kind = \"task\"): it never completes; "
                    "wait for it to be \"ready\" or \"started\"", file=shown,
                    key=f"services.{service.name}.depends_on.{dep}", line=locate(text, key))
    cycle = find_cycle({s.name: list(s.depends_on) for s in services.values()})
    if cycle:
        key = ("services", cycle[0], "depends_on")
        raise RegistryError(f"dependency cycle: {' -> '.join(cycle)}", file=shown,
                            key=".".join(key), line=locate(text, key))


def _check_duplicates(services: dict[str, Service], text: str, shown: str) -> None:
    seen: dict[tuple[str, int], tuple[str, str]] = {}
    for service in services.values():
        for port_name, port in service.port_map.items():
            owner = seen.get(("", port))
            if owner and owner[0] != service.name:
                key = ("services", service.name, "ports", port_name) if service.named_ports else (
                    "services", service.name, "port")
                raise RegistryError(
                    f"port {port} is given to both {owner[0]!r} and {service.name!r}; "
                    "give each service its own port",
                    file=shown, key=".".join(key), line=locate(text, key))
            if owner and owner[0] == service.name:
                raise RegistryError(
                    f"port {port} is given twice ({owner[1]!r} and {port_name!r})",
                    file=shown, key=f"services.{service.name}.ports",
                    line=locate(text, ("services", service.name, "ports")))
            seen[("", port)] = (service.name, port_name)


def _attach_commands(services: dict[str, Service], root: Path, procfile: str | None,
                     text: str, shown: str) -> dict[str, Service]:
    entries: dict[str, tuple[str, int]] = {}
    if procfile:
        path = (root / procfile)
        entries = read_procfile(path, _shown(path))
        for name, (_, line) in entries.items():
            if name not in services:
                raise RegistryError(f"{name!r} is not a service of the registry",
                                    file=_shown(path), line=line)
            if services[name].external:
                raise RegistryError(f"{name!r} is external: the stack does not start it",
                                    file=_shown(path), line=line)
    attached: dict[str, Service] = {}
    for name, service in services.items():
        if service.managed and service.command is None:
            if name not in entries:
                where = f"add `{name}: COMMAND` to {procfile}" if procfile else "set `command`"
                raise RegistryError(f"managed service has no command; {where} or mark it "
                                    "external = true", file=shown, key=f"services.{name}",
                                    line=locate(text, ("services", name)))
            service = dataclasses.replace(service, command=entries[name][0])
        attached[name] = service
    return attached


def _parse(text: str, shown: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise RegistryError("invalid TOML: nested too deeply", file=shown) from None
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        message = str(exc).split(" (at line")[0]
        raise RegistryError(f"invalid TOML: {message}", file=shown, line=line) from None


def _validated(text: str, shown: str) -> RegistryFile:
    """The document of `text`: from the cache when this very text passed before."""
    from ollamamax_stack.registry import cache

    cached = cache.load(text)
    if cached is not None:
        return cached
    data = _parse(text, shown)
    from pydantic import ValidationError

    from ollamamax_stack.registry.validate import validate_document

    try:
        document = validate_document(data)
    except ValidationError as exc:
        raise _validation_error(exc, text, shown) from None
    except RecursionError:
        raise RegistryError("the document is nested too deeply", file=shown) from None
    cache.store(text, document)
    return document


def _check_workers(services: dict[str, Service], text: str, shown: str) -> None:
    for service in services.values():
        if service.workers == 1:
            continue
        key = f"services.{service.name}.workers"
        line = locate(text, ("services", service.name, "workers"))
        if not service.held or service.own is None:
            raise RegistryError(
                f"workers = {service.workers!r} needs one of the stack's own services "
                "(`ollamamax serve NAME`), which take their sockets from the stack",
                file=shown, key=key, line=line)
        from ollamamax_stack.services.limits import WORKER_LIMITS

        limit = WORKER_LIMITS.get(service.own)
        if limit is not None and (service.workers == "auto" or service.workers > limit[0]):
            raise RegistryError(f"workers = {service.workers!r} is not supported for "
                                f"{service.own}: {limit[1]}", file=shown, key=key, line=line)


def load_registry(path: Path | None = None, *, offset: int = 0, profile: str | None = None,
                  run_dir: Path | None = None) -> Registry:
    """Load, validate and shift the registry; every problem is a RegistryError naming its place."""
    path = path or find_registry()
    shown = _shown(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc
        raise RegistryError(f"cannot read the registry: {reason}", file=shown) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"not UTF-8 text (byte {exc.start})", file=shown) from None
    document = _validated(text, shown)
    services = {name: dataclasses.replace(s, name=name) for name, s in document.services.items()}
    _check_graph(services, text, shown)
    _check_duplicates(services, text, shown)
    root = (path.parent / document.stack.root).resolve()
    services = _attach_commands(services, root, document.stack.procfile, text, shown)
    _check_workers(services, text, shown)

    profile = profile or DEFAULT_PROFILE
    registry = Registry(stack=document.stack, services=services, source=path.resolve(),
                        root=root, offset=offset, profile=profile, run_dir_override=run_dir)
    if profile not in registry.profiles:
        raise RegistryError(f"unknown profile {profile!r} (known: {', '.join(registry.profiles)})",
                            file=shown)
    shifted = _apply_offset(services, offset, text, shown)
    _check_duplicates(shifted, text, shown)
    return Registry(stack=document.stack, services=shifted, source=path.resolve(), root=root,
                    offset=offset, profile=profile, run_dir_override=run_dir,
                    checks=document.checks)
