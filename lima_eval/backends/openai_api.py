"""Any OpenAI-compatible /v1/chat/completions endpoint through the official `openai` client.

Payload building and response parsing are pure functions (tested on plain dicts). Retries with exponential
backoff that honour Retry-After on 429 and retry 5xx, connection errors and timeouts are the client's own
(`max_retries`). A 200 whose body is not a chat completion (not JSON, no choices) is retried the same way, from
the same budget; after the last retry the request becomes a Completion with `error`, never a dropped item.
The API key is read from the environment variable named by `api_key_env` when the backend opens, and is
never stored, logged or put into an error message.

A plain-http endpoint (a local vLLM or any server of your own, no proxy) gets each request's first try over the
worker's own keep-alive connection (Http11 below): the same bytes the client would send, at a fraction of its
CPU per request. Anything but a 200 (a 429, a 5xx, a timeout, a dropped connection) is decided by the client's
own retry rules, and its retries go through the client.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from typing import Any

from lima_eval.backends.base import Backend, Completion, LogprobRequest, Messages, OnResult
from lima_eval.config import Endpoint, Sampling, backend_options
from lima_eval.errors import BackendError, MissingExtraError, MissingKeyError


def build_payload(model: str, messages: Messages, sampling: Sampling, seed: int, compatible_server: bool,
                  system_prompt: str | None = None, logprobs: LogprobRequest | None = None) -> dict[str, Any]:
    """The JSON body of one chat completion request."""
    msgs = list(messages)
    if system_prompt and not any(m["role"] == "system" for m in msgs):
        msgs = [{"role": "system", "content": system_prompt}] + msgs
    body: dict[str, Any] = {
        "model": model,
        "messages": msgs,
        "max_tokens": sampling.max_new_tokens,
        "temperature": max(0.0, sampling.temperature),
        "seed": seed,
    }
    if not sampling.greedy:
        body["top_p"] = sampling.top_p
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if compatible_server and sampling.repetition_penalty not in (None, 1.0):
        # Not part of OpenAI's API; vLLM and other compatible servers accept it as an extra field.
        body["repetition_penalty"] = sampling.repetition_penalty
    if logprobs is not None:
        body["logprobs"] = True
        body["top_logprobs"] = max(1, min(20, logprobs.top))  # OpenAI's maximum is 20
    return body


def parse_logprobs(choice: dict[str, Any]) -> list[tuple[str, dict[str, float]]] | None:
    """choices[0].logprobs.content -> [(token, {alternative: logprob})]; None when absent or malformed."""
    block = choice.get("logprobs")
    content = block.get("content") if isinstance(block, dict) else None
    if not isinstance(content, list):
        return None
    steps = []
    for item in content:
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            return None
        alts: dict[str, float] = {}
        for alt in item.get("top_logprobs") or []:
            if isinstance(alt, dict) and isinstance(alt.get("token"), str) and isinstance(alt.get("logprob"),
                                                                                           (int, float)):
                alts[alt["token"]] = float(alt["logprob"])
        if isinstance(item.get("logprob"), (int, float)):
            alts.setdefault(item["token"], float(item["logprob"]))
        steps.append((item["token"], alts))
    return steps


def is_completion(body: Any) -> bool:
    """Whether a reply body is a chat completion (it has choices): one the server generated, and billed."""
    choices = body.get("choices") if isinstance(body, dict) else None
    return isinstance(choices, list) and bool(choices) and isinstance(choices[0], dict)


def read_reply(text: str) -> tuple[Completion, bool]:
    """The raw body of a 200 reply -> (its Completion, whether to ask again).

    A body that is not a chat completion (not JSON, an error object, no choices) is the server's failure, like a
    500: asked again. A completion is kept even when it holds no text (a refusal): it was generated and paid
    for, and asking again would pay again for the same."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return Completion(error=f"malformed response: not JSON ({text[:80]!r})"), True
    answer = parse_response(body)
    return answer, answer.error is not None and not is_completion(body)


def retry_delay(retries: int) -> float:
    """Seconds before retry number `retries` (from 1): the openai client's backoff, 0.5 s doubling up to 8 s,
    less up to a quarter of jitter."""
    return min(0.5 * 2.0 ** (retries - 1), 8.0) * (1 - 0.25 * random.random())


def parse_response(body: Any) -> Completion:
    """Read one chat completion response body (already JSON-decoded); malformed shapes become errors."""
    if not isinstance(body, dict):
        return Completion(error=f"malformed response: expected a JSON object, got {type(body).__name__}")
    if body.get("error"):
        err = body["error"]
        msg = err.get("message") if isinstance(err, dict) else str(err)
        return Completion(error=f"server error: {msg}")
    if not is_completion(body):
        return Completion(error="malformed response: no choices")
    choices = body["choices"]
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        # A completion without text (a refusal, a content filter): what it does say goes into the error.
        said = [f"finish_reason {choices[0].get('finish_reason')!r}"] if choices[0].get("finish_reason") else []
        if isinstance(message, dict) and isinstance(message.get("refusal"), str):
            said.append(f"refusal {message['refusal'][:200]!r}")
        return Completion(error="malformed response: choices[0].message.content is missing"
                          + (f" ({'; '.join(said)})" if said else ""))
    raw_usage = body.get("usage")
    usage = {k: v for k, v in (raw_usage if isinstance(raw_usage, dict) else {}).items()
             if k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    return Completion(text=content, finish_reason=choices[0].get("finish_reason"), usage=usage,
                      logprobs=parse_logprobs(choices[0]))


POOL = 8  # connections per HTTP connection pool (see OpenAIBackend._clients)
_BODY = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode  # as the client does


class Http11:
    """One worker's keep-alive HTTP/1.1 connection to a plain-http endpoint: POST a JSON body, read the reply.

    `head` is the request line and headers the openai client would send, up to Content-Length. Raises OSError
    (connection refused, reset, closed early, a reply that is not HTTP/1.x) or TimeoutError (connect, or waiting
    for the reply, took longer than `timeout`)."""

    def __init__(self, host: str, port: int, head: bytes, timeout: float):
        self.host, self.port, self.head, self.timeout = host, port, head, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.reader is None or self.reader.at_eof():  # none yet, or the server closed it while idle
            await self.connect()
        try:
            return await self.exchange(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, zlib.error) as exc:
            self.close()
            if isinstance(exc, OSError):
                raise
            raise OSError(f"unreadable HTTP reply ({type(exc).__name__}: {exc})") from None
        except TimeoutError:
            self.close()
            raise

    async def connect(self) -> None:
        self.close()
        async with asyncio.timeout(self.timeout):
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def exchange(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        reader, writer = self.reader, self.writer
        assert reader is not None and writer is not None
        writer.write(data)
        async with asyncio.timeout(self.timeout):
            while True:  # an informational 1xx reply comes before the real one
                status, version, headers = _read_head(await reader.readuntil(b"\r\n\r\n"))
                if status >= 200:
                    break
            if status in (204, 304):  # no body, whatever the headers say
                body = b""
            elif headers.get("transfer-encoding", "").lower().endswith("chunked"):
                body = await _read_chunked(reader)
            elif "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            else:  # the body runs to the end of the connection
                body, version = await reader.read(-1), "close"
        if version != "HTTP/1.1" or "close" in headers.get("connection", "").lower():
            self.close()
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):  # the client's Accept-Encoding allows these two
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        return status, headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _read_head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    """The status line and headers of a reply (names lower-cased); ValueError when they are not HTTP/1.x."""
    lines = raw.decode("latin-1").split("\r\n")
    version, code = lines[0].split(" ", 2)[:2]
    if not version.startswith("HTTP/1."):
        raise ValueError(f"status line {lines[0][:40]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(code), version, headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


@dataclass
class OpenAIOptions:
    """Options of the openai backend (and of vllm-server, which sends its requests through it)."""

    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1 (default: api.openai.com)
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable holding the key
    timeout: float = 120.0  # seconds per request
    max_retries: int = 4  # retries on 429 / 5xx / timeouts (Retry-After honoured)


class OpenAIBackend(Backend):
    """Chat completions over HTTP: asyncio with at most `concurrency` requests in flight."""

    Options: type = OpenAIOptions
    options: OpenAIOptions
    supports_logprobs = True
    streams_results = True  # generate() reports each completion as it finishes (on_result)

    @classmethod
    def preflight(cls, spec: Endpoint) -> None:
        env = cls.api_key_env(spec)
        if env and not os.environ.get(env):
            raise MissingKeyError(f"the openai backend of '{getattr(spec, 'name', spec.model)}' needs an API key: set "
                                  f"the environment variable {env} (or point base_url at an OpenAI-compatible "
                                  "server)", env)

    @classmethod
    def api_key_env(cls, spec: Endpoint) -> str | None:
        """api.openai.com needs a key; a server of your own (base_url) gets the key only if its variable is set."""
        opts = backend_options(spec)
        return opts.api_key_env if opts.base_url is None else None

    def __init__(self, spec: Endpoint, seed: int = 0):
        super().__init__(spec, seed)
        try:
            import openai
        except ImportError as exc:
            raise MissingExtraError("openai", hint="pip install openai") from exc
        try:  # the openai client's HTTP library: httpx2 in current releases, httpx before
            import httpx2
        except ImportError:
            import httpx as httpx2  # type: ignore[no-redef]
        self._openai = openai
        self._response_type = httpx2.Response
        self.base_url: str | None = self.options.base_url
        key = os.environ.get(self.options.api_key_env)
        if not key:
            if self.base_url is None:
                raise BackendError(
                    f"the openai backend needs an API key: set the environment variable {self.options.api_key_env} "
                    "(or point base_url at an OpenAI-compatible server)"
                )
            key = "EMPTY"  # local servers usually ignore it
        self._secret = key
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: list[Any] = []
        self._conns: list[Http11] | None = None  # the workers' own connections (plain http); [] when not used
        self._request: Any = None  # what the client would send (failures of a first try are judged against it)
        self._retry_options: Any = None
        self.compatible_server = self.base_url is not None
        if not self.compatible_server:
            self.repetition_penalty_scope = "not sent (the OpenAI API has no repetition_penalty)"

    @property
    def chunk_size(self) -> int:
        # Several waves per chunk: the pipeline saves after each chunk, and the wave at a chunk's end is the
        # only time slots sit idle.
        return max(1, self.spec.concurrency) * 16

    async def _one(self, client: Any, conn: Http11 | None, messages: Messages,
                   logprobs: LogprobRequest | None) -> Completion:
        payload = build_payload(self.spec.model, messages, self.spec.sampling, self.seed, self.compatible_server,
                                self.spec.system_prompt, logprobs)
        budget, retries = self.options.max_retries, 0  # retries spent: the client's (429, 5xx, ...) and ours
        if conn is not None:
            answer, retries = await self._first_try(client, conn, payload)
            if answer is not None:
                return answer
        while True:
            try:
                # The client's own request path (auth, retries, Retry-After, timeouts) with the JSON body we built:
                # the typed `chat.completions.create` re-validates every message, which costs more CPU than a
                # local server's whole reply at high concurrency. The raw response comes back, so a malformed
                # body is read below, and the request says how many retries the client spent on it.
                reply = await client.post("/chat/completions", body=payload, cast_to=self._response_type,
                                          options={"max_retries": budget - retries})
            except self._openai.APIStatusError as exc:
                return Completion(error=self._scrub(f"HTTP {exc.status_code} after retries: {exc.message}"))
            except self._openai.APITimeoutError:
                return Completion(error=f"timed out after {self.options.timeout:g}s and {budget} retries")
            except self._openai.APIConnectionError as exc:
                return Completion(error=self._scrub(f"connection failed after retries: {exc}"))
            retries += int(reply.request.headers.get("x-stainless-retry-count") or 0)
            answer, again = read_reply(reply.text)
            if not again:
                return answer
            if retries >= budget:
                return Completion(error=self._scrub(f"{answer.error} after {retries} retries"))
            retries += 1
            await asyncio.sleep(retry_delay(retries))

    async def _first_try(self, client: Any, conn: Http11, payload: dict[str, Any]) -> tuple[Completion | None, int]:
        """The first try over the worker's own connection: (the answer, or None to go on through the client, and the
        retries spent). A failure is judged by the client's own rules (which statuses to retry, Retry-After, the
        backoff, the error's message), so the outcome is the one the client would have reached."""
        budget = self.options.max_retries
        try:
            status, headers, body = await conn.post(_BODY(payload).encode())
        except (TimeoutError, OSError) as exc:
            if budget > 0:
                await asyncio.sleep(client._calculate_retry_timeout(budget, self._retry_options, None))
                return None, 1
            if isinstance(exc, TimeoutError):
                return Completion(error=f"timed out after {self.options.timeout:g}s and {budget} retries"), 0
            failure = self._openai.APIConnectionError(request=self._request)
            return Completion(error=self._scrub(f"connection failed after retries: {failure}")), 0
        if 200 <= status < 300:
            answer, again = read_reply(body.decode("utf-8", "replace"))
            if not again:
                return answer, 0
            if budget == 0:
                return Completion(error=self._scrub(f"{answer.error} after 0 retries")), 0
            await asyncio.sleep(retry_delay(1))
            return None, 1
        if status < 400:  # a redirect: the client follows it (the server did not take the request)
            return None, 0
        response = self._response_type(status, headers=list(headers.items()), content=body, request=self._request)
        if budget > 0 and client._should_retry(response):
            await asyncio.sleep(client._calculate_retry_timeout(budget, self._retry_options, response.headers))
            return None, 1
        error = client._make_status_error_from_response(response)
        return Completion(error=self._scrub(f"HTTP {error.status_code} after retries: {error.message}")), 0

    async def _first_try_connections(self, client: Any) -> list[Http11]:
        """One keep-alive connection per worker where every request's first try can skip the client's own HTTP
        stack: a plain-http base_url, no proxy, the key as a plain header. Its request line and headers are the
        ones the client builds (asked once), so the server sees the same request. [] where that is not so."""
        url = urllib.parse.urlsplit(self.base_url or "")
        proxies = urllib.request.getproxies()
        if url.scheme != "http" or not url.hostname or "http" in proxies or "all" in proxies:
            return []
        try:
            from openai._models import FinalRequestOptions

            if client.custom_auth is not None or not all(callable(getattr(client, f, None)) for f in (
                    "_should_retry", "_calculate_retry_timeout", "_make_status_error_from_response")):
                return []
            options = FinalRequestOptions.construct(method="post", url="/chat/completions", json_data={},
                                                    max_retries=self.options.max_retries)
            request = client._build_request(await client._prepare_options(options), retries_taken=0)
            await client._prepare_request(request)
        except Exception:  # noqa: BLE001 - another client version: every try goes through the client
            return []
        self._request, self._retry_options = request, options
        lines = [f"{request.method} ".encode() + request.url.raw_path + b" HTTP/1.1"]
        lines += [k + b": " + v for k, v in request.headers.raw if k.lower() != b"content-length"]
        head = b"\r\n".join(lines) + b"\r\nContent-Length: "
        port = url.port or 80
        return [Http11(url.hostname, port, head, self.options.timeout) for _ in range(max(1, self.spec.concurrency))]

    def _scrub(self, message: str) -> str:
        return message.replace(self._secret, "***") if self._secret and self._secret != "EMPTY" else message

    def _clients(self) -> list[Any]:
        """The clients (and connection pools) for the backend's life, on the backend's own event loop.

        `concurrency` connections are split over pools of at most POOL connections each: httpx scans its whole
        pool for a free connection on every request, so one pool of 64 costs the client more CPU per request
        than eight pools of 8 (measured in perf/judge_throughput.py)."""
        if not self._http:
            import httpx2 as httpx  # the openai client's HTTP library

            conc = max(1, self.spec.concurrency)
            pools = -(-conc // POOL)
            size = -(-conc // pools)
            limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
            tls = httpx.create_ssl_context()  # the default one, loaded once (tens of ms each) for all the pools
            self._http = [self._openai.AsyncOpenAI(
                api_key=self._secret, base_url=self.base_url, timeout=self.options.timeout,
                max_retries=self.options.max_retries,
                http_client=self._openai.DefaultAsyncHttpxClient(limits=limits, verify=tls)) for _ in range(pools)]
        return self._http

    async def _all(self, requests: list[Messages], logprobs: LogprobRequest | None,
                   on_result: OnResult | None) -> list[Completion]:
        clients = self._clients()
        if self._conns is None:
            self._conns = await self._first_try_connections(clients[0])
        conns = self._conns
        out: list[Completion] = [Completion()] * len(requests)
        todo = iter(enumerate(requests))

        # `concurrency` workers take the requests in order, one in flight each (retries, inside the client, keep
        # their worker: the bound holds under 429 storms). Cheaper than a task and a semaphore wait per request,
        # a measurable share of the client's CPU when a local server answers hundreds of requests a second.
        # Worker w always uses pool w % pools, so no pool has more workers than connections.
        async def worker(client: Any, conn: Http11 | None) -> None:
            for i, m in todo:
                c = out[i] = await self._one(client, conn, m, logprobs)
                if on_result is not None:
                    on_result(i, c)

        workers = min(max(1, self.spec.concurrency), len(requests))
        await asyncio.gather(*(worker(clients[w % len(clients)], conns[w] if conns else None)
                               for w in range(workers)))
        return out

    def generate(self, requests: list[Messages], logprobs: LogprobRequest | None = None,
                 on_result: OnResult | None = None) -> list[Completion]:
        """All requests with at most `concurrency` in flight; on_result(i, completion) as each one finishes."""
        self.calls += len(requests)
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self._all(requests, logprobs, on_result))

    def sampling_record(self) -> dict[str, Any]:
        out = super().sampling_record()
        out["model"] = self.spec.model
        return out

    def close(self) -> None:
        """Close the HTTP client (its connections) and the event loop."""
        if self._loop is not None:
            for client in self._http:
                self._loop.run_until_complete(client.close())
            for conn in self._conns or []:
                conn.close()
            self._loop.run_until_complete(asyncio.sleep(0))  # the closed connections' transports finish closing
            self._loop.close()
        self._http, self._loop, self._conns = [], None, None
