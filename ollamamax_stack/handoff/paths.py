"""Where the holder and the per-process probe sockets live: the run dir, or a short fallback."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ollamamax_stack.errors import OllamamaxError

# sun_path holds 108 bytes with the trailing NUL; stay clear of it (as supervise/paths does).
SOCKET_PATH_MAX = 100
SUN_PATH = 108
HOLDER_SOCKET = "sockets.sock"


def fits(path: Path | str) -> bool:
    """Whether a socket's full path stays within SOCKET_PATH_MAX bytes."""
    return len(os.fsencode(path)) <= SOCKET_PATH_MAX


def check_fits(path: Path | str) -> None:
    """One clear line instead of `AF_UNIX path too long` from deep inside a service."""
    if len(os.fsencode(path)) >= SUN_PATH:
        raise OllamamaxError(f"the Unix socket path {path} is {len(os.fsencode(path))} bytes; "
                             f"AF_UNIX allows fewer than {SUN_PATH}: use a shorter --run-dir, "
                             "or set XDG_RUNTIME_DIR to a short directory")


def _short_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime)
    return Path(tempfile.gettempdir()) / f"ollamamax-{os.getuid()}"


def _short(run_dir: Path, name: str) -> Path:
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:12]
    return _short_dir() / f"ollamamax-{digest}-{name}"


def unix_path(run_dir: Path, name: str) -> Path:
    """`run_dir/name`, or a short path keyed by the run dir when that would not fit sun_path."""
    inside = run_dir / name
    if fits(inside):
        return inside
    short = _short(run_dir, name)
    check_fits(short)
    return short


def holder_socket(run_dir: Path) -> Path:
    """The Unix socket the holder hands listening sockets out on."""
    return unix_path(run_dir, HOLDER_SOCKET)


def probe_prefix(run_dir: Path, slot: str, port_names: Iterable[str]) -> str:
    """The start of a slot's probe socket paths (`<prefix>.<port name>.sock`).

    Decided on the longest full name, so every port's socket fits where the prefix points.
    """
    longest = max(port_names, key=len, default="main")
    name = f"probe-{slot}"
    if fits(probe_socket(str(run_dir / name), longest)):
        return str(run_dir / name)
    short = str(_short(run_dir, name))
    check_fits(probe_socket(short, longest))
    return short


def probe_socket(prefix: str, port_name: str) -> Path:
    """The Unix socket on which one process of a service answers its probes for one port."""
    return Path(f"{prefix}.{port_name}.sock")


def prepare(run_dir: Path) -> None:
    """Create the fallback directory (mode 0700) when some socket path needs it."""
    base = _short_dir()
    if not fits(probe_socket(str(run_dir / ("probe-" + "x" * 48)), "main")):
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
