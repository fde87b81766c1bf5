"""What reaches logs, errors and `status`: control characters escaped, secrets and nodes hidden."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from ollamamax_stack.errors import UsageError
from ollamamax_stack.services.common.logsafe import LOG_FORMAT, SafeFormatter
from ollamamax_stack.services.common.settings import ServiceSettings
from ollamamax_stack.services.common.textsafe import hide_addresses, printable, redact_tokens
from ollamamax_stack.services.routing.node import normalise_url


def test_printable_escapes_every_control_character() -> None:
    assert printable("a\nb\x1bc\x07\x9b\x7f") == "a\\nb\\x1bc\\x07\\x9b\\x7f"
    assert printable("plain — ünïcode") == "plain — ünïcode"


def test_the_formatter_keeps_one_record_on_one_line() -> None:
    record = logging.LogRecord("ollamamax.services", logging.INFO, __file__, 1,
                               "node %s is down", ("http://u\nINFO forged\x1bc",), None)
    line = SafeFormatter(LOG_FORMAT).format(record)
    assert line == "INFO ollamamax.services: node http://u\\nINFO forged\\x1bc is down"
    try:
        raise ValueError("bad\x1b[2J")
    except ValueError:
        record.exc_info = sys.exc_info()
    text = SafeFormatter(LOG_FORMAT).format(record)
    assert "\x1b" not in text and "ValueError: bad\\x1b[2J" in text


def test_tokens_are_redacted_and_addresses_hidden() -> None:
    assert redact_tokens("/chat", "token=abc.def&x=1") == "/chat?token=***&x=1"
    assert redact_tokens("/x", "a=1&api_key=sk-1") == "/x?a=1&api_key=***"
    # Decoded first, as the server reads them: an escaped name or a `%26` hides nothing.
    assert redact_tokens("/chat", "%74oken=abc&Access%5FToken=d%26e") == (
        "/chat?token=***&Access_Token=***")
    assert redact_tokens("/health") == "/health"
    text = ("node n1 (http://10.0.0.5:11434) failed: connect call failed ('10.0.0.5', 11434); "
            "[fd00::1]:11434 and 10.0.0.6:80")
    hidden = hide_addresses(text)
    assert "10.0.0" not in hidden and "fd00" not in hidden and "n1" in hidden


@pytest.mark.parametrize("url", ["http://u\nx:1", "http://a b", "http://h\x00", "ftp://h",
                                 "http://", "http://user:pw@h:1", "http://h:1/?q=1",
                                 "http://h:99999", "http://h:0"])
def test_node_urls_are_strict(url: str) -> None:
    with pytest.raises(ValueError):
        normalise_url(url)


def test_a_bad_ollama_nodes_entry_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    from ollamamax_stack.services.common.auth import Authenticator
    from ollamamax_stack.services.inference.app import create_apps

    settings = ServiceSettings(name="inference", host="127.0.0.1", ports={"api": 1, "web": 2},
                               env={"OLLAMA_NODES": "http://ok:1,http://a\x1bc:1"},
                               run_dir=tmp_path)
    with pytest.raises(UsageError, match=r"OLLAMA_NODES: 'http://a\\\\x1bc:1'"):
        create_apps(settings, Authenticator({}, b"s" * 32, "inference"))

