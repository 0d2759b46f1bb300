"""The openai backend against a real HTTP server on 127.0.0.1 (no patched client)."""

import pytest

from lima_eval.backends.base import open_backend
from lima_eval.backends.openai_api import build_payload, parse_response
from lima_eval.config import Endpoint, Sampling
from lima_eval.errors import BackendError
from lima_eval.testing.openai_server import OpenAITestServer

MSG = [{"role": "user", "content": "hello there"}]


def spec(server, **kw) -> Endpoint:
    base = dict(backend="openai", model="test-model", base_url=server.base_url, max_retries=2, timeout=5.0,
                concurrency=2, api_key_env="LIMA_TEST_KEY")
    return Endpoint(**(base | kw))


def test_payload_is_limas_sampling_and_extra_fields_only_for_compatible_servers():
    body = build_payload("m", MSG, Sampling(), seed=3, compatible_server=True, system_prompt="be brief")
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.7, 0.9, 2048, 3)
    assert body["repetition_penalty"] == 1.2
    official = build_payload("m", MSG, Sampling(temperature=0), seed=0, compatible_server=False)
    assert "repetition_penalty" not in official and "top_p" not in official and official["temperature"] == 0


@pytest.mark.parametrize("body,error", [
    ({"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}, None),
    ({"choices": []}, "no choices"),
    ({"choices": [{"message": {}}]}, "content is missing"),
    ({"error": {"message": "overloaded"}}, "server error: overloaded"),
    (["not", "an", "object"], "expected a JSON object"),
])
def test_parse_response(body, error):
    c = parse_response(body)
    assert c.error == error or (error and error in c.error)
    if error is None:
        assert c.text == "hi" and c.finish_reason == "stop"


def test_answers_and_records_usage(monkeypatch):
    monkeypatch.setenv("LIMA_TEST_KEY", "sk-test-SECRET-123")
    with OpenAITestServer() as server, open_backend(spec(server)) as backend:
        out = backend.generate([MSG, [{"role": "user", "content": "second"}]])
        assert [c.text for c in out] == ["echo: hello there", "echo: second"]
        assert out[0].usage["prompt_tokens"] == 10 and backend.calls == 2
        assert server.headers[0]["authorization"] == "Bearer sk-test-SECRET-123"
        assert server.bodies[0]["repetition_penalty"] == 1.2


def test_retries_500_and_429_with_retry_after():
    faults = {1: ("500", None), 2: ("429", 0), 3: ("500", None)}
    with OpenAITestServer(fault=lambda n, body: faults.get(n)) as server:
        with open_backend(spec(server, concurrency=1, max_retries=3)) as backend:
            out = backend.generate([MSG])
    assert out[0].error is None and out[0].text == "echo: hello there"
    assert server.requests == 4


@pytest.mark.parametrize("fault,expected", [
    (("500", None), "HTTP 500 after retries"),
    (("429", 0), "HTTP 429 after retries"),
    (("malformed", None), "malformed response: not JSON"),
    (("no-choices", None), "malformed response: no choices"),
])
def test_persistent_faults_become_errors_not_drops(fault, expected, monkeypatch):
    monkeypatch.setenv("LIMA_TEST_KEY", "sk-test-SECRET-123")
    with OpenAITestServer(fault=lambda n, body: fault) as server:
        with open_backend(spec(server, max_retries=1)) as backend:
            out = backend.generate([MSG, MSG, MSG])
    assert len(out) == 3 and all(expected in c.error for c in out)
    assert all("SECRET" not in c.error for c in out)


def test_timeout_is_an_error_after_retries():
    with OpenAITestServer(fault=lambda n, body: ("timeout", 3.0)) as server:
        with open_backend(spec(server, timeout=0.3, max_retries=1, concurrency=1)) as backend:
            out = backend.generate([MSG])
    assert "timed out" in out[0].error
    assert server.requests == 2


def test_concurrency_bound_is_respected():
    with OpenAITestServer(latency=0.2) as server:
        with open_backend(spec(server, concurrency=3)) as backend:
            backend.generate([MSG] * 9)
    assert server.max_in_flight == 3


def test_official_api_without_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("LIMA_TEST_KEY", raising=False)
    with pytest.raises(BackendError, match="set the environment variable LIMA_TEST_KEY"):
        open_backend(Endpoint(backend="openai", model="gpt-4o", api_key_env="LIMA_TEST_KEY"))
