"""Watch and roll (`up -d --watch`): a saved file rolls the held gateway under load.

The `held` fixture stack rooted in a temporary directory; the gateway reads its API keys from
`keys/api-keys.txt` at start and watches `keys/**`. Through the gateway, the openai client sends
chats at concurrency 16 with 20 streams open, no retries, while: an ignored file and the keys
file are saved (one roll: the new pid serves and knows the new key), then a broken keys file
is saved (no roll: the old process keeps serving, and the event says why).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from ollamamax_stack.supervise import events
from tests.chat_load import ChatLoad
from tests.fixtures.stacks.harness import ROOT, held_config, running_with_fake_ollama
from tests.integration.test_held_sockets import FAST, TOKEN_DELAY, HeldStack

pytestmark = pytest.mark.timeout(240)
LOAD_KEY = "unused"  # the key tests/chat_load.py sends
NEW_KEY = "sk-watched-new"


def watched_config(tmp: Path) -> Path:
    """The held registry rooted at `tmp`, its gateway reading and watching keys/."""
    keys = tmp / "keys"
    config = held_config(tmp, lambda text: text.replace(
        'command = "ollamamax serve gateway"\n',
        'command = "ollamamax serve gateway"\nwatch = ["keys/**"]\n'
        f'env = {{ OLLAMAMAX_API_KEYS_FILE = "{keys / "api-keys.txt"}" }}\n', 1))
    config.write_text(config.read_text().replace(f'root = "{ROOT}"', f'root = "{tmp}"'))
    (keys / "__pycache__").mkdir(parents=True)
    (keys / "api-keys.txt").write_text(f"{LOAD_KEY} load-client\n")
    (tmp / ".gitignore").write_text("*.bak\n")
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeldStack]:
    tmp = tmp_path_factory.mktemp("watch")
    made = HeldStack("held", tmp / "run", watched_config(tmp))
    made.keys = tmp / "keys"  # type: ignore[attr-defined]
    with running_with_fake_ollama(made, "--token-delay", TOKEN_DELAY, env=FAST,
                                  up_args=("--watch",)):
        yield made


def _watch_events(stack: HeldStack) -> list[dict[str, Any]]:
    return [e.as_json() for e in events.read(stack.run_dir, 0.0)
            if e.service == "gateway" and e.action in ("watch", "rolled")]


def _wait_event(stack: HeldStack, predicate: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [e for e in _watch_events(stack) if predicate(e)]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no event {what}: {_watch_events(stack)}")


def _models(stack: HeldStack, key: str) -> int:
    request = urllib.request.Request(
        f"{stack.registry.url(stack.registry.services['gateway'])}/v1/models",
        headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_a_watched_save_rolls_the_gateway_and_a_broken_one_keeps_the_old(
        stack: HeldStack) -> None:
    keys: Path = stack.keys  # type: ignore[attr-defined]
    _wait_event(stack, lambda e: e.get("reason") == "watching keys/**", "watching")
    time.sleep(0.5)  # the watch's inotify watches are set up just after it says so
    assert _models(stack, NEW_KEY) == 401
    (before,) = stack.gateway().values()
    with ChatLoad(stack.registry.url(stack.registry.services["gateway"])) as load:
        load.wait_completed(30)
        # Saves that never roll: a gitignored file and a cache, then the real save.
        (keys / "draft.bak").write_text("sk-draft\n")
        (keys / "__pycache__" / "keys.cpython-311.pyc").write_bytes(b"\0")
        with open(keys / "api-keys.txt", "a") as handle:
            handle.write(f"{NEW_KEY} newcomer\n")
        rolled = _wait_event(stack, lambda e: e["action"] == "rolled", "rolled")
        (slot, after), = stack.gateway().items()
        assert after != before and rolled["pid"] == after
        assert _models(stack, NEW_KEY) == 200  # the new process read the saved file
        assert not psutil.pid_exists(before)  # drained and gone: the new pid serves the load
        load.wait_completed(20)

        # A save that breaks the gateway: its new slot never gets ready, the old one serves.
        with open(keys / "api-keys.txt", "a") as handle:
            handle.write("one two three four\n")
        kept = _wait_event(stack, lambda e: (e.get("reason") or "").startswith("not rolled"),
                           "not rolled")
        assert "the old process still serves" in kept["reason"], kept
        assert "before it was ready" in kept["reason"], kept
        assert stack.gateway() == {slot: after}
        assert _models(stack, NEW_KEY) == 200
        load.wait_completed(20)
    tally = load.tally()
    print(f"\nwatched saves under load: {tally.line()}")
    assert tally.refused == 0, tally.errors
    assert tally.failed == 0 and tally.broken_streams == 0, tally.errors
    assert tally.ok > 0 and tally.streams_ok > 0
    triggers = [e["reason"] for e in _watch_events(stack) if e["action"] == "watch"
                and e["reason"].endswith(("rolling", "restarting"))]
    # Two saves of the keys file; the ignored files were never part of a trigger.
    assert triggers == ["keys/api-keys.txt changed: rolling"] * 2, triggers
    log = (stack.run_dir / "watcher.log").read_text()
    assert f"gateway: rolled for keys/api-keys.txt: pid {after} serves" in log
