"""Where a running stack keeps its files: config, socket, pid files, logs, state."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# sun_path holds 108 bytes with the trailing NUL; stay well clear of it.
SOCKET_PATH_MAX = 100
# The stack's files are its own: configs, state, logs, databases, sockets (no group, no other).
STACK_UMASK = 0o077


def _short_socket(run_dir: Path) -> Path:
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:12]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path(
        tempfile.gettempdir()) / f"ollamamax-{os.getuid()}"
    return base / f"ollamamax-{digest}.sock"


@dataclass(frozen=True)
class RunPaths:
    """The files of one stack, all derived from its run directory."""

    run_dir: Path

    @property
    def config(self) -> Path:
        """The rendered supervisord configuration."""
        return self.run_dir / "supervisord.conf"

    @property
    def socket(self) -> Path:
        """The XML-RPC Unix socket: in the run dir, or a short fallback when that is too long."""
        inside = self.run_dir / "supervisord.sock"
        if len(os.fsencode(inside)) <= SOCKET_PATH_MAX:
            return inside
        return _short_socket(self.run_dir)

    @property
    def supervisord_pid(self) -> Path:
        """supervisord's own pid file."""
        return self.run_dir / "supervisord.pid"

    @property
    def supervisord_log(self) -> Path:
        """supervisord's own log."""
        return self.run_dir / "supervisord.log"

    @property
    def watcher_log(self) -> Path:
        """What the watcher (supervisord's event listener) prints on its stderr."""
        return self.run_dir / "watcher.log"

    @property
    def stack_lock(self) -> Path:
        """The lock that lets one `up` or `down` at a time work on this stack."""
        return self.run_dir / "stack.lock"

    @property
    def state(self) -> Path:
        """The persisted stack state that `status` reads from any terminal."""
        return self.run_dir / "state.json"

    @property
    def lock(self) -> Path:
        """The lock serialising state updates between `up`, the watcher and other commands."""
        return self.run_dir / "state.lock"

    @property
    def logs(self) -> Path:
        """The directory of per-service logs."""
        return self.run_dir / "logs"

    def log(self, service: str) -> Path:
        """One service's combined stdout and stderr."""
        return self.logs / f"{service}.log"

    def prepare(self) -> None:
        """Create the run directory (mode 0700), its logs, and the socket's directory.

        Also sets this process's umask to 077, inherited by supervisord and every service,
        and takes group and other bits off files an older stack left in the run dir or logs.
        """
        os.umask(STACK_UMASK)
        for directory in (self.run_dir, self.logs, self.socket.parent):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o700)
        if self.socket.parent != self.run_dir:
            owner = self.socket.parent.stat().st_uid
            if owner != os.getuid():
                from ollamamax_stack.errors import OllamamaxError

                raise OllamamaxError(f"socket directory {self.socket.parent} belongs to uid "
                                     f"{owner}, not to you; set XDG_RUNTIME_DIR or --run-dir")
            os.chmod(self.socket.parent, 0o700)
        for directory in (self.run_dir, self.logs):
            for entry in os.scandir(directory):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mode & 0o077:
                    os.chmod(entry.path, entry.stat().st_mode & 0o700)
