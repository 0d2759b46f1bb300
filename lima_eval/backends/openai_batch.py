"""OpenAI's Batch API (Files + Batches) for generation and judging: about half the price of synchronous calls,
answers within the completion window (up to 24 h) instead of seconds. Any OpenAI-compatible server that
implements /files and /batches works (the local test server does).

Every request is one line of a JSONL batch file. Its custom_id is a hash of the endpoint and the request body,
so the same request is the same line in every run. The journal, one JSON file per batch in RUN/batches/, is
written before each step that the server can see: the job (its custom_ids) before the upload, the file id before
the batch is created, the batch id as soon as the create call returns. A killed run therefore resumes by polling
the batch it already paid for. If it was killed between sending the create call and writing the batch id, the
batch is found again by listing the server's batches for the job's input file; it is never submitted twice.
The create call itself is never repeated blindly either: after a lost reply or a timeout the same lookup runs
before another batch is created (see `_create`). An upload repeated by the client's retries costs storage only:
batches are made from the one file id the journal holds.

Results are downloaded into the journal folder (output and error files) before they are handed on, so a paid
reply is never lost. Lines a batch did not answer (it expired, or some lines failed) are submitted again, in a
new and smaller batch, at most `resubmit` times; what is still missing then becomes a call error, retried by the
next `lima-eval run`. A batch somebody cancelled is not resubmitted by this run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima_eval.backends.base import Backend, Completion, LogprobRequest, Messages
from lima_eval.backends.openai_api import build_payload, is_completion, parse_response
from lima_eval.config import Endpoint, backend_options
from lima_eval.errors import BackendError, ConfigError, InputError, MissingExtraError, MissingKeyError
from lima_eval.inputs import load_json
from lima_eval.records import content_id
from lima_eval.resources import judge_cache_path

log = logging.getLogger(__name__)

TERMINAL = ("completed", "expired", "failed", "cancelled")
OPENAI_URL = "https://api.openai.com/v1"


@dataclass
class BatchOptions:
    """Options of the openai-batch backend."""

    base_url: str | None = None  # an OpenAI-compatible server with /files and /batches (default: api.openai.com)
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable holding the key
    timeout: float = 120.0  # seconds per HTTP call (upload, poll, download)
    max_retries: int = 4  # retries of each HTTP call on 429 / 5xx / timeouts (creating a batch: see _create)
    completion_window: str = "24h"
    poll_interval: float = 10.0  # seconds before the first poll; the wait grows 1.5x per poll up to poll_max
    poll_max: float = 300.0
    max_requests: int = 50_000  # lines per batch file (OpenAI's limit is 50,000)
    resubmit: int = 2  # how often lines an expired or partly failed batch left unanswered are submitted again


def _check(opts: BatchOptions, name: str) -> None:
    for key in ("timeout", "poll_interval", "poll_max"):
        if not getattr(opts, key) > 0:
            raise ConfigError(f"backend 'openai-batch' of '{name}': {key} must be > 0, got {getattr(opts, key)!r}")
    for key, low in (("max_requests", 1), ("resubmit", 0), ("max_retries", 0)):
        if getattr(opts, key) < low:
            raise ConfigError(f"backend 'openai-batch' of '{name}': {key} must be >= {low}, got {getattr(opts, key)!r}")


class Journal:
    """RUN/batches/: one <key>.json per submitted batch, with its downloaded <key>.output/.errors.jsonl."""

    def __init__(self, folder: Path):
        self.folder = folder

    def jobs(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                job = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError, RecursionError) as exc:
                raise BackendError(f"{path}: the batch journal is damaged ({exc}); move it away only if no batch "
                                   "of this run is still running") from exc
            if isinstance(job, dict) and isinstance(job.get("custom_ids"), list) and isinstance(job.get("key"), str):
                out.append(job)
        return out

    def save(self, job: dict[str, Any]) -> None:
        self._write(self.folder / f"{job['key']}.json", json.dumps(job, sort_keys=True).encode())

    def forget(self, job: dict[str, Any]) -> None:
        (self.folder / f"{job['key']}.json").unlink(missing_ok=True)

    def path(self, job: dict[str, Any], what: str) -> Path:
        return self.folder / f"{job['key']}.{what}.jsonl"

    def _write(self, path: Path, data: bytes) -> None:
        """Atomic and durable: a kill leaves the old file or the new one, never half of one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def keep(self, job: dict[str, Any], what: str, data: bytes) -> None:
        self._write(self.path(job, what), data)


class OpenAIBatchBackend(Backend):
    """Requests go out as batch files; complete() returns when every batch has ended (see the module docstring)."""

    Options: type = BatchOptions
    options: BatchOptions
    supports_logprobs = True
    whole_stage = True  # takes a stage's every request in one call: one batch, not one per chunk
    price_factor = 0.5  # the Batch API's discount on the synchronous price

    @classmethod
    def preflight(cls, spec: Endpoint) -> None:
        opts = backend_options(spec)
        name = getattr(spec, "name", spec.model)
        _check(opts, name)
        if opts.base_url is None and not os.environ.get(opts.api_key_env):
            raise MissingKeyError(f"the openai-batch backend of '{name}' needs an API key: set the environment "
                                  f"variable {opts.api_key_env} (or point base_url at an OpenAI-compatible server)",
                                  opts.api_key_env)

    @classmethod
    def api_key_env(cls, spec: Endpoint) -> str | None:
        opts = backend_options(spec)
        return opts.api_key_env if opts.base_url is None else None

    def __init__(self, spec: Endpoint, seed: int = 0):
        super().__init__(spec, seed)
        _check(self.options, getattr(spec, "name", spec.model))
        try:
            import openai
        except ImportError as exc:
            raise MissingExtraError("openai", hint="pip install openai") from exc
        self._openai = openai
        key = os.environ.get(self.options.api_key_env)
        if not key and self.options.base_url is None:
            raise BackendError(f"the openai-batch backend needs an API key: set the environment variable "
                               f"{self.options.api_key_env} (or point base_url at an OpenAI-compatible server)")
        self._secret = key or "EMPTY"
        self.where = (self.options.base_url or OPENAI_URL).rstrip("/")
        self.compatible_server = self.options.base_url is not None
        self._client: Any = None

    @property
    def chunk_size(self) -> int:
        return max(1, self.options.max_requests)

    def journal(self) -> Journal:
        root = self.work_dir if self.work_dir is not None else judge_cache_path().parent
        return Journal(Path(root) / "batches")

    def client(self) -> Any:
        if self._client is None:
            self._client = self._openai.OpenAI(api_key=self._secret, base_url=self.options.base_url,
                                               timeout=self.options.timeout, max_retries=self.options.max_retries)
        return self._client

    def custom_id(self, body: dict[str, Any]) -> str:
        return content_id("openai-batch", self.where, body, length=32)

    def _scrub(self, message: str) -> str:
        return message.replace(self._secret, "***") if self._secret != "EMPTY" else message

    # The run ------------------------------------------------------------------------------------------------------

    def complete(self, requests: list[Messages], logprobs: LogprobRequest | None = None) -> list[Completion]:
        bodies = [build_payload(self.spec.model, m, self.spec.sampling, self.seed, self.compatible_server,
                                self.spec.system_prompt, logprobs) for m in requests]
        ids = [self.custom_id(b) for b in bodies]
        todo = dict(zip(ids, bodies))
        journal = self.journal()
        got: dict[str, Completion] = {}
        why: dict[str, str] = {}
        final: set[str] = set()  # unanswered for good in this run (a cancelled batch, a refusal)
        try:
            active = []
            for job in journal.jobs():  # what earlier runs submitted: read it, or wait for it
                if job.get("endpoint") != self.where or not todo.keys() & set(job["custom_ids"]):
                    continue
                if job.get("collected"):
                    self._read(journal, job, todo, got, why, final)
                elif job.get("file_id") is None:
                    journal.forget(job)  # killed during its upload: nothing was submitted
                else:
                    active.append(job)
            for round_ in range(self.options.resubmit + 2):
                covered = {c for job in active for c in job["custom_ids"]}
                fresh = [c for c in todo if c not in got and c not in final and c not in covered]
                if fresh and round_ <= self.options.resubmit:
                    for start in range(0, len(fresh), self.chunk_size):
                        active.append(self._submit(journal, fresh[start:start + self.chunk_size], todo))
                if not active:
                    break
                for job in self._wait(journal, active):
                    self._read(journal, job, todo, got, why, final)
                active = []
        except self._openai.APIError as exc:
            raise BackendError(self._scrub(f"openai-batch at {self.where}: {type(exc).__name__}: {exc}")) from exc
        return [got.get(cid) or Completion(error=why.get(cid, "the batch returned no result for this request"))
                for cid in ids]

    def _submit(self, journal: Journal, chunk: list[str], todo: dict[str, dict[str, Any]]) -> dict[str, Any]:
        job: dict[str, Any] = {"key": f"{time.time_ns():x}-{content_id(chunk, length=8)}", "endpoint": self.where,
                               "created": int(time.time()), "custom_ids": chunk, "file_id": None,
                               "batch_id": None, "status": "uploading", "collected": False}
        journal.save(job)
        lines = "".join(json.dumps({"custom_id": c, "method": "POST", "url": "/v1/chat/completions",
                                    "body": todo[c]}, ensure_ascii=False) + "\n" for c in chunk)
        uploaded = self.client().files.create(file=(f"lima-eval-{job['key']}.jsonl", lines.encode("utf-8")),
                                              purpose="batch")
        job.update(file_id=uploaded.id, status="uploaded")
        journal.save(job)
        self._create(journal, job)
        return job

    def _create(self, journal: Journal, job: dict[str, Any]) -> Any:
        """Create the job's batch, at most once: a create call whose outcome is unclear is never simply repeated.

        The client's own retries would send the call again after a lost reply or a timeout, when the server may
        already have made the batch: every line paid twice. So the call goes out without them, and after an
        unclear outcome the batch is looked up by its input file; only when the server has none is it created
        again (at most `max_retries` times). The journal keeps the file id meanwhile, so a run killed here finds
        the batch the same way."""
        client = self.client().with_options(max_retries=0)
        tries = self.options.max_retries + 1
        for attempt in range(tries):
            batch, problem, wait = self._create_once(client, job, attempt)
            if batch is None:
                log.warning("openai-batch: the create call of %s failed (%s); looking for its batch in %.1fs",
                            job["key"], problem, wait)
                time.sleep(wait)  # a server still working on the call gets the time to finish it
                batch = self._find(job)
            if batch is not None:
                # After several calls, one that timed out may yet make a batch late: _wait cancels it.
                job.update(batch_id=batch.id, status=getattr(batch, "status", None), create_calls=attempt + 1)
                journal.save(job)
                break
        else:
            raise BackendError(f"openai-batch at {self.where}: could not create a batch in {tries} "
                               f"{'try' if tries == 1 else 'tries'} ({problem}); the server has none for file "
                               f"{job['file_id']}, which the journal keeps: the next run looks for the batch "
                               "again before it creates one")
        self.calls += len(job["custom_ids"])
        log.info("openai-batch: submitted %s (%d requests)", batch.id, len(job["custom_ids"]))
        return batch

    def _create_once(self, client: Any, job: dict[str, Any], attempt: int) -> tuple[Any, str, float]:
        """One create call: (batch, "", 0), or (None, what went wrong, seconds to wait) when its outcome is unclear.

        Unclear: no reply (timeout, connection), a reply the client would retry (408, 409, 429, 5xx), or one that
        is not a batch. Any other error (400, 401, ...) says the server refused: it goes up as it is."""
        openai = self._openai
        wait = min(8.0, 0.5 * 2 ** attempt)
        try:
            batch = client.batches.create(input_file_id=job["file_id"], endpoint="/v1/chat/completions",
                                          completion_window=self.options.completion_window,
                                          metadata={"lima_eval_job": job["key"]})
        except (openai.APIConnectionError, openai.APIResponseValidationError, ValueError) as exc:
            return None, self._scrub(f"{type(exc).__name__}: {exc}"), wait  # ValueError: a reply that is not JSON
        except openai.APIStatusError as exc:
            if exc.status_code not in (408, 409, 429) and exc.status_code < 500:
                raise
            try:  # Retry-After (a 429's, or a 503's) says when the server can take the call again
                wait = max(wait, min(60.0, float(exc.response.headers.get("retry-after", ""))))
            except ValueError:
                pass
            return None, self._scrub(exc.message), wait
        if not isinstance(getattr(batch, "id", None), str):
            return None, "the reply holds no batch id", wait
        return batch, "", 0.0

    def _made_from(self, job: dict[str, Any]) -> list[Any]:
        """The batches created from the job's file, newest first."""
        out = []
        for batch in self.client().batches.list(limit=100):
            if batch.input_file_id == job["file_id"]:
                out.append(batch)
            if batch.created_at < job.get("created", 0) - 3600:
                break  # listed newest first: older batches cannot be this job's
        return out

    def _find(self, job: dict[str, Any]) -> Any:
        """The (first) batch created from the job's file, if a create call reached the server unseen."""
        made = self._made_from(job)
        return made[-1] if made else None

    def _cancel_twins(self, job: dict[str, Any]) -> None:
        """Cancel every other batch made from the job's file: so its lines run in one batch, even when a create
        call that timed out (and was followed by another) made its batch late."""
        for batch in self._made_from(job):
            if batch.id != job["batch_id"] and batch.status not in TERMINAL + ("cancelling",):
                try:
                    self.client().batches.cancel(batch.id)
                except self._openai.APIStatusError as exc:  # it ended meanwhile, or cannot be cancelled now
                    log.warning("openai-batch: could not cancel %s, made twice from the file of %s: %s", batch.id,
                                job["batch_id"], self._scrub(exc.message))
                else:
                    log.warning("openai-batch: %s was made late from the file of %s; cancelled it", batch.id,
                                job["batch_id"])

    def _wait(self, journal: Journal, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Poll every job until its batch ends (backoff from poll_interval to poll_max); download the results."""
        pending, delay, shown = list(jobs), self.options.poll_interval, 0
        while True:
            completed = 0
            for job in list(pending):
                if job.get("batch_id") is None:
                    batch = self._find(job)
                    if batch is None:
                        batch = self._create(journal, job)
                    else:
                        job.update(batch_id=batch.id)
                        journal.save(job)
                else:
                    if job.get("create_calls", 1) > 1:
                        self._cancel_twins(job)
                    try:
                        batch = self.client().batches.retrieve(job["batch_id"])
                    except self._openai.NotFoundError:
                        # The server forgot it (deleted, or another server at the same address): its lines are
                        # asked again, like a failed batch's; the journal says why.
                        job.update(status="lost", collected=True,
                                   error=f"the server at {self.where} no longer has batch {job['batch_id']}")
                        journal.save(job)
                        pending.remove(job)
                        continue
                if batch.status in TERMINAL:
                    self._collect(journal, job, batch)
                    pending.remove(job)
                else:
                    counts = batch.request_counts
                    completed += counts.completed if counts is not None else 0
            if self.on_progress is not None and completed > shown:
                self.on_progress(completed - shown)
                shown = completed
            if not pending:
                return jobs
            time.sleep(delay)
            delay = min(self.options.poll_max, delay * 1.5)

    def _collect(self, journal: Journal, job: dict[str, Any], batch: Any) -> None:
        """Download the batch's output and error files into the journal, then mark the job collected."""
        for what, fid in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
            if fid:
                journal.keep(job, what, self.client().files.content(fid).content)
        problems = [e.message for e in (batch.errors.data or [])] if batch.errors is not None else []
        job.update(status=batch.status, collected=True, error="; ".join(p for p in problems if p) or None)
        journal.save(job)
        log.info("openai-batch: %s ended %s", batch.id, batch.status)

    def _read(self, journal: Journal, job: dict[str, Any], todo: dict[str, Any], got: dict[str, Completion],
              why: dict[str, str], final: set[str]) -> None:
        """Take the wanted answers out of a collected job's files; note why the others are missing."""
        wanted = todo.keys() & set(job["custom_ids"])
        bid, status = job.get("batch_id"), job.get("status")
        for what in ("output", "errors"):
            path = journal.path(job, what)
            for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
                try:
                    row = load_json(line, path)
                except InputError:
                    continue  # an unreadable (or absurdly nested) line is a missing answer: submitted again
                cid = row.get("custom_id") if isinstance(row, dict) else None
                if cid not in wanted or cid in got:
                    continue
                response: dict[str, Any] = row["response"] if isinstance(row.get("response"), dict) else {}
                if response.get("status_code") == 200:
                    answer = parse_response(response.get("body"))
                    if answer.error is None:
                        got[cid] = answer
                    else:  # a malformed body is the server's failure: the line is asked again
                        why[cid] = f"batch {bid}: {answer.error}"
                        if is_completion(response.get("body")):
                            final.add(cid)  # but a completion without text (a refusal) was paid: not re-asked
                    continue
                error: dict[str, Any] = row["error"] if isinstance(row.get("error"), dict) else {}
                body = response.get("body")
                inner: dict[str, Any] = body["error"] if isinstance(body, dict) and isinstance(body.get("error"),
                                                                                              dict) else {}
                message = error.get("message") or inner.get("message") or "failed"
                code = f"HTTP {response['status_code']}: " if response.get("status_code") else ""
                why[cid] = f"batch {bid}: {code}{message}"
        for cid in wanted - got.keys():
            if cid not in why:
                why[cid] = f"batch {bid} ended {status}" + (f": {job['error']}" if job.get("error") else "")
            if status == "cancelled":
                final.add(cid)

    def sampling_record(self) -> dict[str, Any]:
        out = super().sampling_record()
        out["model"] = self.spec.model
        return out

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
