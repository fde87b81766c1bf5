"""Benchmark `ollamamax top`: its CPU at 12 services and one look a second, beside baselines.

A supervised stack of 12 small real services (tests/fixtures/programs/service.py, in four
dependency layers) is brought up; then, at the same time and for --seconds, each in its own
80x24 tmux window (a real terminal): `ollamamax top`, `ollamamax status --watch` (the same
look once a second, drawn by rich), and an idle `python -c` (the interpreter alone). Each
one's CPU (its process tree, user + system, from psutil) is printed as % of one core and as a
ratio to the baselines measured in the same run. Target: top <= 2 % of one core.
Run: .venv/bin/python bench/top.py [--seconds 30] [--services 12]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.stacks.harness import Stack  # noqa: E402

TARGET = 2.0  # % of one core
WARMUP = 5.0  # seconds: imports and the first draw are not the steady cost


def registry(directory: Path, count: int) -> Path:
    """A registry of `count` services, each layer depending on the one before."""
    lines = ['[stack]', 'name = "bench-top"', f'root = "{ROOT / "tests" / "fixtures"}"',
             'run_dir = "run/bench-top"', '']
    for i in range(count):
        lines += [f"[services.svc{i:02d}]", f"port = {24600 + i}",
                  'command = "python3 programs/service.py --delay 0.1"',
                  "readiness = { http = \"/ready\", timeout = 30 }"]
        if i >= 3:
            lines.append(f'depends_on = ["svc{i - 3:02d}"]')
        lines.append("")
    path = directory / "ports.toml"
    path.write_text("\n".join(lines))
    return path


class Window:
    """One tmux window of our own server, running a command at 80x24."""

    def __init__(self, socket: Path, name: str, command: str) -> None:
        self.socket, self.name = socket, name
        verb = "new-session" if not socket.exists() else "new-window"
        target = ["-s", "bench"] if verb == "new-session" else ["-t", "bench"]
        subprocess.run(["tmux", "-S", str(socket), verb, "-d", *target, "-n", name,
                        *(["-x", "80", "-y", "24"] if verb == "new-session" else []),
                        command], check=True)
        shown = subprocess.run(["tmux", "-S", str(socket), "display-message", "-p", "-t",
                                f"bench:{name}", "#{pane_pid}"], capture_output=True,
                               text=True, check=True)
        self.pid = int(shown.stdout.strip())

    def screen(self) -> str:
        """What the window shows now."""
        return subprocess.run(["tmux", "-S", str(self.socket), "capture-pane", "-p", "-t",
                               f"bench:{self.name}"], capture_output=True, text=True).stdout

    def cpu_seconds(self) -> float:
        """User + system CPU of the window's process tree so far."""
        total = 0.0
        try:
            root = psutil.Process(self.pid)
            for proc in [root, *root.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            pass
        return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--services", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-top-") as tmp:
        directory = Path(tmp)
        stack = Stack("bench-top", directory / "run", registry(directory, args.services))
        socket = directory / "tmux.sock"
        windows: list[Window] = []
        try:
            done = stack.cli("up", "-d", timeout=180)
            if done.returncode != 0:
                print(done.stdout + done.stderr)
                return 1
            windows = [
                Window(socket, "top", shlex.join(stack.argv("top"))),
                Window(socket, "watch", shlex.join(stack.argv("status", "--watch"))),
                Window(socket, "idle", shlex.join(
                    [sys.executable, "-c", "import time; time.sleep(3600)"])),
            ]
            deadline = time.monotonic() + 60
            while f"svc{args.services - 1:02d}" not in windows[0].screen():
                if time.monotonic() > deadline:
                    print("top never showed the stack:\n" + windows[0].screen())
                    return 1
                time.sleep(0.2)
            time.sleep(WARMUP)
            start = [w.cpu_seconds() for w in windows]
            began = time.monotonic()
            time.sleep(args.seconds)
            spent = time.monotonic() - began
            used = [(w.cpu_seconds() - s) / spent * 100 for w, s in zip(windows, start,
                                                                          strict=True)]
            screen = windows[0].screen()
        finally:
            subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True)
            for window in windows:
                try:
                    psutil.Process(window.pid).kill()
                except psutil.Error:
                    pass
            stack.cleanup()
    top, watch, idle = used
    print(f"--- top at {args.services} services, 80x24 ---\n{screen}")
    print(f"{args.services} services, one look a second, {spent:.0f} s measured together:")
    print(f"  top            {top:5.2f} % of one core  (target <= {TARGET:.0f} %: "
          f"{'met' if top <= TARGET else 'MISSED'})")
    print(f"  status --watch {watch:5.2f} % of one core  (top / status --watch = "
          f"{top / watch if watch else float('inf'):.2f}x)")
    print(f"  idle python    {idle:5.2f} % of one core  (top - idle python = "
          f"{top - idle:.2f} points)")
    return 0 if top <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
