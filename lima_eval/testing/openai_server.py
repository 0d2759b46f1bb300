"""A small OpenAI-compatible HTTP server on 127.0.0.1 for tests: real sockets, scripted answers and faults.

Faults are chosen per request by `fault(n, body)` (n counts requests from 1) and may be:
  ("latency", seconds)  answer normally after sleeping
  ("429", retry_after)  429 Too Many Requests with a Retry-After header
  ("500", None)         500 Internal Server Error
  ("timeout", seconds)  sleep that long before answering (longer than the client's timeout)
  ("malformed", None)   200 with a body that is not JSON
  ("no-choices", None)  200 with JSON that has no choices
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

# A responder returns the reply text, or (text, logprobs content) where logprobs content is OpenAI's
# choices[0].logprobs.content list: [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}].
Responder = Callable[[dict[str, Any]], "str | tuple[str, list[dict[str, Any]]]"]
FaultPolicy = Callable[[int, dict[str, Any]], "tuple[str, float | None] | None"]


def echo(body: dict[str, Any]) -> str:
    last = [m for m in body.get("messages", []) if m.get("role") == "user"][-1]["content"]
    return f"echo: {last[:60]}"


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of new connections (a client opening 64 at once)
    # would see dropped SYNs and one-second reconnect delays that no real server imposes.
    request_queue_size = 1024
    daemon_threads = True


class OpenAITestServer:
    """Start with `with OpenAITestServer(...) as server:`; point clients at `server.base_url`."""

    def __init__(self, responder: Responder = echo, fault: FaultPolicy | None = None, latency: float = 0.0):
        self.responder = responder
        self.fault = fault
        self.latency = latency
        self.requests = 0  # chat completion requests received (faulty ones included)
        self.answered = 0  # requests answered with a completion
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> Self:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle's algorithm on, the body would wait for the
            # client's delayed ACK (tens of ms) on every keep-alive request.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, json.dumps({"object": "list", "data": [{"id": "test-model"}]}).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                with server._lock:
                    server.requests += 1
                    n = server.requests
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.bodies.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                try:
                    self._answer(n, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, n: int, body: dict[str, Any]) -> None:
                fault = server.fault(n, body) if server.fault else None
                kind, arg = fault if fault else (None, None)
                delay = server.latency + (arg if kind in ("latency", "timeout") and arg else 0.0)
                if delay:
                    time.sleep(delay)
                if kind == "429":
                    self._send(429, b'{"error": {"message": "rate limited", "type": "rate_limit"}}',
                               {"Retry-After": str(arg if arg is not None else 1)})
                elif kind == "500":
                    self._send(500, b'{"error": {"message": "internal error"}}')
                elif kind == "malformed":
                    self._send(200, b"this is not json {")
                elif kind == "no-choices":
                    self._send(200, json.dumps({"id": "x", "object": "chat.completion"}).encode())
                else:
                    answer = server.responder(body)
                    text, logprobs = answer if isinstance(answer, tuple) else (answer, None)
                    reply = {
                        "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
                        "model": body.get("model", "test-model"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split()),
                                  "total_tokens": 10 + len(text.split())},
                    }
                    if logprobs is not None and body.get("logprobs"):
                        reply["choices"][0]["logprobs"] = {"content": logprobs}
                    with server._lock:
                        server.answered += 1
                    self._send(200, json.dumps(reply).encode())

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
