"""A small OpenAI-compatible HTTP server on 127.0.0.1 for tests: real sockets, scripted answers and faults.

Faults are chosen per request by `fault(n, body)` (n counts requests from 1) and may be:
  ("latency", seconds)  answer normally after sleeping
  ("429", retry_after)  429 Too Many Requests with a Retry-After header
  ("500", None)         500 Internal Server Error
  ("timeout", seconds)  sleep that long before answering (longer than the client's timeout)
  ("malformed", None)   200 with a body that is not JSON
  ("no-choices", None)  200 with JSON that has no choices
  ("refusal", None)     200 with a chat completion whose message has no content, only a refusal

It also serves OpenAI's Files and Batch endpoints (upload, retrieve, content; create, retrieve, list, cancel),
so the openai-batch backend runs against it. A batch finishes `batch_delay` seconds after it is created; until
then it is in_progress, with request_counts.completed growing with the time elapsed. Each line is answered by the
responder unless `batch_policy(batch_no, custom_id, body)` says otherwise:
  "error"   the line fails (500, in the batch's error file)
  "expire"  the line is not done; the batch ends `expired`, the finished lines in its output file
  "malformed"  the line is answered 200 with a body that has no choices
  "refusal"    the line is answered 200 with a chat completion whose message has no content, only a refusal
`batch_fail(batch_no)` returning a message fails a whole batch at validation (status failed, no output).
`batch_create_fault(n)` (n counts batch create calls from 1) makes the create call's outcome unclear to the client:
  ("500", None)         the batch is made, then the answer is a 500 (the reply is lost)
  ("timeout", seconds)  the batch is made, then answered that much later (longer than the client's timeout)
  ("malformed", None)   the batch is made, then answered 200 with a body that is not JSON
  ("503", None)         503 Service Unavailable, and no batch is made
  ("late", seconds)     the batch is made only that much later, then answered (a slow server)
`submitted` counts how often each custom_id arrived in a created batch: "submitted exactly once" is checkable.
"""

from __future__ import annotations

import collections
import email.parser
import email.policy
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

# A responder returns the reply text, or (text, logprobs content) where logprobs content is OpenAI's
# choices[0].logprobs.content list: [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}].
Responder = Callable[[dict[str, Any]], "str | tuple[str, list[dict[str, Any]]]"]
FaultPolicy = Callable[[int, dict[str, Any]], "tuple[str, float | None] | None"]
BatchPolicy = Callable[[int, str, dict[str, Any]], "str | None"]
CreateFault = Callable[[int], "tuple[str, float | None] | None"]


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

    def __init__(self, responder: Responder = echo, fault: FaultPolicy | None = None, latency: float = 0.0,
                 batch_delay: float = 0.0, batch_policy: BatchPolicy | None = None,
                 batch_fail: Callable[[int], str | None] | None = None,
                 batch_create_fault: CreateFault | None = None):
        self.responder = responder
        self.batch_delay = batch_delay
        self.batch_policy = batch_policy
        self.batch_fail = batch_fail
        self.batch_create_fault = batch_create_fault
        self.batch_creates = 0  # batch create calls received (faulty ones included)
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.submitted: collections.Counter[str] = collections.Counter()  # custom_id -> created batches holding it
        self.batch_polls = 0
        self.fault = fault
        self.latency = latency
        self.requests = 0  # chat completion requests received (faulty ones included)
        self.answered = 0  # requests answered with a completion
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.RLock()  # batch work answers lines (completion) while holding it
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
                path, _, query = self.path.partition("?")
                if path.rstrip("/").endswith("/models"):
                    self._send(200, json.dumps({"object": "list", "data": [{"id": "test-model"}]}).encode())
                    return
                status, payload = server.files_and_batches("GET", path.rstrip("/"), urllib.parse.parse_qs(query), None)
                self._send(status, payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                path = self.path.partition("?")[0].rstrip("/")
                if path.endswith("/files"):
                    self._send(*server.upload(self.headers.get("Content-Type", ""), raw))
                    return
                if path.endswith("/batches"):
                    self._send(*server.create_batch(json.loads(raw or b"{}")))
                    return
                if "/batches" in path:
                    self._send(*server.files_and_batches("POST", path, {}, json.loads(raw or b"{}")))
                    return
                body = json.loads(raw or b"{}")
                if not path.endswith("/chat/completions"):
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
                elif kind == "refusal":
                    self._send(200, json.dumps(server.completion(n, body, refuse=True)).encode())
                else:
                    self._send(200, json.dumps(server.completion(n, body)).encode())

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def completion(self, n: int, body: dict[str, Any], refuse: bool = False) -> dict[str, Any]:
        """The chat completion object answering `body` (the responder's text, with logprobs when asked); with
        `refuse`, a refusal: a message with no content."""
        answer = self.responder(body)
        text, logprobs = answer if isinstance(answer, tuple) else (answer, None)
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "test-model"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split()),
                      "total_tokens": 10 + len(text.split())},
        }
        if logprobs is not None and body.get("logprobs"):
            reply["choices"][0]["logprobs"] = {"content": logprobs}
        if refuse:
            reply["choices"][0]["message"] = {"role": "assistant", "content": None,
                                              "refusal": "I can't help with that."}
        with self._lock:
            self.answered += 1
        return reply

    # Files and batches ------------------------------------------------------------------------------------------

    def _new_file(self, data: bytes, purpose: str, filename: str) -> dict[str, Any]:
        fid = f"file-{len(self.files) + 1}"
        meta = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}
        self.files[fid] = {"meta": meta, "data": data}
        return meta

    def upload(self, content_type: str, raw: bytes) -> tuple[int, bytes]:
        """POST /files: a multipart form with `purpose` and `file`."""
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        fields: dict[str, tuple[bytes, str]] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            fields[str(name)] = (data if isinstance(data, bytes) else b"", str(part.get_filename() or ""))
        if "file" not in fields:
            return 400, b'{"error": {"message": "no file in the upload"}}'
        with self._lock:
            meta = self._new_file(fields["file"][0], fields.get("purpose", (b"batch", ""))[0].decode(),
                                  fields["file"][1] or "upload.jsonl")
        return 200, json.dumps(meta).encode()

    def files_and_batches(self, method: str, path: str, query: dict[str, list[str]],
                          body: dict[str, Any] | None) -> tuple[int, bytes]:
        parts = path.split("/")
        with self._lock:
            if method == "GET" and len(parts) >= 2 and parts[-2] == "files" and parts[-1] in self.files:
                return 200, json.dumps(self.files[parts[-1]]["meta"]).encode()
            if method == "GET" and parts[-1] == "content" and parts[-2] in self.files:
                return 200, self.files[parts[-2]]["data"]
            if method == "GET" and parts[-1] == "batches":
                return self._list_batches(query)
            if parts[-1] in self.batches and method == "GET":
                self.batch_polls += 1
                return 200, json.dumps(self._advance(self.batches[parts[-1]])).encode()
            if method == "POST" and parts[-1] == "cancel" and parts[-2] in self.batches:
                b = self.batches[parts[-2]]
                if b["status"] in ("validating", "in_progress"):
                    self._finish(b, cancelled=True)
                return 200, json.dumps(b).encode()
        return 404, b'{"error": {"message": "not found"}}'

    def create_batch(self, body: dict[str, Any]) -> tuple[int, bytes]:
        """POST /batches, with the fault `batch_create_fault` chooses for this call (the sleep is outside the lock)."""
        with self._lock:
            self.batch_creates += 1
            fault = self.batch_create_fault(self.batch_creates) if self.batch_create_fault else None
            kind, arg = fault if fault else (None, None)
            if kind == "503":
                return 503, b'{"error": {"message": "service unavailable"}}'
        if kind == "late":
            time.sleep(arg or 0.0)
        with self._lock:
            status, payload = self._create_batch(body)
        if kind == "timeout":
            time.sleep(arg or 0.0)
        elif kind == "500":
            return 500, b'{"error": {"message": "internal error"}}'
        elif kind == "malformed":
            return 200, b"this is not json {"
        return status, payload

    def _create_batch(self, body: dict[str, Any]) -> tuple[int, bytes]:
        fid = body.get("input_file_id")
        if fid not in self.files:
            return 404, json.dumps({"error": {"message": f"no such file: {fid}"}}).encode()
        now = int(time.time())
        bid = f"batch_{len(self.batches) + 1}"
        lines = [json.loads(x) for x in self.files[fid]["data"].decode().splitlines() if x.strip()]
        b: dict[str, Any] = {
            "id": bid, "object": "batch", "endpoint": body.get("endpoint"), "input_file_id": fid,
            "completion_window": body.get("completion_window", "24h"), "status": "in_progress", "created_at": now,
            "in_progress_at": now, "metadata": body.get("metadata"), "output_file_id": None, "error_file_id": None,
            "errors": None, "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "_started": time.monotonic(), "_no": len(self.batches) + 1, "_lines": lines,
        }
        self.batches[bid] = b
        self.submitted.update(str(x.get("custom_id")) for x in lines)
        message = self.batch_fail(b["_no"]) if self.batch_fail else None
        if message:
            b.update(status="failed", failed_at=now, errors={"object": "list", "data": [
                {"code": "invalid_batch", "message": message, "line": None, "param": None}]})
        return 200, json.dumps(self._public(b)).encode()

    @staticmethod
    def _public(b: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in b.items() if not k.startswith("_")}

    def _list_batches(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        limit = int((query.get("limit") or ["20"])[0])
        after = (query.get("after") or [""])[0]
        newest = sorted(self.batches.values(), key=lambda b: -b["_no"])
        if after in self.batches:
            newest = [b for b in newest if b["_no"] < self.batches[after]["_no"]]
        page = [self._public(b) for b in newest[:limit]]
        return 200, json.dumps({"object": "list", "data": page, "has_more": len(newest) > limit,
                                "first_id": page[0]["id"] if page else None,
                                "last_id": page[-1]["id"] if page else None}).encode()

    def _advance(self, b: dict[str, Any]) -> dict[str, Any]:
        if b["status"] == "in_progress":
            elapsed = time.monotonic() - b["_started"]
            if elapsed >= self.batch_delay:
                self._finish(b)
            else:
                total = b["request_counts"]["total"]
                b["request_counts"]["completed"] = int(total * elapsed / self.batch_delay)
        return self._public(b)

    def _finish(self, b: dict[str, Any], cancelled: bool = False) -> None:
        out, errors, expired = [], [], False
        for k, line in enumerate(b["_lines"]):
            cid = line.get("custom_id")
            verdict = None if cancelled else (self.batch_policy(b["_no"], cid, line.get("body") or {})
                                              if self.batch_policy else None)
            rid = f"batch_req_{b['_no']}_{k}"
            if cancelled or verdict == "expire":
                expired = expired or verdict == "expire"
                errors.append({"id": rid, "custom_id": cid, "response": None, "error": {
                    "code": "batch_cancelled" if cancelled else "batch_expired",
                    "message": "This request could not be executed before the batch ended."}})
            elif verdict == "malformed":
                out.append({"id": rid, "custom_id": cid, "error": None, "response": {
                    "status_code": 200, "request_id": rid, "body": {"id": rid, "object": "chat.completion"}}})
            elif verdict == "refusal":
                self.requests += 1
                out.append({"id": rid, "custom_id": cid, "error": None, "response": {
                    "status_code": 200, "request_id": rid,
                    "body": self.completion(self.requests, line["body"], refuse=True)}})
            elif verdict == "error":
                errors.append({"id": rid, "custom_id": cid, "error": None, "response": {
                    "status_code": 500, "request_id": rid, "body": {"error": {"message": "internal error"}}}})
            else:
                self.requests += 1
                out.append({"id": rid, "custom_id": cid, "error": None, "response": {
                    "status_code": 200, "request_id": rid, "body": self.completion(self.requests, line["body"])}})
        now = int(time.time())
        status = "cancelled" if cancelled else "expired" if expired else "completed"
        b.update(status=status, **{f"{status}_at": now})
        b["request_counts"] = {"total": len(b["_lines"]), "completed": len(out), "failed": len(errors)}
        if out:
            b["output_file_id"] = self._new_file("".join(json.dumps(x) + "\n" for x in out).encode(),
                                                 "batch_output", f"{b['id']}_output.jsonl")["id"]
        if errors:
            b["error_file_id"] = self._new_file("".join(json.dumps(x) + "\n" for x in errors).encode(),
                                                "batch_output", f"{b['id']}_error.jsonl")["id"]

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
