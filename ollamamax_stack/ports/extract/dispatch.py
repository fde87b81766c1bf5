"""Pick the extractor for a file by its name, extension and, for YAML, its content."""

from __future__ import annotations

import json
from pathlib import PurePath

from ollamamax_stack.ports.extract import ExtractError, PortRef


def file_format(path: PurePath) -> str:
    """dotenv, dockerfile, nginx, yaml, json or text, from the file's name."""
    name = path.name.lower()
    suffix = path.suffix.lower()
    if name == ".env" or name.startswith(".env.") or suffix == ".env":
        return "dotenv"
    if name.startswith(("dockerfile", "containerfile")) or suffix in (".dockerfile",
                                                                      ".containerfile"):
        return "dockerfile"
    if suffix == ".conf" and ("nginx" in name or "nginx" in path.parent.name.lower()) or (
            suffix == ".nginx"):
        return "nginx"
    if suffix in (".yml", ".yaml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    return "text"


def extract(path: PurePath, text: str, names: frozenset[str] = frozenset()) -> list[PortRef]:
    """The port references of one file; ExtractError when it does not parse in its format."""
    kind = file_format(path)
    if kind == "dotenv":
        from ollamamax_stack.ports.extract.dotenv import extract_dotenv

        return extract_dotenv(text, names)
    if kind == "dockerfile":
        from ollamamax_stack.ports.extract.dockerfile import extract_dockerfile

        return extract_dockerfile(text, names)
    if kind == "nginx":
        from ollamamax_stack.ports.extract.nginx import extract_nginx

        return extract_nginx(text, names)
    from ollamamax_stack.ports.extract.urls import extract_urls

    if kind == "yaml":
        return _extract_yaml(text, names)
    if kind == "json":
        try:
            json.loads(text)
        except ValueError as exc:
            raise ExtractError(f"invalid JSON: {getattr(exc, 'msg', exc)}",
                               getattr(exc, "lineno", None)) from None
    return extract_urls(text)


def _extract_yaml(text: str, names: frozenset[str]) -> list[PortRef]:
    from ollamamax_stack.ports.extract.compose import extract_compose, is_compose
    from ollamamax_stack.ports.extract.prometheus import extract_prometheus, is_prometheus
    from ollamamax_stack.ports.extract.urls import extract_urls
    from ollamamax_stack.ports.extract.yamlnodes import compose_documents

    refs: list[PortRef] = []
    known = False
    for root in compose_documents(text):
        if is_prometheus(root):
            refs.extend(extract_prometheus(root, names))
            known = True
        elif is_compose(root):
            refs.extend(extract_compose(root, names))
            known = True
    if not known:
        # Any other YAML (CI workflows, Kubernetes manifests): its local URLs.
        refs = extract_urls(text)
    return refs
