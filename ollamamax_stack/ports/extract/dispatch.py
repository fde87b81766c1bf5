"""Pick the extractor for a file by its name, extension and, for YAML, its content."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import PurePath

from ollamamax_stack.ports.extract import ExtractError, PortRef

SOURCE_SUFFIXES = frozenset({".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx",
                             ".go", ".py", ".rb", ".php", ".java", ".kt", ".rs", ".sh",
                             ".bash", ".zsh", ".vue", ".svelte"})
TEMPLATE_SUFFIXES = frozenset({".j2", ".jinja", ".jinja2", ".tpl", ".tmpl", ".template",
                               ".gotmpl", ".mustache", ".hbs", ".erb"})
LOCK_NAMES = frozenset({"package-lock.json", "yarn.lock", "pnpm-lock.yaml", "go.sum",
                        "poetry.lock", "cargo.lock", "gemfile.lock", "composer.lock",
                        "uv.lock", "pipfile.lock", "bun.lockb", "npm-shrinkwrap.json"})
_DOTENV_NAMES = frozenset({"env.example", "env.sample", "env.dist", "example.env"})
# Config kinds where `{{` means a template (in JS/TS source it is only JSX).
_TEMPLATED = frozenset({"yaml", "json", "nginx", "dotenv", "dockerfile"})


# A YAML that does not parse but has these top-level keys was meant as compose or Prometheus.
_TOP_KEYS = re.compile(r"^(?:services|scrape_configs):", re.MULTILINE)


class Skipped(Exception):
    """A file of a kind `ports check` does not read; the message says which kind."""


def file_format(path: PurePath) -> str:
    """dotenv, dockerfile, nginx, yaml, json, source or text, from the file's name."""
    name = path.name.lower()
    suffix = path.suffix.lower()
    if (name == ".env" or name.startswith(".env.") or suffix == ".env"
            or name in _DOTENV_NAMES):
        return "dotenv"
    if name.startswith(("dockerfile", "containerfile")) or suffix in (".dockerfile",
                                                                      ".containerfile"):
        return "dockerfile"
    parents = {part.lower() for part in path.parts[:-1]}
    if suffix == ".nginx" or suffix == ".conf" and (
            "nginx" in name or any("nginx" in part for part in parents)
            or parents & {"conf.d", "sites-available", "sites-enabled"}):
        return "nginx"
    if suffix in (".yml", ".yaml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    if suffix in SOURCE_SUFFIXES:
        return "source"
    return "text"


def skip_reason(path: PurePath) -> str | None:
    """Why a file is not read whatever it holds (a lock file, a template), or None."""
    name = path.name.lower()
    if name in LOCK_NAMES or path.suffix.lower() == ".lock":
        return "lock file"
    if path.suffix.lower() in TEMPLATE_SUFFIXES:
        return "template"
    return None


def _looks_like(path: PurePath, *words: str) -> bool:
    return any(word in path.name.lower() for word in words)


def extract(path: PurePath, text: str, names: frozenset[str] = frozenset(), *,
            named: bool = True, env: Mapping[str, str] | None = None) -> list[PortRef]:
    """The port references of one file.

    ExtractError when a file of a kind read here does not parse; Skipped when the file is of a
    kind not read (for a file the registry does not name: JSON data, prose, other YAML).
    """
    kind = file_format(path)
    if kind in _TEMPLATED and "{{" in text:
        raise Skipped("template")
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
        return _extract_yaml(path, text, names, named, env)
    if kind == "json":
        if not named:
            raise Skipped("JSON data")
        try:
            json.loads(text)
        except ValueError as exc:
            raise ExtractError(f"invalid JSON: {getattr(exc, 'msg', exc)}",
                               getattr(exc, "lineno", None)) from None
    elif kind == "text" and not named:
        raise Skipped("not a kind read here")
    return extract_urls(text)


def _extract_yaml(path: PurePath, text: str, names: frozenset[str], named: bool,
                  env: Mapping[str, str] | None) -> list[PortRef]:
    from ollamamax_stack.ports.extract.compose import extract_compose, is_compose
    from ollamamax_stack.ports.extract.prometheus import extract_prometheus, is_prometheus
    from ollamamax_stack.ports.extract.urls import extract_urls
    from ollamamax_stack.ports.extract.yamlnodes import compose_documents

    try:
        documents = compose_documents(text)
    except ExtractError:
        # A YAML file that is not named and not called compose/prometheus may be anything
        # (a test fixture, a Helm chart): it is not a kind read here.
        if named or _looks_like(path, "compose", "prometheus") or _TOP_KEYS.search(text):
            raise
        raise Skipped("YAML that does not parse") from None
    refs: list[PortRef] = []
    known = False
    for root in documents:
        if is_prometheus(root):
            refs.extend(extract_prometheus(root, names))
            known = True
        elif is_compose(root):
            refs.extend(extract_compose(root, names, env))
            known = True
    if not known:
        if not named:
            raise Skipped("YAML that is neither compose nor Prometheus")
        refs = extract_urls(text)
    return refs
