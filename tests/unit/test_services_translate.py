"""OpenAI <-> Ollama translation in the gateway."""

from __future__ import annotations

import base64
import struct

import pytest

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.gateway import translate


def test_sampling_parameters_become_ollama_options() -> None:
    body = {"model": "m", "messages": [{"role": "developer", "content": [
        {"type": "text", "text": "be "}, {"type": "text", "text": "brief"}]}],
        "temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": "END", "max_tokens": 5}
    out = translate.chat_request(body)
    assert out["messages"] == [{"role": "system", "content": "be brief"}]
    assert out["options"] == {"temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": ["END"],
                              "num_predict": 5}
    assert out["stream"] is False


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": [{"role": "x", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "y"}, "stream"),
])
def test_bad_requests_name_the_parameter(body: dict[str, object], param: str) -> None:
    with pytest.raises(ApiError) as caught:
        translate.chat_request(body)
    assert caught.value.status == 400 and caught.value.param == param


def test_stream_chunks_role_first_finish_last() -> None:
    maker = translate.ChunkMaker("m")
    first, second = maker.piece("He"), maker.piece("llo")
    last = maker.piece("", translate.finish_reason({"done_reason": "length"}))
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "He"}
    assert second["choices"][0]["delta"] == {"content": "llo"}
    assert last["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "length",
                                  "logprobs": None}
    usage = maker.usage({"prompt_eval_count": 3, "eval_count": 2})
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 5
    assert first["id"] == last["id"] == usage["id"]


def test_embeddings_as_floats_or_base64_float32() -> None:
    answer = {"embeddings": [[0.5, -1.0]], "prompt_eval_count": 2}
    floats = translate.embeddings("m", answer, "float")
    assert floats["data"][0]["embedding"] == [0.5, -1.0]
    packed = translate.embeddings("m", answer, "base64")["data"][0]["embedding"]
    assert list(struct.unpack("<2f", base64.b64decode(packed))) == [0.5, -1.0]
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_max_completion_tokens_limits_the_answer_and_wins_over_max_tokens() -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert translate.chat_request({**chat, "max_completion_tokens": 7})["options"] == {
        "num_predict": 7}
    both = {**chat, "max_completion_tokens": 7, "max_tokens": 99}
    assert translate.chat_request(both)["options"]["num_predict"] == 7
    completion = {"model": "m", "prompt": "x", "max_completion_tokens": 3}
    assert translate.completion_request(completion)["options"] == {"num_predict": 3}
    with pytest.raises(ApiError) as caught:
        translate.chat_request({**chat, "max_completion_tokens": -1})
    assert caught.value.param == "max_completion_tokens"
