"""The generated passwords in containers: one file per dependent, mounted where it is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.registry.environ import PASSWORD_FILES
from ollamamax_stack.registry.model import Registry, Service
from ollamamax_stack.render.upstream import launched, own_service
from ollamamax_stack.services.common.secret import ensure_secret

# Beside the rendered files: what compose's `secrets:` and kustomize's secretGenerator read.
SECRETS_DIR = "secrets"


@dataclass(frozen=True)
class Password:
    """One dependent's generated password: who needs it, and under which file name."""

    dependent: str  # the service that asks for it: postgres, redis
    env_key: str  # how the stack's own services find the file: OLLAMAMAX_<DEPENDENT>_PASSWORD_FILE
    name: str  # the file's name: in secrets/, in the Secret's keys, in the container

    @property
    def source(self) -> str:
        """The file's path relative to the rendered files."""
        return f"{SECRETS_DIR}/{self.name}"


def passwords(registry: Registry) -> list[Password]:
    """The passwords of the dependents the active profile runs, by file name."""
    found = []
    for dependent, (key, name) in PASSWORD_FILES.items():
        service = registry.services.get(dependent)
        if service is not None and service.managed and service.in_profile(registry.profile):
            found.append(Password(dependent, key, name))
    return sorted(found, key=lambda p: p.name)


def needed_by(registry: Registry, service: Service) -> list[Password]:
    """The passwords one container reads: a dependent its own, the stack's services all."""
    if own_service(service):
        return passwords(registry)
    return [p for p in passwords(registry) if p.dependent == launched(service)]


def own_password_file(registry: Registry, service: Service, directory: str) -> str:
    """Where a dependent's container finds its own password, in `directory` ("" if none)."""
    own = [] if own_service(service) else needed_by(registry, service)
    return f"{directory}/{own[0].name}" if own else ""


def secret_name(registry: Registry) -> str:
    """The Kubernetes Secret holding the passwords, one key per file name."""
    return f"{registry.stack.name}-passwords"


def ensure_password_files(found: list[Password], out: Path) -> list[Path]:
    """`out/secrets/<name>` for each password: random and 0600 if absent, never overwritten."""
    directory = out.expanduser() / SECRETS_DIR
    if found:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for password in found:
        path = directory / password.name
        ensure_secret(path, f"{password.dependent} password")
        written.append(path)
    return written
