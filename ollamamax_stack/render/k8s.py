"""`render k8s`: a Deployment and a Service per managed service, probes from the registry."""

from __future__ import annotations

from typing import Any

import yaml

from ollamamax_stack.registry.model import Probe, Registry, Service
from ollamamax_stack.render.addresses import dns_url, network_environment
from ollamamax_stack.render.base import Rendering, dns_label, header, port_name
from ollamamax_stack.render.compose import IMAGE
from ollamamax_stack.render.passwords import (
    Password,
    needed_by,
    own_password_file,
    passwords,
    secret_name,
)
from ollamamax_stack.render.prometheus import prometheus_config
from ollamamax_stack.render.upstream import (
    PROMETHEUS_CONFIG,
    argv,
    filled,
    filled_environment,
    own_service,
    reads_prometheus_config,
    upstream,
)

KUSTOMIZATION = "kustomization.yaml"
# The Secret's files; not /run/secrets itself, which holds the service account's token.
SECRETS_DIR = "/run/secrets/ollamamax"
SECRETS_VOLUME = "passwords"


def labels(registry: Registry, service: Service) -> dict[str, str]:
    """The labels that select one service's pods."""
    return {"app.kubernetes.io/name": service.name,
            "app.kubernetes.io/part-of": registry.stack.name}


def probe(service: Service, spec: Probe, port_names: dict[str, str]) -> dict[str, Any] | None:
    """A Kubernetes probe for a registry probe; None for log probes, which have no equivalent."""
    port = port_names[spec.port or next(iter(service.port_map))]
    timing = {"periodSeconds": max(1, round(spec.period)), "timeoutSeconds": 3,
              "failureThreshold": spec.failures}
    if spec.kind == "http":
        return {"httpGet": {"path": spec.http, "port": port}, **timing}
    if spec.kind == "tcp":
        return {"tcpSocket": {"port": port}, **timing}
    if spec.kind == "exec":
        command = (spec.exec or "").replace("$PORT", str(service.probe_port(spec)))
        return {"exec": {"command": ["sh", "-c", command]}, **timing}
    return None


def pod_spec(registry: Registry, service: Service, image: str) -> dict[str, Any]:
    """The pod of one managed service: its container, probes, mounts."""
    names = {n: port_name("http" if n == "main" else n, f"port name {n!r} of {service.name!r}")
             for n in service.port_map}
    up = upstream(service)
    needed = needed_by(registry, service)
    secret = own_password_file(registry, service, SECRETS_DIR)
    container: dict[str, Any] = {"name": service.name, "image": up.image if up else image}
    if up:
        # `$$`: Kubernetes would otherwise read the shell's `$(cat ...)` as a variable reference.
        container["args"] = [w.replace("$", "$$")
                             for w in filled(up.args, service.primary_port, secret)]
    else:
        container["command"] = argv(service)
    env = (filled_environment(up, secret) if up
           else network_environment(registry, service, dns_url(registry), SECRETS_DIR))
    container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    container["ports"] = [{"name": names[n], "containerPort": p}
                          for n, p in service.port_map.items()]
    # A task has no probes: its container's exit is its outcome.
    ready = None if service.task else probe(service, service.readiness, names)
    startup = dict(ready or {})
    if ready:
        container["readinessProbe"] = ready
        # The readiness timeout is how long a start may take before the pod is restarted.
        startup.update(periodSeconds=1, failureThreshold=max(1, round(service.readiness.timeout)))
        container["startupProbe"] = startup
    if service.liveness is not None:
        alive = probe(service, service.liveness, names)
        if alive:
            container["livenessProbe"] = alive
    pod: dict[str, Any] = {"containers": [container]}
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if reads_prometheus_config(service):
        mounts.append({"name": "config", "mountPath": PROMETHEUS_CONFIG,
                       "subPath": "prometheus.yml", "readOnly": True})
        volumes.append({"name": "config", "configMap": {"name": f"{service.name}-config"}})
    if needed:
        mounts.append({"name": SECRETS_VOLUME, "mountPath": SECRETS_DIR, "readOnly": True})
        volumes.append(secret_volume(registry, needed))
    if mounts:
        container["volumeMounts"] = mounts
        pod["volumes"] = volumes
    return pod


def job(registry: Registry, service: Service, *, namespace: str, image: str) -> dict[str, Any]:
    """The Job running a task once (`kind = "task"`): no retry, as under `up` (its exit says)."""
    pod = {**pod_spec(registry, service, image), "restartPolicy": "Never"}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": service.name, "namespace": namespace,
                     "labels": labels(registry, service)},
        "spec": {"backoffLimit": 0,
                 "template": {"metadata": {"labels": labels(registry, service)}, "spec": pod}},
    }


def deployment(registry: Registry, service: Service, *, namespace: str, image: str,
               replicas: int) -> dict[str, Any]:
    """The Deployment running one managed service."""
    pod = pod_spec(registry, service, image)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": service.name, "namespace": namespace,
                     "labels": labels(registry, service)},
        "spec": {
            # Dependents keep state in their pod: only the stack's own services scale out.
            "replicas": replicas if own_service(service) else 1,
            "selector": {"matchLabels": labels(registry, service)},
            "template": {"metadata": {"labels": labels(registry, service)}, "spec": pod},
        },
    }


def secret_volume(registry: Registry, needed: list[Password]) -> dict[str, Any]:
    """The Secret's keys one pod reads, as files only root (its containers' user) can read."""
    return {"name": SECRETS_VOLUME, "secret": {
        "secretName": secret_name(registry), "defaultMode": 0o400,
        "items": [{"key": p.name, "path": p.name} for p in needed]}}


def k8s_service(registry: Registry, service: Service, *, namespace: str) -> dict[str, Any]:
    """The Service in front of a managed service; without a selector for an external one."""
    names = {n: port_name("http" if n == "main" else n, f"port name {n!r} of {service.name!r}")
             for n in service.port_map}
    spec: dict[str, Any] = {"ports": [
        {"name": names[n], "port": p, "targetPort": p if service.external else names[n],
         "protocol": "TCP"} for n, p in service.port_map.items()]}
    metadata: dict[str, Any] = {"name": service.name, "namespace": namespace,
                                "labels": labels(registry, service)}
    if service.external:
        metadata["annotations"] = {
            "ollamamax.io/external": "true",
            "ollamamax.io/endpoints": f"add an EndpointSlice for service {service.name!r} "
                                      "with the address where it runs"}
    else:
        spec["selector"] = labels(registry, service)
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def _documents(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=120)


def _kustomization(registry: Registry, namespace: str, resources: list[str],
                   generate_secrets: bool) -> str:
    """The kustomization: the resources, and the passwords' Secret from secrets/ if generated."""
    document: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": namespace, "resources": resources}
    found = passwords(registry)
    note = ""
    if found and generate_secrets:
        document["secretGenerator"] = [{"name": secret_name(registry),
                                        "files": [f"{p.name}={p.source}" for p in found]}]
        # The Deployments name the Secret as is: no hash suffix to rewrite into them.
        document["generatorOptions"] = {"disableNameSuffixHash": True}
    elif found:
        sources = " ".join(f"--from-file={p.source}" for p in found)
        note = (f"# The pods read Secret {secret_name(registry)!r}: create it first with\n"
                f"#   kubectl create secret generic {secret_name(registry)} -n {namespace} "
                f"{sources}\n# (or render with --generate-secrets --out DIR, and apply -k DIR)\n")
    return note + yaml.safe_dump(document, sort_keys=False)


def render_k8s(registry: Registry, *, namespace: str | None = None, image: str | None = None,
               replicas: int = 1, generate_secrets: bool = False) -> Rendering:
    """namespace.yaml, one `<service>.yaml` per service, and a kustomization listing them."""
    namespace = dns_label(namespace or registry.stack.name, "namespace")
    image = image or IMAGE
    top = header("k8s", registry.source) + "\n"
    files: Rendering = {"namespace.yaml": top + _documents(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})}
    for service in registry.active:
        dns_label(service.name, "service name")
        # A task without a port has no Service in front of it.
        docs = [k8s_service(registry, service, namespace=namespace)] if service.port_map else []
        if service.task:
            docs.insert(0, job(registry, service, namespace=namespace, image=image))
        elif service.managed:
            docs.insert(0, deployment(registry, service, namespace=namespace, image=image,
                                      replicas=replicas))
        files[f"{service.name}.yaml"] = top + _documents(*docs)
        if service.managed and reads_prometheus_config(service):
            files[f"{service.name}-config.yaml"] = top + _documents({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"{service.name}-config", "namespace": namespace},
                "data": {"prometheus.yml": prometheus_config(
                    registry, lambda s: f"{s.name}.{namespace}.svc:{s.primary_port}")},
            })
    files[KUSTOMIZATION] = top + _kustomization(
        registry, namespace, [n for n in files if n != KUSTOMIZATION], generate_secrets)
    return files
