"""The rendered files pass the tools that consume them: systemd, promtool, compose, Kubernetes."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ollamamax_stack.registry import load_registry
from ollamamax_stack.render.base import write_files
from ollamamax_stack.render.passwords import ensure_password_files
from ollamamax_stack.render.targets import RenderOptions, passwords_to_write, render
from tests.render_project import ROOT
from tests.system import missing_program

REGISTRY = ROOT / "config" / "ports.toml"
# `systemd-analyze security` exposure, 0 (locked down) .. 10 (exposed); 2.0 is still "OK" and
# leaves room only for what a network service needs (AF_INET, its own state directory).
SECURITY_THRESHOLD = 2.0
KUBERNETES_VERSION = "1.30.0"


def need(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        missing_program(program, package)
    assert path is not None
    return path


def rendered(tmp_path: Path, target: str, options: RenderOptions | None = None,
             profile: str = "full") -> Path:
    registry = load_registry(REGISTRY, profile=profile, offset=3)
    out = tmp_path / target
    write_files(render(target, registry, options), out)
    return out


@pytest.mark.parametrize("sockets", [False, True], ids=["plain", "socket-activation"])
def test_systemd_units_verify_and_score_within_threshold(tmp_path: Path, sockets: bool) -> None:
    analyze = need("systemd-analyze", "systemd")
    out = rendered(tmp_path, "systemd", RenderOptions(socket_activation=sockets))
    units = sorted(p.name for p in out.iterdir())
    assert any(u.endswith(".socket") for u in units) == sockets
    env = {**os.environ, "SYSTEMD_LOG_COLOR": "0"}
    verify = subprocess.run([analyze, "verify", "--man=no", *units], cwd=out, env=env,
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    for unit in (u for u in units if u.endswith(".service")):
        security = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", unit],
                                  cwd=out, env=env, capture_output=True, text=True, check=False)
        match = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
        assert match, security.stdout + security.stderr
        assert float(match.group(1)) <= SECURITY_THRESHOLD, f"{unit}: {match.group(0)}"


def test_systemd_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit with a misspelt directive does not verify."""
    analyze = need("systemd-analyze", "systemd")
    out = rendered(tmp_path, "systemd")
    unit = out / "ollamamax-gateway.service"
    unit.write_text(unit.read_text().replace("KillMode=mixed", "KillMode=sometimes"))
    verify = subprocess.run([analyze, "verify", "--man=no", unit.name], cwd=out,
                            capture_output=True, text=True, check=False)
    # verify still exits 0 on a bad value: that is why the test above also wants empty stderr.
    assert "kill mode" in verify.stderr and unit.name in verify.stderr


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = need("promtool", "prometheus")
    out = rendered(tmp_path, "prometheus")
    result = subprocess.run([promtool, "check", "config", str(out / "prometheus.yml")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("profile", ["default", "full"])
def test_compose_file_passes_docker_compose_config(tmp_path: Path, profile: str) -> None:
    compose = need("docker-compose", "docker-compose")
    out = rendered(tmp_path, "compose", profile=profile)
    result = subprocess.run([compose, "-f", str(out / "docker-compose.yml"), "config", "-q"],
                            cwd=out, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    if profile == "full":
        promtool = need("promtool", "prometheus")
        check = subprocess.run([promtool, "check", "config", str(out / "prometheus-compose.yml")],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("profile", ["default", "full"])
def test_k8s_manifests_validate_against_the_kubernetes_schema(tmp_path: Path,
                                                              profile: str) -> None:
    out = rendered(tmp_path, "k8s", RenderOptions(namespace="ollamamax-test", replicas=2,
                                                  image="registry.example/ollamamax:1"),
                   profile=profile)
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    kinds: list[str] = []
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((out / name).read_text()):
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
            kinds.append(document["kind"])
            assert document["metadata"].get("namespace", "ollamamax-test") == "ollamamax-test"
    assert kinds.count("Deployment") == len(load_registry(REGISTRY, profile=profile).managed)


def test_kubernetes_validate_rejects_a_broken_manifest(tmp_path: Path) -> None:
    """The check above can fail: a Deployment with a string for replicas is refused."""
    out = rendered(tmp_path, "k8s")
    deployment = next(yaml.safe_load_all((out / "gateway.yaml").read_text()))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_prometheus_config_carries_the_scrape_key_when_api_keys_are_set(tmp_path: Path) -> None:
    promtool = need("promtool", "prometheus")
    run_dir, out = tmp_path / "run", tmp_path / "out"
    env = {**os.environ, "OLLAMAMAX_API_KEYS": "sk-scrape,sk-other"}
    command = [sys.executable, "-m", "ollamamax_stack", "--config", str(REGISTRY), "--run-dir",
               str(run_dir), "--profile", "full", "render", "prometheus", "--out", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((out / "prometheus.yml").read_text())
    files = {job["job_name"]: job["authorization"]["credentials_file"]
             for job in config["scrape_configs"]}
    assert set(files) == {"gateway", "hub", "fallback", "inference"}
    credentials = Path(next(iter(set(files.values()))))
    assert set(files.values()) == {str(credentials)}
    assert credentials.parent.parent == run_dir.resolve()
    assert credentials.read_text() == "sk-scrape"
    assert credentials.stat().st_mode & 0o777 == 0o600
    check = subprocess.run([promtool, "check", "config", str(out / "prometheus.yml")],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr

    # Keys gone: no credentials in the config, and no key left in the run dir.
    env.pop("OLLAMAMAX_API_KEYS")
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((out / "prometheus.yml").read_text())
    assert not any("authorization" in job for job in config["scrape_configs"])
    assert not credentials.exists()


def test_kustomize_builds_the_generated_passwords_secret_the_pods_mount(tmp_path: Path) -> None:
    kubectl = need("kubectl", "kubernetes-client")
    registry = load_registry(REGISTRY, profile="full")
    options = RenderOptions(namespace="ollamamax-test", generate_secrets=True)
    out = tmp_path / "k8s"
    write_files(render("k8s", registry, options), out)
    files = ensure_password_files(passwords_to_write("k8s", registry, options), out)
    built = subprocess.run([kubectl, "kustomize", str(out)], capture_output=True, text=True,
                           check=False)
    assert built.returncode == 0, built.stderr
    documents = list(yaml.safe_load_all(built.stdout))
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    (secret,) = [d for d in documents if d["kind"] == "Secret"]
    assert secret["metadata"] == {"name": "ollamamax-passwords", "namespace": "ollamamax-test"}
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        f.name: f.read_text() for f in files}
    mounting = {d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"
                for v in d["spec"]["template"]["spec"].get("volumes", [])
                if v.get("secret", {}).get("secretName") == "ollamamax-passwords"}
    assert mounting == {"gateway", "hub", "fallback", "inference", "postgres", "redis"}
