"""The stream observer on a scripted upstream (the real stream is covered by
tests/integration/test_serving.py)."""

import asyncio
import json

from starlette.responses import JSONResponse, StreamingResponse

from serving.metrics import Metrics
from serving.observe import Observer, RequestRecord, log_line
from serving.routing import Route

USAGE = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}


def _rec(**kw):
    return RequestRecord(
        request_id="r1",
        key_id="abc123",
        route=Route("base:v1", "v1", "support"),
        base_id="base",
        stream=True,
        estimate=100,
        **kw,
    )


async def _upstream():
    for event in [
        {"choices": [{"delta": {"content": "Hi"}}]},
        {"choices": [{"delta": {"content": "!"}}]},
        {"choices": [], "usage": USAGE},
    ]:
        yield f"data: {json.dumps(event)}\n\n"
    yield "data: [DONE]\n\n"


def _collect(resp):
    async def run():
        return [c async for c in resp.body_iterator]

    return "".join(asyncio.run(run()))


def test_stream_metrics_usage_and_stripping():
    metrics, settled = Metrics(), []
    obs = Observer(metrics, log_requests=False, settle=lambda *a: settled.append(a))
    rec = _rec(strip_usage=True)
    obs.begin(rec)
    resp = obs.observe(rec, StreamingResponse(_upstream()))
    assert resp.headers["x-model-variant"] == "v1"
    text = _collect(resp)
    assert '"usage"' not in text and "[DONE]" in text and '"Hi"' in text
    assert settled == [("abc123", 100, 9)]
    out = metrics.render().decode()
    assert 'supportserve_completion_tokens_total{adapter="v1",model="base",variant="v1"} 2.0' in out
    assert 'supportserve_time_to_first_token_seconds_count{adapter="v1"' in out
    assert 'supportserve_requests_total{adapter="v1",model="base",status="200",variant="v1"}' in out
    assert obs.active == 0


def test_usage_kept_when_client_asked():
    obs = Observer(Metrics(), log_requests=False, settle=lambda *a: None)
    rec = _rec(strip_usage=False)
    obs.begin(rec)
    assert '"usage"' in _collect(obs.observe(rec, StreamingResponse(_upstream())))


def test_json_response_usage():
    metrics = Metrics()
    obs = Observer(metrics, log_requests=False, settle=lambda *a: None)
    rec = _rec()
    obs.begin(rec)
    resp = obs.observe(rec, JSONResponse({"choices": [], "usage": USAGE}))
    assert json.loads(resp.body)["usage"] == USAGE
    assert rec.prompt_tokens == 7 and obs.active == 0


def test_log_line_has_no_prompt_by_default_and_no_key():
    line = json.loads(log_line(_rec(), 0.5))
    assert line["key_id"] == "abc123" and "prompt" not in line
    assert line["variant"] == "v1" and line["duration_ms"] == 500.0
