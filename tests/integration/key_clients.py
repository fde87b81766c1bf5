"""One key tried on every front of a stack with the real clients; polled until refused."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import ollama
import openai

from tests.integration.services_procs import ws_chat_status

HI = [{"role": "user", "content": "hi"}]
MODEL = "llama3.2"


def gateway_accepts(url: str, key: str) -> bool:
    """The openai client's chat completion through the gateway; False on a 401."""
    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    try:
        answer = client.chat.completions.create(model=MODEL, messages=HI)  # type: ignore[arg-type]
    except openai.AuthenticationError:
        return False
    assert answer.choices[0].message.content
    return True


def hub_accepts(url: str, key: str) -> bool:
    """One chat over the hub's (or fallback's) WebSocket /chat; False on a 401 handshake."""
    status = ws_chat_status(url.replace("http://", "ws://") + "/chat",
                            headers={"Authorization": f"Bearer {key}"})
    assert status in (None, 401), status
    return status is None


def inference_accepts(url: str, key: str) -> bool:
    """The ollama client's chat on the inference service; False on a 401."""
    client = ollama.Client(host=url, headers={"Authorization": f"Bearer {key}"})
    try:
        answer = client.chat(model=MODEL, messages=HI)
    except ollama.ResponseError as exc:
        assert exc.status_code == 401, exc
        return False
    assert answer.message.content
    return True


CLIENTS: dict[str, Callable[[str, str], bool]] = {
    "gateway": gateway_accepts, "hub": hub_accepts, "fallback": hub_accepts,
    "inference": inference_accepts}


def accepted_by(urls: dict[str, str], key: str) -> dict[str, bool]:
    """Whether each service (name -> base URL) accepts the key now."""
    return {name: CLIENTS[name](url, key) for name, url in urls.items()}


def seconds_until_refused(urls: dict[str, str], key: str, since: float,
                          limit: float = 5.0) -> dict[str, float]:
    """Poll every service until each refuses the key: seconds from `since` (monotonic) to the
    first refusal seen, per service; an AssertionError naming those still accepting after
    `limit` (the 1 s requirement, checked generously)."""
    refused: dict[str, float] = {}
    while True:
        for name, url in urls.items():
            if name not in refused and not CLIENTS[name](url, key):
                refused[name] = round(time.monotonic() - since, 3)
        if len(refused) == len(urls):
            return refused
        if time.monotonic() - since > limit:
            raise AssertionError(f"still accepted after {limit}s by "
                                 f"{sorted(set(urls) - set(refused))}")
        time.sleep(0.01)


def created_key(argv: list[str], *options: str) -> str:
    """`ollamamax keys create ...`: the key read as a script would, from the last line."""
    done = subprocess.run([*argv, "keys", "create", *options], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()[-1]


def listed(argv: list[str]) -> dict[str, dict[str, object]]:
    """`ollamamax keys list --json`, by name."""
    done = subprocess.run([*argv, "keys", "list", "--json"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return {entry["name"]: entry for entry in json.loads(done.stdout)}


def revoked(argv: list[str], name: str) -> float:
    """`ollamamax keys revoke NAME`; the monotonic time it returned."""
    done = subprocess.run([*argv, "keys", "revoke", name], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic()
