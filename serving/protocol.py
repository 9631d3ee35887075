"""The request types of our routes: Ray Serve LLM's (which are vLLM's), hardened at the edge.

Design: vLLM's request models run `mode="before"` validators that assume the JSON shape is
right; `{"messages": null}` makes one iterate over None and raise TypeError, which pydantic does
not turn into a validation error, so FastAPI would answer 500. One wrap validator, outermost
because it is defined on the subclass, turns any such shape error into a pydantic ValueError,
and the registered validation handler answers 400 in the OpenAI shape. Nothing else changes:
instances are still vLLM's classes for everything downstream.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator
from pydantic_core.core_schema import ValidatorFunctionWrapHandler
from ray.llm._internal.serve.core.configs.openai_api_models import (
    ChatCompletionRequest,
    CompletionRequest,
)

SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError)


def _guarded(data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(data)
    except SHAPE_ERRORS as exc:
        raise ValueError(
            f"The request body does not have the expected shape ({type(exc).__name__}); "
            "see the OpenAI API reference for this endpoint."
        ) from None


class ChatRequest(ChatCompletionRequest):
    @model_validator(mode="wrap")
    @classmethod
    def _shape(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        return _guarded(data, handler)


class CompletionsRequest(CompletionRequest):
    @model_validator(mode="wrap")
    @classmethod
    def _shape(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        return _guarded(data, handler)
