"""The one interface every backend implements, and the plain records it returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from lima_eval.config import Endpoint, Sampling, backend_options
from lima_eval.errors import ConfigError
from lima_eval.registry import BACKENDS

Messages = list[dict[str, str]]
OnResult = Callable[[int, "Completion"], None]

# Backends, built-in and third-party alike, come from one source: the `lima_eval.backends` entry points
# (pyproject.toml). lima-eval runs from an installed package (`pip install -e .` for a source tree).


@dataclass
class Completion:
    """One answer from a backend, or the error that stopped it."""

    text: str = ""
    error: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    # With a LogprobRequest: per generated token, its text and the log-probabilities of the top alternatives.
    logprobs: list[tuple[str, dict[str, float]]] | None = None


@dataclass(frozen=True)
class LogprobRequest:
    """Ask for token log-probabilities: `top` alternatives per position, plus `candidates` (strings whose first
    token's log-probability backends that can score any token always include, so a verdict is never missed)."""

    top: int = 20
    candidates: tuple[str, ...] = ()


class Backend:
    """Turns chat messages into completions. Subclasses own their engine and release it in close().

    A backend's own settings are its `Options` dataclass (None: it has none). Users write them flat in the
    model's or judge's config section; `self.options` holds them checked and typed. Fields made with
    `config.identity_option` change the answers and go into generation ids. An Options class may define
    `check(where)` for rules beyond one key's type, raising a ConfigError that names `<where>.<key>`.
    """

    Options: type | None = None

    #: How HF and vLLM apply repetition_penalty: to every token already in the sequence, prompt included.
    repetition_penalty_scope = "prompt+generated"
    #: Whether a trailing assistant message is continued (a reply prefix such as "Verdict:").
    supports_prefill = False
    #: Whether generate() can return token log-probabilities (LogprobRequest).
    supports_logprobs = False
    #: Whether generate() calls on_result as each request finishes (API backends), so callers can save results
    #: while the rest are in flight; other backends call it for every request once the call is done.
    streams_results = False
    #: How many requests the pipeline hands over at once (and saves after), unless a backend says otherwise.
    default_chunk = 8
    #: Whether a stage hands over all its requests in one call (batch APIs: one batch, not one per block).
    whole_stage = False
    #: The share of the price table's synchronous price this backend pays (the Batch API's discount: 0.5).
    price_factor = 1.0

    @classmethod
    def preflight(cls, spec: Endpoint) -> None:
        """Checks that need no engine (an API key's variable is set...), run before a run writes or pays for
        anything; raise a LimaEvalError naming what is missing (a MissingKeyError for an unset API key, last: a
        dry run goes on without the key)."""

    @classmethod
    def api_key_env(cls, spec: Endpoint) -> str | None:
        """The environment variable whose API key a real run of this endpoint needs (None: it needs none)."""
        return None

    def __init__(self, spec: Endpoint, seed: int = 0):
        self.spec = spec
        self.seed = seed
        self.options: Any = backend_options(spec, spec.backend)
        self.calls = 0  # requests sent to the model: what "zero new calls on a rerun" counts
        # The run folder, for backends that keep state there (the batch journal); None outside a run.
        self.work_dir: Path | None = None
        # Set by the caller to see progress inside one long generate() call: called with a fraction of a
        # request as work is done (a local backend reports each decoding step), so a bar moves during a batch.
        self.on_progress: Callable[[float], None] | None = None

    @property
    def chunk_size(self) -> int:
        """How many requests the pipeline hands over at once (and saves after)."""
        return self.default_chunk

    def generate(self, requests: list[Messages], logprobs: LogprobRequest | None = None,
                 on_result: OnResult | None = None) -> list[Completion]:
        """One completion per request, in order. on_result(i, completion), when given, is called once per
        request: as each finishes (streams_results) or after the whole call."""
        out = self.complete(requests, logprobs)
        if on_result is not None:
            for i, c in enumerate(out):
                on_result(i, c)
        return out

    def complete(self, requests: list[Messages], logprobs: LogprobRequest | None = None) -> list[Completion]:
        """What a backend implements: the completions of a list of requests."""
        raise NotImplementedError

    def sampling_record(self) -> dict[str, Any]:
        """The exact decoding settings this backend used, stored with each generation."""
        out = dataclasses.asdict(self.spec.sampling)
        out["seed"] = self.seed
        out["repetition_penalty_scope"] = self.repetition_penalty_scope
        return out

    def close(self) -> None:
        """Release the engine (memory, processes, connections)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_backend(spec: Endpoint, seed: int = 0, work_dir: Path | None = None) -> Backend:
    cls = BACKENDS.load(spec.backend)
    backend = cls(spec, seed=seed)
    backend.work_dir = work_dir
    return backend


class ImportedBackend(Backend):
    """The backend of models whose answers came from `lima-eval import-answers`: it holds them, never generates."""

    def __init__(self, spec: Endpoint, seed: int = 0):
        raise ConfigError("backend 'imported' only holds answers from `lima-eval import-answers`; it cannot generate")


def describe_backends() -> list[str]:
    """One line per backend: name, its "module:Class", and its options as key=default."""
    lines = []
    for name in BACKENDS.names():
        cls = BACKENDS.load(name)
        opts = getattr(cls, "Options", None)
        listed = ", ".join(f"{f.name}={getattr(opts(), f.name)!r}" for f in dataclasses.fields(opts)) if opts else ""
        lines.append(f"{name}\t{BACKENDS.target(name)}\t{listed or '(no options of its own)'}")
    return lines


def plain_prompt(messages: Messages) -> str:
    """A template-free rendering for base models: 'User: ...' / 'Assistant: ...' turns, ending on 'Assistant:'.

    A trailing assistant message is left open, so the model continues it.
    """
    parts = []
    for m in messages:
        role = {"system": "", "user": "User: ", "assistant": "Assistant: "}.get(m["role"], f"{m['role']}: ")
        parts.append(f"{role}{m['content'].strip()}")
    if messages and messages[-1]["role"] == "assistant":
        return "\n\n".join(parts)
    return "\n\n".join(parts) + "\n\nAssistant:"


PLAIN_STOPS = ["\nUser:", "\n\nUser:"]


def trim_at_stops(text: str, stops: list[str]) -> tuple[str, bool]:
    """Cut text at the earliest stop string; report whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


__all__ = ["Backend", "Completion", "LogprobRequest", "Messages", "OnResult", "Sampling", "open_backend",
           "plain_prompt", "trim_at_stops"]
