"""The openai backend against a real HTTP server on 127.0.0.1 (no patched client)."""

import pytest

from lima_eval.backends.base import open_backend
from lima_eval.backends.openai_api import build_payload, parse_response, read_reply
from lima_eval.config import Endpoint, Sampling
from lima_eval.errors import BackendError
from lima_eval.testing.openai_server import OpenAITestServer

MSG = [{"role": "user", "content": "hello there"}]


def spec(server, **kw) -> Endpoint:
    base = {"backend": "openai", "model": "test-model", "base_url": server.base_url, "max_retries": 2, "timeout": 5.0,
                "concurrency": 2, "api_key_env": "LIMA_TEST_KEY"}
    return Endpoint.make(**(base | kw))


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


@pytest.mark.parametrize("text,error,again", [
    ('{"choices": [{"message": {"content": "hi"}}]}', None, False),
    ("this is not json {", "malformed response: not JSON ('this is not json {')", True),
    ('{"id": "x", "object": "chat.completion"}', "malformed response: no choices", True),
    ('{"choices": []}', "malformed response: no choices", True),
    ('["not", "an", "object"]', "expected a JSON object", True),
    ('{"error": {"message": "overloaded"}}', "server error: overloaded", True),
    # A completion without text was generated, and paid for: kept as an error that says why, never asked again.
    ('{"choices": [{"message": {"content": null, "refusal": "No."}, "finish_reason": "stop"}]}',
     "content is missing (finish_reason 'stop'; refusal 'No.')", False),
])
def test_read_reply_asks_again_only_for_what_is_not_a_completion(text, error, again):
    answer, retry = read_reply(text)
    assert retry is again
    assert answer.error == error or (error and error in answer.error)
    if error is None:
        assert answer.text == "hi"


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
    with OpenAITestServer(fault=lambda n, body: faults.get(n)) as server, \
            open_backend(spec(server, concurrency=1, max_retries=3)) as backend:
        out = backend.generate([MSG])
    assert out[0].error is None and out[0].text == "echo: hello there"
    assert server.requests == 4


def first_tries(faults):
    """A fault policy: each distinct request meets `faults` in turn on its first tries, then is answered."""
    tries: dict[str, int] = {}

    def fault(n, body):
        key = body["messages"][-1]["content"]
        tries[key] = tries.get(key, 0) + 1
        return faults[tries[key] - 1] if tries[key] <= len(faults) else None
    return fault


@pytest.mark.parametrize("faults", [
    [("malformed", None)],
    [("malformed", None), ("no-choices", None)],  # max_retries: 2, so three tries in all
    [("500", None), ("malformed", None)],  # one budget for both kinds
    [("no-choices", None), ("429", 0)],
], ids=["not-json", "not-json-then-no-choices", "500-then-not-json", "no-choices-then-429"])
def test_a_malformed_200_is_retried_like_a_500(faults):
    msgs = [[{"role": "user", "content": f"question {i}"}] for i in range(6)]
    with OpenAITestServer(fault=first_tries(faults)) as server, \
            open_backend(spec(server, concurrency=3, max_retries=2)) as backend:
        out = backend.generate(msgs)
    assert [c.error for c in out] == [None] * 6
    assert [c.text for c in out] == [f"echo: question {i}" for i in range(6)]
    assert server.requests == 6 * (len(faults) + 1) and server.answered == 6


def test_malformed_and_server_errors_share_one_retry_budget():
    # Three failures need three retries; max_retries: 2 allows two, whatever their kind.
    with OpenAITestServer(fault=first_tries([("500", None), ("malformed", None), ("500", None)])) as server, \
            open_backend(spec(server, concurrency=1, max_retries=2)) as backend:
        out = backend.generate([MSG])
    assert out[0].error == "HTTP 500 after retries: Error code: 500 - internal error"
    assert server.requests == 3 and server.answered == 0


@pytest.mark.parametrize("fault,expected", [
    (("malformed", None), "malformed response: not JSON ('this is not json {') after 2 retries"),
    (("no-choices", None), "malformed response: no choices after 2 retries"),
])
def test_a_reply_that_stays_malformed_is_a_recorded_error_naming_it(fault, expected, monkeypatch):
    monkeypatch.setenv("LIMA_TEST_KEY", "sk-test-SECRET-123")
    with OpenAITestServer(fault=lambda n, body: fault) as server, \
            open_backend(spec(server, concurrency=2, max_retries=2)) as backend:
        out = backend.generate([MSG, [{"role": "user", "content": "second"}]])
    assert [c.error for c in out] == [expected, expected]
    assert server.requests == 2 * 3  # each request: the first try and its two retries, no more
    assert not any("SECRET" in c.error for c in out)


def test_a_refusal_is_paid_for_so_it_is_recorded_not_asked_again():
    with OpenAITestServer(fault=lambda n, body: ("refusal", None)) as server, \
            open_backend(spec(server, concurrency=1, max_retries=2)) as backend:
        out = backend.generate([MSG])
    assert out[0].error == ("malformed response: choices[0].message.content is missing "
                            "(finish_reason 'stop'; refusal \"I can't help with that.\")")
    assert server.requests == 1


@pytest.mark.parametrize("fault,expected", [
    (("500", None), "HTTP 500 after retries"),
    (("429", 0), "HTTP 429 after retries"),
    (("malformed", None), "malformed response: not JSON"),
    (("no-choices", None), "malformed response: no choices"),
])
def test_persistent_faults_become_errors_not_drops(fault, expected, monkeypatch):
    monkeypatch.setenv("LIMA_TEST_KEY", "sk-test-SECRET-123")
    with OpenAITestServer(fault=lambda n, body: fault) as server, open_backend(spec(server, max_retries=1)) as backend:
        out = backend.generate([MSG, MSG, MSG])
    assert len(out) == 3 and all(expected in c.error for c in out)
    assert all("SECRET" not in c.error for c in out)


def test_timeout_is_an_error_after_retries():
    with OpenAITestServer(fault=lambda n, body: ("timeout", 3.0)) as server, \
            open_backend(spec(server, timeout=0.3, max_retries=1, concurrency=1)) as backend:
        out = backend.generate([MSG])
    assert "timed out" in out[0].error
    assert server.requests == 2


def test_concurrency_bound_is_respected():
    with OpenAITestServer(latency=0.2) as server, open_backend(spec(server, concurrency=3)) as backend:
        backend.generate([MSG] * 9)
    assert server.max_in_flight == 3


def test_official_api_without_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("LIMA_TEST_KEY", raising=False)
    with pytest.raises(BackendError, match="set the environment variable LIMA_TEST_KEY"):
        open_backend(Endpoint.make(backend="openai", model="gpt-4o", api_key_env="LIMA_TEST_KEY"))


def test_faulty_server_nothing_dropped_and_rerun_retries_only_failures(tmp_path):
    import json

    from conftest import server_run_config

    from lima_eval.config import load_config
    from lima_eval.pipeline import run
    from lima_eval.store import RunStore

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question {i}"}) + "\n" for i in range(24)))
    broken = {"on": True}
    limited = set()

    def fault(n, body):
        text = body["messages"][-1]["content"]
        if broken["on"] and text in ("Question 3", "Question 7"):
            return ("500", None)  # fails on every retry
        if broken["on"] and text == "Question 11":
            return ("timeout", 2.0)
        key = (body["model"], text)
        if text.startswith("Question") and int(text.split()[-1]) % 3 == 0 and key not in limited:
            limited.add(key)
            return ("429", 0)  # every third prompt is rate-limited once; the client's retry recovers it
        return ("latency", 0.05)

    with OpenAITestServer(fault=fault) as server:
        cfg_path = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts)},
                                     name="faults", endpoint={"max_retries": 2, "timeout": 0.5},
                                     model_ids=("m", "b"), judge={"model": "j"})
        first = run(load_config(cfg_path), show_progress=False)
        gens = RunStore(tmp_path / "results" / "faults").generations().values()
        assert len(gens) == 48  # every prompt of both models has an answer or a recorded error
        failed = sorted((g.model, g.prompt_id) for g in gens if g.error)
        assert failed == sorted((m, q) for m in ("mine", "base") for q in ("q3", "q7", "q11"))
        assert first.generations.errors == 6 and first.skipped_pairs == 3
        broken["on"] = False
        before = len(server.bodies)
        second = run(load_config(cfg_path), show_progress=False)
    asked = [b["messages"][-1]["content"] for b in server.bodies[before:] if b["model"] in ("m", "b")]
    assert sorted(set(asked)) == ["Question 11", "Question 3", "Question 7"]
    assert (second.generations.new, second.generations.errors) == (6, 0)
    assert second.judgments.new == 3  # only the pairs that were missing an answer


def test_first_try_and_retry_send_the_same_request(monkeypatch):
    # A plain-http endpoint's first try skips the client's HTTP stack; a retry goes through the client. The server
    # must not tell them apart: same headers (key, client identification), same body bytes.
    monkeypatch.setenv("LIMA_TEST_KEY", "sk-test-SECRET-123")
    msgs = [[{"role": "user", "content": "h\u00e9llo \u2028 there"}]]
    with OpenAITestServer(fault=lambda n, body: ("500", None) if n == 1 else None) as server, \
            open_backend(spec(server, concurrency=1, max_retries=1)) as backend:
        out = backend.generate(msgs)
    assert out[0].text == "echo: h\u00e9llo \u2028 there" and server.requests == 2
    assert server.headers[0] == server.headers[1] and server.bodies[0] == server.bodies[1]
    assert server.headers[0]["authorization"] == "Bearer sk-test-SECRET-123"


class ScriptedHTTP:
    """A raw HTTP/1.1 server on 127.0.0.1 answering chat completions in the ways real servers do: chunked and
    gzipped, `Connection: close`, and closing a kept-alive connection while it is idle."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.connections = self.requests = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def reply(self, n: int) -> tuple[bytes, bool]:
        import gzip
        import json

        body = json.dumps({"choices": [{"message": {"content": f"reply {n}"}, "finish_reason": "stop"}]}).encode()
        if n == 1:  # gzipped, in two chunks
            data = gzip.compress(body)
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (data[:10], data[10:])) + b"0\r\n\r\n"
            return b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks, False
        if n == 2:
            return b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body), True
        # 3: kept alive, then closed by the server while idle; 4 comes on a new connection
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body), n == 3

    def serve(self):
        while True:
            conn, _ = self.sock.accept()
            self.connections += 1
            with conn:
                data = b""
                while True:
                    while b"\r\n\r\n" not in data:
                        more = conn.recv(65536)
                        if not more:
                            break
                        data += more
                    if b"\r\n\r\n" not in data:
                        break
                    head, _, data = data.partition(b"\r\n\r\n")
                    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                      if line.lower().startswith(b"content-length")))
                    while len(data) < length:
                        data += conn.recv(65536)
                    data = data[length:]
                    self.requests += 1
                    answer, close = self.reply(self.requests)
                    conn.sendall(answer)
                    if close:
                        if self.requests == 3:
                            import time

                            time.sleep(0.3)  # idle, then closed
                        break


def test_chunked_gzipped_closed_and_idle_closed_connections_are_read_right():
    import time

    server = ScriptedHTTP()
    with open_backend(spec(server, concurrency=1, max_retries=0)) as backend:
        out = [backend.generate([MSG])[0] for _ in range(3)]
        time.sleep(0.6)  # the server closes the kept-alive connection meanwhile
        out += backend.generate([MSG])
    assert [(c.error, c.text) for c in out] == [(None, f"reply {n}") for n in range(1, 5)]
    assert server.requests == 4 and server.connections == 3
