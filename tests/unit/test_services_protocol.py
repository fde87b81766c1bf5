"""The /chat protocol's parsing: each bad message gets its own error code."""

from __future__ import annotations

import json

import pytest

from ollamamax_stack.services.hub import protocol


@pytest.mark.parametrize(("text", "code"), [
    ("{", protocol.BAD_JSON),
    ("3", protocol.BAD_JSON),
    ("[" * 100_000 + "]" * 100_000, protocol.BAD_JSON),  # no RecursionError out of the socket
    ('{"type": "chat", "id": 1, "model": "m", "messages": [{"role": "user", "content": "x"}],'
     ' "options": {"temperature": NaN}}', protocol.BAD_JSON),
    ('{"type": "sing"}', protocol.UNKNOWN_TYPE),
    ('{"type": "chat", "model": "m", "messages": [{"role": "user", "content": "x"}]}',
     protocol.BAD_FIELD),
    ('{"type": "chat", "id": 1, "messages": [{"role": "user", "content": "x"}]}',
     protocol.MISSING_MODEL),
    ('{"type": "chat", "id": 1, "model": "m", "messages": [{"role": "user"}]}',
     protocol.BAD_FIELD),
    ('{"type": "chat", "id": 1, "model": "m", "stream": 1, '
     '"messages": [{"role": "user", "content": "x"}]}', protocol.BAD_FIELD),
])
def test_bad_messages(text: str, code: str) -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse(text)
    assert caught.value.code == code


def test_good_messages_and_done_shape() -> None:
    chat = {"type": "chat", "id": "a", "model": "m",
            "messages": [{"role": "user", "content": "x"}]}
    assert protocol.parse(json.dumps(chat)) == chat
    assert protocol.parse('{"type": "ping"}') == {"type": "ping"}
    done = protocol.done("a", "hi", {"prompt_eval_count": 1, "eval_count": 2,
                                     "done_reason": "length"}, "n1")
    assert done == {"type": "done", "id": "a", "content": "hi", "finish_reason": "length",
                    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                    "node": "n1"}


def test_chat_takes_tools_format_and_think() -> None:
    base = {"type": "chat", "id": 1, "model": "m", "messages": [{"role": "user", "content": "x"}]}
    tool = {"type": "function", "function": {"name": "f"}}
    protocol.parse(json.dumps({**base, "tools": [tool], "format": "json", "think": "low"}))
    protocol.parse(json.dumps({**base, "messages": [
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}]}))
    for bad in ({"tools": [{"type": "x"}]}, {"format": "xml"}, {"think": "max"}):
        with pytest.raises(protocol.ProtocolError) as caught:
            protocol.parse(json.dumps({**base, **bad}))
        assert caught.value.code == protocol.BAD_FIELD
        assert next(iter(bad)) in caught.value.message
