"""Run Prometheus with the rendered prometheus.yml, scraping the stack, data in the run dir."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import NoReturn

from ollamamax_stack.dependents.binaries import find_program
from ollamamax_stack.dependents.scrape_credentials import write_scrape_credentials
from ollamamax_stack.notify import notify
from ollamamax_stack.registry.model import Registry
from ollamamax_stack.render.addresses import host_port
from ollamamax_stack.render.alerts import FILE as ALERTS_FILE
from ollamamax_stack.render.alerts import render_alerts
from ollamamax_stack.render.prometheus import FILE, render_prometheus


def _write(path: Path, text: str) -> None:
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)


def write_config(registry: Registry, directory: Path, credentials: Path | None = None) -> Path:
    """Render prometheus.yml and the alert rules it loads into `directory` (each replaced
    atomically, the rules first) and return the config's path."""
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / ALERTS_FILE, render_alerts(registry)[ALERTS_FILE])
    path = directory / FILE
    _write(path, render_prometheus(registry, credentials, (ALERTS_FILE,))[FILE])
    return path


def prometheus_argv(program: Path, config: Path, data: Path, host: str, port: int) -> list[str]:
    """prometheus's command line: our config, our data dir, our address."""
    return [str(program), f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address={host_port(host, port)}"]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _run_and_notify(argv: list[str], ready_url: str) -> NoReturn:
    # Prometheus cannot send READY=1, so we stay its parent, send it, and pass signals on.
    child = subprocess.Popen(argv)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: child.send_signal(s))
    while child.poll() is None and not _ready(ready_url):
        time.sleep(0.1)
    if child.poll() is None:
        notify("READY=1", f"MAINPID={os.getpid()}")
    os._exit(child.wait())


def launch_prometheus(registry: Registry, host: str, port: int, run_dir: Path) -> NoReturn:
    """Write the config, then exec prometheus (or supervise it when systemd waits for READY=1)."""
    program = find_program("prometheus", "prometheus")
    directory = run_dir / "prometheus"
    # The stack's services got the same environment from supervisord: the same API keys.
    config = write_config(registry, directory, write_scrape_credentials(os.environ, run_dir))
    argv = prometheus_argv(program, config, directory / "data", host, port)
    if os.environ.get("NOTIFY_SOCKET"):
        connect = "127.0.0.1" if host in ("0.0.0.0", "") else host
        _run_and_notify(argv, f"http://{host_port(connect, port)}/-/ready")
    os.execv(argv[0], argv)
