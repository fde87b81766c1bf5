"""The terminal chat client: tries the gateway, then the hub, then the fallback (port document)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect

from ollamamax_stack.registry.model import Registry
from ollamamax_stack.services.common.settings import FRONT_ENDS, chat_url

OPEN_TIMEOUT = 3.0
TOKEN_ENV = "OLLAMAMAX_TOKEN"  # the credential, never on the command line (`ps` shows it)
LEGACY_TOKEN_ENV = "OLLAMAMAX_API_KEY"


def token_from(env: Mapping[str, str]) -> str | None:
    """The credential from `$OLLAMAMAX_TOKEN` (or the older `$OLLAMAMAX_API_KEY`)."""
    return env.get(TOKEN_ENV) or env.get(LEGACY_TOKEN_ENV) or None


def chat_endpoints(registry: Registry | None, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(service, ws URL of /chat) for gateway, hub and fallback, from env or the registry."""
    found = []
    for name in FRONT_ENDS:
        url = env.get(f"OLLAMAMAX_{name.upper()}_URL")
        if not url and registry is not None and name in registry.services:
            url = registry.url(registry.services[name])
        if url:
            found.append((name, chat_url(url)))
    return found


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _first_model(nodes: list[dict[str, Any]]) -> str | None:
    for node in nodes:
        if node.get("healthy") and node.get("models"):
            return str(node["models"][0])
    return None


def _converse(ws: ClientConnection, text: str, model: str | None) -> int:
    nodes: list[dict[str, Any]] = []
    greeting = json.loads(ws.recv(timeout=OPEN_TIMEOUT))
    if greeting.get("type") == "nodes":
        nodes = greeting.get("nodes", [])
    model = model or _first_model(nodes)
    if model is None:
        _say("ollamamax: error: no healthy node serves any model; pass --model")
        return 1
    ws.send(json.dumps({"type": "chat", "id": 1, "model": model, "stream": True,
                        "messages": [{"role": "user", "content": text}]}))
    for raw in ws:
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "chunk" and message.get("id") == 1:
            sys.stdout.write(message.get("content", ""))
            sys.stdout.flush()
        elif kind == "done" and message.get("id") == 1:
            usage = message.get("usage") or {}
            sys.stdout.write("\n")
            _say(f"[{model} on node {message.get('node')}, "
                 f"{usage.get('completion_tokens', 0)} tokens]")
            return 0
        elif kind == "error":
            _say(f"ollamamax: error: {message.get('code')}: {message.get('message')}")
            return 1
    _say("ollamamax: error: the connection closed before the answer was complete")
    return 1


def run_chat(endpoints: list[tuple[str, str]], text: str, *, model: str | None = None,
             token: str | None = None, ask: Callable[[str], str] | None = None) -> int:
    """Ask `text` on the first endpoint that answers; the exit code for the CLI.

    The credential goes in the Authorization header. Refused without one, `ask` (a prompt on
    the terminal) may supply it once.
    """
    failures = []
    pending = list(endpoints)
    while pending:
        name, url = pending[0]
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            ws = connect(url, open_timeout=OPEN_TIMEOUT, max_size=None,
                         additional_headers=headers)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 401 and token is None and ask is not None:
                token = ask(f"{name} needs an API key or token: ") or None
                ask = None
                if token:
                    continue  # the same endpoint again, with the credential
            if status == 401:
                _say(f"ollamamax: error: {name} ({url}) refused the credentials: "
                     f"set {TOKEN_ENV} (or run in a terminal to be asked)")
                return 1
            failures.append(f"{name} {url}: HTTP {status}")
            _say(f"{name} ({url}) answered HTTP {status}; trying the next endpoint")
            pending.pop(0)
            continue
        except (OSError, TimeoutError, WebSocketException) as exc:
            failures.append(f"{name} {url}: {exc or type(exc).__name__}")
            _say(f"{name} ({url}) is not answering; trying the next endpoint")
            pending.pop(0)
            continue
        with ws:
            _say(f"connected to {name} ({url})")
            return _converse(ws, text, model)
    _say("ollamamax: error: no chat endpoint answered: " + "; ".join(failures or ["none known"]))
    return 1
