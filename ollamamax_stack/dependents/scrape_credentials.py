"""The key Prometheus scrapes with: with API keys set, every `/metrics` needs one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CREDENTIALS_FILE = "scrape.credentials"  # under <run dir>/prometheus, mode 0600
SCRAPER_NAME = "prometheus"  # a keys-file entry of this name is the one Prometheus gets


def credentials_path(run_dir: Path) -> Path:
    """Where the scrape key lives: `<run dir>/prometheus/scrape.credentials`."""
    return run_dir / "prometheus" / CREDENTIALS_FILE


def write_scrape_credentials(env: Mapping[str, str], run_dir: Path) -> Path | None:
    """Write the key for Prometheus (mode 0600) and return its path; None (and no file left
    behind) when auth is off.

    The key is the one named `prometheus` in the keys file, else the first user key (a scraper
    needs no admin role), else the first configured one.
    """
    from ollamamax_stack.services.common.apikeys import USER, read_keys

    keys = read_keys(env)
    path = credentials_path(run_dir)
    if not keys:
        path.unlink(missing_ok=True)
        return None
    key = next((k for k, found in keys.items() if found.name == SCRAPER_NAME),
               next((k for k, found in keys.items() if found.role == USER), next(iter(keys))))
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{CREDENTIALS_FILE}.tmp")
    staged.unlink(missing_ok=True)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    os.replace(staged, path)
    return path
