"""Benchmark watch and roll: a watched save to a new process serving, against a start-to-ready.

The `held` fixture stack (gateway and inference on held sockets, a fake Ollama) rooted in a
temporary directory, brought up with `up -d --watch`; the gateway reads its API keys from
keys/api-keys.txt at start and watches `keys/**` (tests/integration/test_supervise_watch.py).
Each round appends a new key to the file and times, from the save, until that key is
accepted: only a new gateway process knows it. The baseline, in the same run: the gateway's
own start-to-ready, as the supervisor timed the new slot of that very roll (from its start to
its readiness). Prints each round, then the medians and their ratio (goal: <= 1.5x).
Run: .venv/bin/python bench/watch.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ollamamax_stack.supervise import events  # noqa: E402
from tests.fixtures.stacks.harness import running_with_fake_ollama  # noqa: E402
from tests.integration.test_held_sockets import FAST, HeldStack  # noqa: E402
from tests.integration.test_supervise_watch import watched_config  # noqa: E402

GOAL = 1.5


def accepted(url: str, key: str) -> bool:
    """Whether the gateway answers this key (a new process that read the saved file does)."""
    request = urllib.request.Request(f"{url}/v1/models",
                                     headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return False


def slot_ready_ms(stack: HeldStack, since: float) -> float:
    """The start-to-ready of the gateway slot that got ready after `since` (its ready event)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for event in events.read(stack.run_dir, since):
            if (event.service == "gateway" and event.slot and event.action == "ready"
                    and event.reason and event.reason.startswith("after ")):
                return float(event.reason.split()[1])
        time.sleep(0.05)
    raise SystemExit("no ready event of a new gateway slot within 60 s")


def one_round(stack: HeldStack, keys: Path, number: int) -> tuple[float, float]:
    """(save -> new process serving, that process's start-to-ready), in milliseconds."""
    url = stack.registry.url(stack.registry.services["gateway"])
    key = f"sk-bench-{number}"
    (before,) = stack.gateway().values()
    wall, started = time.time(), time.perf_counter()
    with open(keys / "api-keys.txt", "a") as handle:
        handle.write(f"{key} round-{number}\n")
    deadline = started + 60
    while not accepted(url, key):
        if time.perf_counter() > deadline:
            raise SystemExit(f"round {number}: the saved key was not served within 60 s")
        time.sleep(0.01)
    serving_ms = (time.perf_counter() - started) * 1000
    baseline_ms = slot_ready_ms(stack, wall)
    # The next round saves on an idle watcher: this roll is over once the old process drained.
    while not any(e.action == "rolled" for e in events.read(stack.run_dir, wall)):
        time.sleep(0.05)
    assert before not in stack.gateway().values()
    return serving_ms, baseline_ms


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ollamamax-watch-") as tmp:
        stack = HeldStack("held", Path(tmp) / "run", watched_config(Path(tmp)))
        with running_with_fake_ollama(stack, env=FAST, up_args=("--watch",)):
            while not any(e.action == "watch" and e.reason == "watching keys/**"
                          for e in events.read(stack.run_dir, 0.0)):
                time.sleep(0.05)
            time.sleep(0.5)  # inotify's watches are set up just after the watcher says so
            saves, starts = [], []
            for number in range(1, args.rounds + 1):
                serving, baseline = one_round(stack, Path(tmp) / "keys", number)
                saves.append(serving)
                starts.append(baseline)
                print(f"round {number}: save -> new process serving {serving:7.0f} ms; "
                      f"its start-to-ready {baseline:7.0f} ms; ratio {serving / baseline:.2f}x")
    ratio = statistics.median(saves) / statistics.median(starts)
    print(f"median: save -> serving {statistics.median(saves):.0f} ms, gateway start-to-ready "
          f"{statistics.median(starts):.0f} ms: {ratio:.2f}x (goal <= {GOAL}x)")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
