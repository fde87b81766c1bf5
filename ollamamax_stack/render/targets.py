"""The render targets by name, and the options each one takes."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ollamamax_stack.errors import UsageError
from ollamamax_stack.registry.model import Registry
from ollamamax_stack.render.base import Rendering
from ollamamax_stack.render.passwords import Password, passwords

TARGETS = ("env", "compose", "systemd", "prometheus", "alerts", "grafana", "frontend",
           "supervisord", "k8s")
SUPERVISORD_FILE = "supervisord.conf"


@dataclass(frozen=True)
class RenderOptions:
    """Target-specific options: k8s namespace/image/replicas/secrets, systemd sockets."""

    namespace: str | None = None
    image: str | None = None
    replicas: int = 1
    generate_secrets: bool = False
    socket_activation: bool = False
    user_mode: bool = False
    scrape_credentials: Path | None = None  # prometheus: the file of its bearer key


def _check_options(target: str, options: RenderOptions) -> None:
    if target != "k8s":
        for flag, value in (("--namespace", options.namespace), ("--image", options.image),
                            ("--replicas", options.replicas != 1 or None),
                            ("--generate-secrets", options.generate_secrets or None)):
            if value is not None:
                raise UsageError(f"{flag} applies to `render k8s` only, not {target}")
    if target != "systemd" and options.socket_activation:
        raise UsageError(f"--socket-activation applies to `render systemd` only, not {target}")
    if options.replicas < 1:
        raise UsageError(f"--replicas must be at least 1, got {options.replicas}")


def render(target: str, registry: Registry, options: RenderOptions | None = None) -> Rendering:
    """The files of one target, rendered from the validated registry."""
    options = options or RenderOptions()
    if target not in TARGETS:
        raise UsageError(f"unknown render target {target!r}; choose one of {', '.join(TARGETS)}")
    _check_options(target, options)
    if target == "env":
        from ollamamax_stack.render.env import render_env
        return render_env(registry)
    if target == "compose":
        from ollamamax_stack.render.compose import render_compose
        return render_compose(registry)
    if target == "prometheus":
        from ollamamax_stack.render.prometheus import render_prometheus
        return render_prometheus(registry, options.scrape_credentials)
    if target == "alerts":
        from ollamamax_stack.render.alerts import render_alerts
        return render_alerts(registry)
    if target == "grafana":
        from ollamamax_stack.render.grafana import render_grafana
        return render_grafana(registry)
    if target == "frontend":
        from ollamamax_stack.render.frontend import render_frontend
        return render_frontend(registry)
    if target == "systemd":
        from ollamamax_stack.render.systemd import render_systemd
        return render_systemd(registry, socket_activation=options.socket_activation,
                              user_mode=options.user_mode)
    if target == "k8s":
        from ollamamax_stack.render.k8s import render_k8s
        return render_k8s(registry, namespace=options.namespace, image=options.image,
                          replicas=options.replicas, generate_secrets=options.generate_secrets)
    return {SUPERVISORD_FILE: _supervisord(registry)}


def passwords_to_write(target: str, registry: Registry,
                       options: RenderOptions) -> list[Password]:
    """The password files `render --out` creates: compose's always, k8s's when asked."""
    if target == "compose" or (target == "k8s" and options.generate_secrets):
        return passwords(registry)
    return []


def _supervisord(registry: Registry) -> str:
    # The supervisor's renderer lives with the supervisor; imported by name so each can land alone.
    try:
        module = importlib.import_module("ollamamax_stack.render.supervisord")
    except ImportError:
        raise UsageError("render supervisord: this installation has no supervisord "
                         "renderer (ollamamax_stack/render/supervisord.py)") from None
    text = module.render_supervisord(registry)
    assert isinstance(text, str)
    return text
