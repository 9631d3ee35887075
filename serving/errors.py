"""One error hierarchy, converted to the OpenAI error body in exactly one place.

Code deep in the ingress raises a `ServingError` subclass (plain and picklable, so it can cross
Ray actor boundaries); `install_error_handlers` registers the handlers that turn it, and every
exception FastAPI, Starlette, vLLM or Ray may raise, into

    {"error": {"message": ..., "type": ..., "code": ..., "param": null}}

with the right status. Unknown exceptions become a generic 500 whose body carries the request id
only: never a traceback, a store path or an exception's repr.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

log = logging.getLogger("serving.errors")

# HTTP status -> (OpenAI error type, default code) for errors that arrive without our labels.
_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    408: ("timeout_error", "request_timeout"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    422: ("invalid_request_error", "invalid_request"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    503: ("service_unavailable_error", "service_unavailable"),
}


class ServingError(Exception):
    status_code = 500
    type = "server_error"
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}
        if code:
            self.code = code


class InvalidRequest(ServingError):
    status_code, type, code = 400, "invalid_request_error", "invalid_request"


class AuthenticationFailed(ServingError):
    status_code, type, code = 401, "authentication_error", "invalid_api_key"


class ModelNotFound(ServingError):
    status_code, type, code = 404, "invalid_request_error", "model_not_found"


class PayloadTooLarge(ServingError):
    status_code, type, code = 413, "invalid_request_error", "request_too_large"


class RateLimited(ServingError):
    status_code, type, code = 429, "rate_limit_error", "rate_limit_exceeded"


class ServiceUnavailable(ServingError):
    status_code, type, code = 503, "service_unavailable_error", "service_unavailable"


def error_body(
    status: int,
    message: str,
    *,
    type_: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    default_type, default_code = _BY_STATUS.get(status, ("server_error", "internal_error"))
    return {
        "error": {
            "message": message,
            "type": type_ or default_type,
            "code": code or default_code,
            "param": param,
        }
    }


def error_response(
    status: int, message: str, *, headers: dict[str, str] | None = None, **kwargs: Any
) -> JSONResponse:
    return JSONResponse(error_body(status, message, **kwargs), status_code=status, headers=headers)


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or request.headers.get("x-request-id", "-")


def _describe_validation(exc: RequestValidationError) -> tuple[str, str, str | None]:
    errors = exc.errors()
    if not errors:
        return "Invalid request body.", "invalid_request", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "Request body is not valid JSON.", "invalid_json", None
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    msg = str(first.get("msg", "invalid value"))
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{param + ': ' if param else ''}{msg}{more}", "invalid_request", param


async def _on_serving_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ServingError):  # pragma: no cover - registered for ServingError only
        raise exc
    return error_response(
        exc.status_code,
        exc.message,
        type_=exc.type,
        code=exc.code,
        param=exc.param,
        headers=exc.headers,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        return error_response(415, "Content-Type must be application/json.")
    message, code, param = _describe_validation(exc)
    return error_response(400, message, code=code, param=param)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    status = exc.status_code
    message = exc.detail if isinstance(exc.detail, str) and status < 500 else "Server error."
    if status == 404 and message == "Not Found":
        message = f"No route {request.method} {request.url.path}."
    if status == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    return error_response(status, message, headers=getattr(exc, "headers", None))


async def _on_openai_exception(request: Request, exc: Exception) -> JSONResponse:
    """Errors raised by Ray Serve LLM's ingress (`OpenAIHTTPException`) or relayed from vLLM."""
    status = int(getattr(exc, "status_code", 500))
    if status >= 500:
        log.error(
            "upstream error %s on request %s: %s",
            status,
            _request_id(request),
            getattr(exc, "internal_message", None) or exc,
        )
        if status != 503:
            return error_response(500, f"Internal server error (request {_request_id(request)}).")
    return error_response(status, str(getattr(exc, "message", "")) or "Request failed.")


async def _on_client_error(request: Request, exc: Exception) -> JSONResponse:
    """vLLM's request validation (`VLLMClientError`) and bare pydantic errors: the client's fault.
    Their messages name the parameter and carry no internals."""
    message = str(exc).split("\n")[0][:500] or "Invalid request."
    param = getattr(exc, "parameter", None)
    return error_response(400, message, param=param if isinstance(param, str) else None)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on request %s", _request_id(request))
    return error_response(500, f"Internal server error (request {_request_id(request)}).")


def install_error_handlers(app: FastAPI) -> None:
    from pydantic import ValidationError as PydanticValidationError
    from ray.llm._internal.serve.core.configs.openai_api_models import OpenAIHTTPException
    from vllm.exceptions import VLLMClientError

    app.add_exception_handler(ServingError, _on_serving_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(OpenAIHTTPException, _on_openai_exception)
    app.add_exception_handler(VLLMClientError, _on_client_error)
    app.add_exception_handler(PydanticValidationError, _on_client_error)
    app.add_exception_handler(Exception, _on_unexpected)
