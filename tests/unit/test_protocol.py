"""Shape errors in request bodies become validation errors (-> 400), never a TypeError (-> 500).

The integration twin is tests/integration/test_serving.py::test_bad_input_is_an_openai_shaped_4xx
and the fuzzer, which send the same bodies to the real server."""

import pytest
from pydantic import ValidationError

from serving.protocol import ChatRequest, CompletionsRequest

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "base", "messages": None},
        {"model": None, "messages": None},
        {"model": "base", "messages": 7},
    ],
)
def test_wrong_shapes_are_validation_errors(body):
    with pytest.raises(ValidationError) as info:
        ChatRequest.model_validate(body)
    assert "expected shape" in str(info.value) or info.value.errors()


def test_good_bodies_still_parse_as_vllm_types():
    chat = ChatRequest.model_validate({"model": "base", "messages": MSG, "max_tokens": 3})
    assert chat.max_tokens == 3 and chat.messages[0]["content"] == "hi"
    comp = CompletionsRequest.model_validate({"model": "base", "prompt": "hi"})
    assert comp.prompt == "hi"


def test_completion_shape_errors_are_validation_errors():
    with pytest.raises(ValidationError):
        CompletionsRequest.model_validate({"model": "base", "prompt": {"nested": [None]}})
