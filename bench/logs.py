"""Wall time of `ollamamax logs --since 1h --grep X` on 200 MB of logs, against `grep X` over the
same files in the same run.

The logs are what supervisord writes (supervise/logstamp.py): 4 services, each a live file and
rotated copies of 10 MB, every line stamped within the last hour (so `--since 1h` skips
nothing: the worst case for it), one line in 10,000 holding the needle. Both commands print
their matches to a pipe that is read. Target: `logs` within 3x `grep`. Prints medians and
the ratio; `BENCH_LOG_MB` changes the size.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OLLAMAMAX = Path(sys.executable).parent / "ollamamax"
RUNS = 5
SERVICES = ("gateway", "hub", "inference", "worker")
FILE_MB = 10
TOTAL_MB = int(os.environ.get("BENCH_LOG_MB", "200"))
NEEDLE = "needle-7f3a"
EVERY = 10_000  # one line in EVERY holds the needle
TARGET = 3.0


def write_logs(run_dir: Path) -> list[Path]:
    """TOTAL_MB of stamped lines, split into FILE_MB files per service (rotated names)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ollamamax_stack.supervise.logstamp import stamp

    logs = run_dir / "logs"
    logs.mkdir(parents=True)
    per_service = TOTAL_MB // len(SERVICES)
    files_each = max(1, per_service // FILE_MB)
    rng = random.Random(7)
    start = time.time() - 3000  # all inside the last hour
    words = [b"GET", b"POST", b"/v1/chat/completions", b"200", b"model=llama3", b"ms", b"ok",
             b"request", b"stream", b"tokens", b"slot", b"ready", b"pool", b"node-3"]
    paths: list[Path] = []
    for service in SERVICES:
        when = start
        count = 0
        for index in range(files_each - 1, -1, -1):  # oldest (highest number) first
            path = logs / (f"{service}.log.{index}" if index else f"{service}.log")
            chunks: list[bytes] = []
            size = 0
            while size < FILE_MB * 1024 * 1024:
                when += 0.0004
                words_here = b" ".join(rng.choice(words) for _ in range(8))
                count += 1
                if count % EVERY == 0:
                    words_here += b" " + NEEDLE.encode()
                line = stamp(when) + b" " + service.encode() + b"[4242]: " + words_here + b"\n"
                chunks.append(line)
                size += len(line)
            path.write_bytes(b"".join(chunks))
            paths.append(path)
    return paths


def registry(root: Path, run_dir: Path) -> Path:
    """A registry whose services are the ones that wrote the logs."""
    lines = ["[stack]", 'name = "benchlogs"', f'run_dir = "{run_dir}"']
    for i, service in enumerate(SERVICES):
        lines += [f"[services.{service}]", f"port = {20100 + i}", 'command = "true"']
    path = root / "ports.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def wall(command: list[str]) -> tuple[float, int]:
    """Wall time of one run and how many lines it printed."""
    begin = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False)
    elapsed = time.perf_counter() - begin
    if done.returncode not in (0, 1):  # grep: 1 is "no match"
        raise SystemExit(f"{command[0]} failed: {done.stderr.decode()[-400:]}")
    return elapsed, done.stdout.count(b"\n")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        root = Path(tmp)
        run_dir = root / "run"
        files = write_logs(run_dir)
        config = registry(root, run_dir)
        total = sum(p.stat().st_size for p in files) / 1024 / 1024
        grep = ["grep", NEEDLE, *map(str, files)]
        logs = [str(OLLAMAMAX), "--config", str(config), "logs", "--since", "1h", "--grep",
                NEEDLE]
        for command in (grep, logs):  # page cache warm for both
            wall(command)
        grep_times, logs_times, start_times = [], [], []
        grep_lines = logs_lines = 0
        for _ in range(RUNS):  # alternated, so load on the machine falls on both alike
            elapsed, grep_lines = wall(grep)
            grep_times.append(elapsed)
            elapsed, logs_lines = wall(logs)
            logs_times.append(elapsed)
            start_times.append(wall([sys.executable, "-c", "pass"])[0])
        if grep_lines != logs_lines:
            raise SystemExit(f"grep found {grep_lines} lines, logs {logs_lines}")
        g, o = statistics.median(grep_times), statistics.median(logs_times)
        print(f"{total:.0f} MB in {len(files)} files, {logs_lines} matching lines, "
              f"median of {RUNS}")
        print(f"grep {NEEDLE}:                        {g * 1000:8.1f} ms")
        print(f"ollamamax logs --since 1h --grep:  {o * 1000:8.1f} ms  (of which this "
              f"interpreter's bare start: {statistics.median(start_times) * 1000:.1f} ms)")
        ratio = o / g
        print(f"ratio logs/grep: {ratio:.2f}x (target <= {TARGET:.0f}x) "
              f"{'ok' if ratio <= TARGET else 'OVER'}")
        if ratio > TARGET:
            sys.exit(1)


if __name__ == "__main__":
    main()
