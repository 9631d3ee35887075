"""The server a team writes first: FastAPI + transformers `generate`, one request at a time.

    python -m benchmarks.naive_server --model data/models/SmolLM2-135M-Instruct --port 8002

It is the "why not just wrap the model" baseline: float32, torch threads = cores, no batching.
An asyncio.Lock admits one generation at a time; the others queue. It is OpenAI-compatible
enough for the locustfile: /v1/chat/completions streams SSE chunks with
`choices[0].delta.content`, a final usage chunk when `stream_options.include_usage` is set, then
`data: [DONE]`; `max_tokens`, `min_tokens` and `ignore_eos` (as min_new_tokens = max_tokens) and
`temperature` (0 = greedy) are honoured. TextIteratorStreamer emits whole words, so its chunks
can carry more than one token: TPOT (from `usage`) is exact, its inter-chunk latencies are not
per token. A client that disconnects stops its generation at the next token.
"""

# No `from __future__ import annotations` here: FastAPI must see the real `Request` type of the
# route defined inside `create_app`, or it treats the parameter as a body field (422 everywhere).
import argparse
import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

MODEL_ID = "base"


def generation_params(body: dict[str, Any], default_max_tokens: int = 256) -> dict[str, Any]:
    """OpenAI request fields -> `generate` kwargs."""
    max_new = int(body.get("max_tokens") or body.get("max_completion_tokens") or default_max_tokens)
    min_new = max_new if body.get("ignore_eos") else int(body.get("min_tokens") or 0)
    temperature = body.get("temperature")
    temperature = 1.0 if temperature is None else float(temperature)
    params: dict[str, Any] = {"max_new_tokens": max_new, "min_new_tokens": min(min_new, max_new)}
    if temperature > 0:
        params.update(do_sample=True, temperature=temperature, top_p=float(body.get("top_p", 1.0)))
    else:
        params["do_sample"] = False
    return params


def sse(obj: dict[str, Any] | str) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


def _chunk(rid: str, created: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL_ID,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _error(status: int, message: str, code: str) -> Any:
    from fastapi.responses import JSONResponse

    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return JSONResponse(body, status_code=status)


def create_app(model_dir: Path, threads: int) -> Any:
    import torch
    from fastapi import FastAPI, Request
    from fastapi.responses import StreamingResponse
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        StoppingCriteria,
        TextIteratorStreamer,
    )

    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    lock = asyncio.Lock()
    app = FastAPI(title="naive baseline")

    class Cancelled(StoppingCriteria):
        def __init__(self, flag: threading.Event) -> None:
            self.flag = flag

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            return self.flag.is_set()

    def generate(inputs: Any, params: dict[str, Any], streamer: Any, flag: threading.Event) -> int:
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                **params,
                streamer=streamer,
                stopping_criteria=[Cancelled(flag)],
                pad_token_id=tok.pad_token_id or tok.eos_token_id,
            )
        return int(out.shape[1] - inputs["input_ids"].shape[1])

    async def events(inputs: Any, params: dict[str, Any], usage: bool) -> AsyncIterator[Any]:
        """Chunks of one completion, generated under the lock: one request at a time."""
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        prompt_tokens = int(inputs["input_ids"].shape[1])
        async with lock:
            streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
            flag, result = threading.Event(), dict[str, Any]()

            def run() -> None:
                try:
                    result["n"] = generate(inputs, params, streamer, flag)
                except Exception as exc:
                    result["error"] = repr(exc)
                    streamer.end()

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            try:
                yield _chunk(rid, created, {"role": "assistant", "content": ""}, None)
                pieces = iter(streamer)
                while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                    if piece:
                        yield _chunk(rid, created, {"content": piece}, None)
                await asyncio.to_thread(worker.join)
                if "error" in result:
                    yield {"error": {"message": result["error"], "type": "server_error"}}
                else:
                    n = result["n"]
                    finish = "length" if n >= params["max_new_tokens"] else "stop"
                    yield _chunk(rid, created, {}, finish)
                    if usage:
                        counts = {"prompt_tokens": prompt_tokens, "completion_tokens": n}
                        counts["total_tokens"] = prompt_tokens + n
                        yield {**_chunk(rid, created, {}, None), "choices": [], "usage": counts}
                yield "[DONE]"
            finally:
                flag.set()  # a disconnected client stops its generation at the next token
                worker.join()

    async def as_sse(chunks: AsyncIterator[Any]) -> AsyncIterator[str]:
        async for chunk in chunks:
            yield sse(chunk)

    async def collect(chunks: AsyncIterator[Any]) -> Any:
        text, usage, finish = [], None, "stop"
        async for chunk in chunks:
            if chunk == "[DONE]":
                continue
            if "error" in chunk:
                return _error(500, chunk["error"]["message"], "server_error")
            usage = chunk.get("usage") or usage
            for choice in chunk["choices"]:
                text.append(choice["delta"].get("content") or "")
                finish = choice["finish_reason"] or finish
        message = {"role": "assistant", "content": "".join(text)}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL_ID,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "me"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        try:
            body = await request.json()
            messages = body["messages"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "body must be JSON with messages", "invalid_request")
        if body.get("model") != MODEL_ID:
            return _error(404, f"model {body.get('model')!r} not found", "model_not_found")
        inputs = tok.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        params = generation_params(body)
        if not body.get("stream"):
            return await collect(events(inputs, params, usage=True))
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            as_sse(events(inputs, params, usage)), media_type="text/event-stream"
        )

    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks.naive_server", description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    )
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.model, args.threads), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
