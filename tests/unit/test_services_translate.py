"""OpenAI <-> Ollama translation in the gateway."""

from __future__ import annotations

import base64
import struct

import pytest

from ollamamax_stack.services.common.errors import ApiError
from ollamamax_stack.services.gateway import content, responses, tools, translate
from ollamamax_stack.services.gateway.images import PublicOnly, Refused


def test_sampling_parameters_become_ollama_options() -> None:
    body = {"model": "m", "messages": [{"role": "developer", "content": [
        {"type": "text", "text": "be "}, {"type": "text", "text": "brief"}]}],
        "temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": "END", "max_tokens": 5}
    out = translate.chat_request(body)
    assert out["messages"] == [{"role": "system", "content": "be brief"}]
    assert out["options"] == {"temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": ["END"],
                              "num_predict": 5}
    assert out["stream"] is False


USER = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(("body", "param", "message"), [
    ({"messages": USER}, "model", "you must provide a model parameter"),
    ({"model": " ", "messages": USER}, "model", "'model' must be a non-empty string"),
    ({"model": 3, "messages": USER}, "model", "'model' must be a non-empty string"),
    ({"model": "m", "messages": []}, "messages", "'messages' must be a non-empty array"),
    ({"model": "m", "messages": "hi"}, "messages", "'messages' must be a non-empty array"),
    ({"model": "m", "messages": ["hi"]}, "messages[0]", "messages[0] must be an object"),
    ({"model": "m", "messages": [{"role": "x", "content": "x"}]}, "messages[0].role",
     "messages[0].role must be one of system, user, assistant, tool, developer"),
    ({"model": "m", "messages": [*USER, {"role": "user", "content": 3}]},
     "messages[1].content",
     "messages[1].content must be a string or an array of parts"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": "u"}]}]}, "messages[0].content[0].image_url",
     "messages[0].content[0].image_url must be a base64 data URL or an http(s) URL"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
     "messages[0].content[0].text", "messages[0].content[0].text must be a string"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "messages[0].content[0].type", "messages[0].content[0].type must be one of text, "
     "image_url (got 'input_audio'): Ollama takes text and images"),
    ({"model": "m", "messages": USER, "n": 2}, "n", "only n=1 is supported"),
    ({"model": "m", "messages": USER, "n": -1}, "n", "'n' must be a non-negative integer"),
    ({"model": "m", "messages": USER, "seed": True}, "seed",
     "'seed' must be a non-negative integer"),
    ({"model": "m", "messages": USER, "seed": 1.5}, "seed",
     "'seed' must be a non-negative integer"),
    ({"model": "m", "messages": USER, "max_tokens": -1}, "max_tokens",
     "'max_tokens' must be a non-negative integer"),
    ({"model": "m", "messages": USER, "temperature": "hot"}, "temperature",
     "'temperature' must be a number"),
    ({"model": "m", "messages": USER, "top_p": False}, "top_p", "'top_p' must be a number"),
    ({"model": "m", "messages": USER, "stop": [1]}, "stop",
     "'stop' must be a string or an array of strings"),
    ({"model": "m", "messages": USER, "stop": 3}, "stop",
     "'stop' must be a string or an array of strings"),
    ({"model": "m", "messages": USER, "stream": "y"}, "stream", "'stream' must be a boolean"),
])
def test_bad_requests_name_the_parameter(body: dict[str, object], param: str,
                                         message: str) -> None:
    with pytest.raises(ApiError) as caught:
        translate.chat_request(body)
    error = caught.value
    assert (error.status, error.param, error.message, error.code) == (
        400, param, message, "invalid_request_error")


def test_every_sampling_parameter_and_its_edges() -> None:
    out = translate.chat_request({
        "model": "m", "messages": [{"role": "assistant", "content": None},
                                   {"role": "tool", "content": []}, *USER],
        "frequency_penalty": 0.5, "presence_penalty": -1, "temperature": 0, "n": 1,
        "seed": 0, "max_tokens": 0, "stop": ["a", "b"], "stream": None})
    assert out["messages"] == [{"role": "assistant", "content": ""},
                               {"role": "tool", "content": ""}, {"role": "user", "content": "x"}]
    assert out["options"] == {"temperature": 0, "frequency_penalty": 0.5,
                              "presence_penalty": -1, "seed": 0, "num_predict": 0,
                              "stop": ["a", "b"]}
    assert out["stream"] is False and out["model"] == "m"
    assert translate.chat_request({"model": "m", "messages": USER, "stream": True})["stream"]
    assert translate.chat_request({"model": "m", "messages": USER})["options"] == {}


def test_stream_options_include_usage() -> None:
    assert translate.include_usage({}) is False
    assert translate.include_usage({"stream_options": {}}) is False
    assert translate.include_usage({"stream_options": {"include_usage": True}}) is True
    with pytest.raises(ApiError) as caught:
        translate.include_usage({"stream_options": True})
    assert (caught.value.param, caught.value.message) == (
        "stream_options", "'stream_options' must be an object")


def test_completion_requests_take_one_prompt_and_a_suffix() -> None:
    out = translate.completion_request({"model": "m", "prompt": ["say"], "suffix": "end",
                                        "stream": True, "max_tokens": 4})
    assert out == {"model": "m", "prompt": "say", "stream": True,
                   "options": {"num_predict": 4}, "suffix": "end"}
    assert "suffix" not in translate.completion_request({"model": "m", "prompt": "p",
                                                         "suffix": 3})
    for prompt in (["a", "b"], [1], None, 5):
        with pytest.raises(ApiError) as caught:
            translate.completion_request({"model": "m", "prompt": prompt})
        assert (caught.value.status, caught.value.param, caught.value.message) == (
            400, "prompt", "'prompt' must be a string (or an array of one string)")
    with pytest.raises(ApiError) as caught:
        translate.completion_request({"prompt": "p"})
    assert caught.value.param == "model"


def test_embedding_requests_take_one_or_many_strings() -> None:
    assert translate.embed_request({"model": "m", "input": "a"}) == {"model": "m",
                                                                      "input": ["a"]}
    assert translate.embed_request({"model": "m", "input": ["a", "b"],
                                    "encoding_format": "base64"})["input"] == ["a", "b"]
    for value in ([], ["a", 1], None, 3):
        with pytest.raises(ApiError) as caught:
            translate.embed_request({"model": "m", "input": value})
        assert (caught.value.status, caught.value.param, caught.value.message) == (
            400, "input", "'input' must be a string or a non-empty array of strings")
    with pytest.raises(ApiError) as caught:
        translate.embed_request({"model": "m", "input": "a", "encoding_format": "int8"})
    assert (caught.value.param, caught.value.message) == (
        "encoding_format", "'encoding_format' must be 'float' or 'base64'")
    with pytest.raises(ApiError) as caught:
        translate.embed_request({"input": "a"})
    assert caught.value.param == "model"


def test_whole_answers_in_openai_shapes() -> None:
    answer = {"message": {"role": "assistant", "content": "hi"}, "done_reason": "length",
              "prompt_eval_count": 3, "eval_count": 2}
    chat = translate.chat_completion("m", answer)
    assert chat["id"].startswith("chatcmpl-") and len(chat["id"]) == len("chatcmpl-") + 24
    assert isinstance(chat["created"], int) and chat["created"] > 1_700_000_000
    del chat["id"], chat["created"]
    assert chat == {"object": "chat.completion", "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                 "finish_reason": "length", "logprobs": None}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
    empty = translate.chat_completion("m", {"done_reason": "stop"})
    assert empty["choices"][0]["message"] == {"role": "assistant", "content": ""}
    assert empty["choices"][0]["finish_reason"] == "stop"
    assert empty["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    text = translate.text_completion("m", {"response": "ok", "eval_count": 1})
    assert text["id"].startswith("cmpl-") and len(text["id"]) == len("cmpl-") + 24
    assert isinstance(text["created"], int) and text["created"] > 1_700_000_000
    del text["id"], text["created"]
    assert text == {"object": "text_completion", "model": "m",
                    "choices": [{"index": 0, "text": "ok", "finish_reason": "stop",
                                 "logprobs": None}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1}}
    assert translate.text_completion("m", {})["choices"][0]["text"] == ""


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
    answer = {"embeddings": [[0.5, -1.0], [2.0]], "prompt_eval_count": 2}
    floats = translate.embeddings("m", answer, "float")
    assert floats == {"object": "list", "model": "m",
                      "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]},
                               {"object": "embedding", "index": 1, "embedding": [2.0]}],
                      "usage": {"prompt_tokens": 2, "total_tokens": 2}}
    packed = translate.embeddings("m", answer, "base64")["data"][0]["embedding"]
    assert list(struct.unpack("<2f", base64.b64decode(packed))) == [0.5, -1.0]
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


# --- tools, formats, thinking, logprobs, images ------------------------------------------
TOOL = {"type": "function", "function": {"name": "f", "parameters": {
    "type": "object", "properties": {"x": {"type": "integer"}}}}}
HI = [{"role": "user", "content": "hi"}]


def test_plain_chat_sends_nothing_more() -> None:
    assert translate.chat_request({"model": "m", "messages": HI}) == {
        "model": "m", "messages": HI, "stream": False, "options": {}}


def test_max_completion_tokens_is_num_predict() -> None:
    out = translate.chat_request({"model": "m", "messages": HI, "max_completion_tokens": 9})
    assert out["options"] == {"num_predict": 9}


def test_tool_calls_go_to_the_node_as_objects_and_come_back_as_json_text() -> None:
    plan = translate.chat_plan({"model": "m", "tools": [TOOL], "messages": [
        *HI, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f",
                                                                "arguments": '{"x": 1}'}}]},
        {"role": "tool", "content": "2", "tool_call_id": "call_1"}]})
    sent = plan.upstream["messages"]
    assert sent[1]["tool_calls"] == [{"id": "call_1", "function": {
        "index": 0, "name": "f", "arguments": {"x": 1}}}]
    assert sent[2] == {"role": "tool", "content": "2", "tool_call_id": "call_1",
                       "tool_name": "f"}
    answer = {"message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": {"x": 3}}}]}, "done_reason": "stop"}
    choice = translate.chat_completion("m", answer, plan)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"].startswith("call_") and call["function"]["arguments"] == '{"x":3}'


def test_a_forced_call_is_a_format_and_its_json_becomes_the_call() -> None:
    plan = translate.chat_plan({"model": "m", "messages": HI, "tools": [TOOL, {
        "type": "function", "function": {"name": "g"}}], "tool_choice": "required"})
    assert "tools" not in plan.upstream
    names = [o["properties"]["name"]["const"] for o in plan.upstream["format"]["anyOf"]]
    assert names == ["f", "g"]
    answer = {"message": {"content": '{"name": "g", "arguments": {}}'}}
    message = translate.chat_completion("m", answer, plan)["choices"][0]["message"]
    assert message["content"] is None and message["tool_calls"][0]["function"]["name"] == "g"
    assert tools.Forced(("f",)).calls('{"x": 1}') == [
        {"function": {"name": "f", "arguments": {"x": 1}}}]


@pytest.mark.parametrize(("extra", "node"), [
    ({"response_format": {"type": "json_object"}}, {"format": "json"}),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {
        "type": "object"}}}}, {"format": {"type": "object"}}),
    ({"response_format": {"type": "text"}}, {}),
    ({"reasoning_effort": "none"}, {"think": False}),
    ({"reasoning": {"effort": "low"}}, {"think": "low"}),
    ({"logprobs": True, "top_logprobs": 2}, {"logprobs": True, "top_logprobs": 2}),
    ({"tools": [TOOL], "tool_choice": "none"}, {}),
])
def test_extras_reach_the_node(extra: dict[str, object], node: dict[str, object]) -> None:
    out = translate.chat_request({"model": "m", "messages": HI, **extra})
    assert {k: v for k, v in out.items() if k not in ("model", "messages", "stream",
                                                      "options")} == node


@pytest.mark.parametrize("extra", [{"response_format": {"type": "xml"}},
                                   {"reasoning_effort": "max"},
                                   {"tool_choice": "any", "tools": [TOOL]},
                                   {"logit_bias": {"1": 2}}])
def test_what_ollama_cannot_do_is_refused_by_the_translator_too(
        extra: dict[str, object]) -> None:
    with pytest.raises(ApiError) as caught:
        translate.chat_request({"model": "m", "messages": HI, **extra})
    assert caught.value.status == 400 and caught.value.param == next(iter(extra))


def test_logprobs_missing_at_the_node_is_a_400() -> None:
    plan = translate.chat_plan({"model": "m", "messages": HI, "logprobs": True})
    with pytest.raises(ApiError) as caught:
        translate.chat_completion("m", {"message": {"content": "x"}}, plan)
    assert caught.value.status == 400 and caught.value.param == "logprobs"
    given = {"message": {"content": "x"},
             "logprobs": [{"token": "x", "logprob": -1.0, "top_logprobs": []}]}
    got = translate.chat_completion("m", given, plan)["choices"][0]["logprobs"]
    assert got == {"content": [{"token": "x", "logprob": -1.0, "bytes": None,
                                "top_logprobs": []}]}


def test_thinking_comes_back_as_reasoning_content() -> None:
    message = translate.chat_completion("m", {"message": {"content": "a", "thinking": "t"}})[
        "choices"][0]["message"]
    assert message["reasoning_content"] == "t" == message["reasoning"]


def test_image_parts() -> None:
    plan = translate.chat_plan({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]})
    assert plan.upstream["messages"][0] == {"role": "user", "content": "see",
                                            "images": ["aGk=", ""]}
    assert [(f.slot, f.url) for f in plan.fetches] == [(1, "https://example.com/a.png")]


def test_embedding_dimensions_reach_the_node() -> None:
    assert translate.embed_request({"model": "m", "input": "a", "dimensions": 2}) == {
        "model": "m", "input": ["a"], "dimensions": 2}


def test_private_addresses_are_refused_unless_allowed() -> None:
    policy = PublicOnly(frozenset({"images.internal"}))
    for address in ("127.0.0.1", "10.0.0.1", "192.168.1.1", "169.254.169.254", "::1",
                    "fc00::1", "100.64.0.1"):
        with pytest.raises(Refused):
            policy.check("h", address)
    policy.check("images.internal", "10.0.0.1")
    policy.check("example.com", "93.184.216.34")


def test_responses_input_items_become_a_conversation() -> None:
    plan = responses.plan_of({"model": "m", "instructions": "be", "input": [
        {"role": "user", "content": "q"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"}]})
    assert plan.upstream["messages"] == [
        {"role": "system", "content": "be"}, {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "function": {"index": 0, "name": "f", "arguments": {}}}]},
        {"role": "tool", "content": "42", "tool_call_id": "c1", "tool_name": "f"}]


    assert translate.embeddings("m", {}, "float")["data"] == []
    assert translate.embeddings("m", {}, "float")["usage"] == {"prompt_tokens": 0,
                                                              "total_tokens": 0}


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


def test_text_completion_streams_and_usage_chunks() -> None:
    maker = translate.ChunkMaker("m", chat=False)
    assert maker.id.startswith("cmpl-") and len(maker.id) == len("cmpl-") + 24
    piece = maker.piece("He")
    assert isinstance(piece["created"], int) and piece["created"] > 1_700_000_000
    assert piece == {"id": maker.id, "object": "text_completion", "created": maker.created,
                     "model": "m", "choices": [{"index": 0, "text": "He",
                                                "finish_reason": None, "logprobs": None}]}
    chat = translate.ChunkMaker("m")
    assert chat.id.startswith("chatcmpl-") and len(chat.id) == len("chatcmpl-") + 24
    first = chat.piece("")
    assert first == {"id": chat.id, "object": "chat.completion.chunk",
                     "created": chat.created, "model": "m",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                  "finish_reason": None, "logprobs": None}]}
    assert chat.piece("x", "stop")["choices"][0]["delta"] == {"content": "x"}
    usage = chat.usage({})
    assert usage["object"] == "chat.completion.chunk" and usage["model"] == "m"
    assert usage["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert translate.finish_reason({}) == "stop"


FORCED = {"type": "function", "function": {"name": "f"}}


@pytest.mark.parametrize(("extra", "param", "message"), [
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "s"}}},
     "response_format", "'response_format.json_schema.schema' must be a JSON schema object"),
    ({"response_format": {"type": "xml"}}, "response_format",
     "'response_format.type' must be text, json_object or json_schema (what Ollama's format "
     "can express)"),
    ({"reasoning_effort": "max"}, "reasoning_effort",
     "'reasoning_effort' must be one of low, medium, high, none (what Ollama's think takes)"),
    ({"reasoning": {"effort": "max"}}, "reasoning",
     "'reasoning' must be one of low, medium, high, none (what Ollama's think takes)"),
    ({"logit_bias": {"1": 2}}, "logit_bias", "'logit_bias' is not supported: Ollama has no "
                                             "logit bias"),
    ({"modalities": ["text", "audio"]}, "modalities", "'modalities': Ollama answers text only"),
    ({"tools": [TOOL], "tool_choice": FORCED, "response_format": {"type": "json_object"}},
     "tool_choice", "a forced 'tool_choice' cannot be combined with 'response_format': Ollama "
                    "forces a call through its format"),
    ({"top_logprobs": 2}, "top_logprobs", "'top_logprobs' needs 'logprobs': true"),
    ({"top_logprobs": 0}, "top_logprobs", "'top_logprobs' needs 'logprobs': true"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {
        "name": "f", "arguments": "{"}}]}]}, "messages[0].tool_calls[0].function.arguments",
     "messages[0].tool_calls[0].function.arguments must be JSON text"),
])
def test_bad_extras_name_the_parameter_and_say_why(extra: dict[str, object], param: str,
                                                   message: str) -> None:
    with pytest.raises(ApiError) as caught:
        translate.chat_request({"model": "m", "messages": HI, **extra})
    assert (caught.value.status, caught.value.param, caught.value.message) == (
        400, param, message)


def test_text_modality_tools_and_parallel_calls_reach_the_node_and_the_answer() -> None:
    assert translate.chat_request({"model": "m", "messages": HI, "modalities": ["text"]}) == (
        translate.chat_request({"model": "m", "messages": HI}))
    with_tools = {"model": "m", "messages": HI, "tools": [{**TOOL, "strict": True}]}
    plan = translate.chat_plan(with_tools)
    assert plan.upstream["tools"] == [{"type": "function", "function": TOOL["function"]}]
    assert plan.single_call is False
    assert translate.chat_plan({**with_tools, "parallel_tool_calls": True}).single_call is False
    single = translate.chat_plan({**with_tools, "parallel_tool_calls": False})
    assert single.single_call is True
    answer = {"message": {"content": "", "tool_calls": [
        {"id": "a", "function": {"name": "f", "arguments": {}}},
        {"id": "b", "function": {"name": "f", "arguments": {"x": 1}}}]}}
    ids = [[c["id"] for c in translate.chat_completion("m", answer, p)["choices"][0]["message"][
        "tool_calls"]] for p in (single, plan, None)]
    assert ids == [["a"], ["a", "b"], ["a", "b"]]


def test_a_developer_message_is_a_system_message_and_images_wait_for_their_fetch() -> None:
    assert translate.messages_of({"messages": [{"role": "developer", "content": "x"}]}) == [
        {"role": "system", "content": "x"}]
    parts = [{"type": "text", "text": "look"},
             {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    fetches: list[content.ImageFetch] = []
    asked = {"messages": [{"role": "user", "content": parts}]}
    assert translate.messages_of(asked)[0]["content"] == "look"  # no list given: one of its own
    translate.messages_of(asked, fetches)
    assert len(fetches) == 1


@pytest.mark.parametrize(("extra", "param", "message"), [
    ({"echo": True}, "echo", "'echo' is not supported on /v1/completions"),
    ({"echo": 1}, "echo", "'echo' is not supported on /v1/completions"),
    ({"logit_bias": {"1": 2}}, "logit_bias", "'logit_bias' is not supported on /v1/completions"),
    ({"logprobs": True}, "logprobs", "'logprobs' must be an integer from 0 to 20"),
    ({"logprobs": 1.0}, "logprobs", "'logprobs' must be an integer from 0 to 20"),
    ({"logprobs": -1}, "logprobs", "'logprobs' must be an integer from 0 to 20"),
    ({"logprobs": 21}, "logprobs", "'logprobs' must be an integer from 0 to 20"),
    ({"best_of": 2}, "best_of", "only best_of=1 is supported"),
])
def test_bad_completion_requests_name_the_parameter(extra: dict[str, object], param: str,
                                                    message: str) -> None:
    with pytest.raises(ApiError) as caught:
        translate.completion_request({"model": "m", "prompt": "p", **extra})
    assert (caught.value.status, caught.value.param, caught.value.message) == (
        400, param, message)


def test_completion_logprobs_and_what_needs_no_saying() -> None:
    def extra(**fields: object) -> dict[str, object]:
        out = translate.completion_request({"model": "m", "prompt": "p", **fields})
        return {k: v for k, v in out.items() if k not in ("model", "prompt", "stream", "options")}
    assert extra(echo=False, logit_bias=None, best_of=1) == {}
    assert extra(echo=0) == {}
    assert extra(logprobs=0) == {"logprobs": True}
    assert extra(logprobs=20) == {"logprobs": True, "top_logprobs": 20}
    assert extra(logprobs=1) == {"logprobs": True, "top_logprobs": 1}


NODE_LOGPROBS = [{"token": "ab", "logprob": -1.0, "bytes": [97, 98], "top_logprobs": [
                     {"token": "ab", "logprob": -1.0, "bytes": [97, 98]},
                     {"token": "x", "logprob": -2.0}]},
                 {"top_logprobs": [{}]}]


def test_chat_logprobs_carry_tokens_bytes_and_alternatives_with_defaults() -> None:
    plan = translate.chat_plan({"model": "m", "messages": HI, "logprobs": True})
    assert translate.logprobs_of({"logprobs": NODE_LOGPROBS}, plan) == {"content": [
        {"token": "ab", "logprob": -1.0, "bytes": [97, 98], "top_logprobs": [
            {"token": "ab", "logprob": -1.0, "bytes": [97, 98]},
            {"token": "x", "logprob": -2.0, "bytes": None}]},
        {"token": "", "logprob": 0.0, "bytes": None, "top_logprobs": [
            {"token": "", "logprob": 0.0, "bytes": None}]}]}
    with pytest.raises(ApiError) as caught:
        translate.logprobs_of({}, plan)
    assert caught.value.message == translate.LOGPROBS_MISSING
    assert translate.logprobs_of({"logprobs": NODE_LOGPROBS}, None) is None


def test_completion_logprobs_have_text_offsets_from_where_the_text_starts() -> None:
    assert translate.completion_logprobs({"logprobs": NODE_LOGPROBS}, 3) == {
        "tokens": ["ab", ""], "token_logprobs": [-1.0, 0.0],
        "top_logprobs": [{"ab": -1.0, "x": -2.0}, {"": 0.0}], "text_offset": [3, 5]}
    assert translate.completion_logprobs({"logprobs": NODE_LOGPROBS[:1]})["text_offset"] == [0]
    with pytest.raises(ApiError) as caught:
        translate.completion_logprobs({})
    assert (caught.value.param, caught.value.message) == ("logprobs", translate.LOGPROBS_MISSING)
    answer = {"response": "ab", "logprobs": NODE_LOGPROBS[:1]}
    assert translate.text_completion("m", answer, logprobs=True)["choices"][0]["logprobs"][
        "tokens"] == ["ab"]
    assert translate.text_completion("m", answer)["choices"][0]["logprobs"] is None


def test_stream_deltas_and_tool_call_chunks() -> None:
    maker = translate.ChunkMaker("m")
    first = maker.delta({"reasoning_content": "t"})
    assert (first["object"], first["model"], first["id"]) == (
        "chat.completion.chunk", "m", maker.id)
    assert first["choices"] == [{"index": 0, "delta": {"reasoning_content": "t",
                                                       "role": "assistant"},
                                 "finish_reason": None, "logprobs": None}]
    later = maker.delta({"content": "x"}, {"content": []}, "stop")
    assert later["choices"] == [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop",
                                 "logprobs": {"content": []}}]
    calls = [{"id": "a", "function": {"name": "f", "arguments": {"x": 1}}},
             {"id": "b", "function": {"name": "g", "arguments": "{}"}}]
    fresh = translate.ChunkMaker("m")
    chunk = fresh.tool_calls(calls, single=False)
    assert chunk["choices"] == [{"index": 0, "finish_reason": None, "logprobs": None, "delta": {
        "role": "assistant", "tool_calls": [
            {"index": 0, "id": "a", "type": "function",
             "function": {"name": "f", "arguments": '{"x":1}'}},
            {"index": 1, "id": "b", "type": "function",
             "function": {"name": "g", "arguments": "{}"}}]}}]
    assert [c["id"] for c in fresh.tool_calls(calls, single=True)["choices"][0]["delta"][
        "tool_calls"]] == ["a"]
