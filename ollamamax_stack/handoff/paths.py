"""Where the holder and the per-process probe sockets live: the run dir, or a short fallback."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

# sun_path holds 108 bytes with the trailing NUL; stay clear of it (as supervise/paths does).
SOCKET_PATH_MAX = 100
HOLDER_SOCKET = "sockets.sock"


def _short_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime)
    return Path(tempfile.gettempdir()) / f"ollamamax-{os.getuid()}"


def unix_path(run_dir: Path, name: str) -> Path:
    """`run_dir/name`, or a short path keyed by the run dir when that would not fit sun_path."""
    inside = run_dir / name
    if len(os.fsencode(inside)) <= SOCKET_PATH_MAX:
        return inside
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:12]
    return _short_dir() / f"ollamamax-{digest}-{name}"


def holder_socket(run_dir: Path) -> Path:
    """The Unix socket the holder hands listening sockets out on."""
    return unix_path(run_dir, HOLDER_SOCKET)


def probe_prefix(run_dir: Path, slot: str) -> str:
    """The start of a slot's probe socket paths (`<prefix>.<port name>.sock`)."""
    return str(unix_path(run_dir, f"probe-{slot}"))


def probe_socket(prefix: str, port_name: str) -> Path:
    """The Unix socket on which one process of a service answers its probes for one port."""
    return Path(f"{prefix}.{port_name}.sock")


def prepare(run_dir: Path) -> None:
    """Create the fallback directory (mode 0700) when some socket path needs it."""
    base = _short_dir()
    if unix_path(run_dir, "probe-" + "x" * 48 + ".main.sock").parent == base:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
