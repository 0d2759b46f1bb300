"""The one interface every backend implements, and the plain records it returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from lima_eval.config import Endpoint, Sampling
from lima_eval.registry import BACKENDS

Messages = list[dict[str, str]]

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
    """Turns chat messages into completions. Subclasses own their engine and release it in close()."""

    #: How HF and vLLM apply repetition_penalty: to every token already in the sequence, prompt included.
    repetition_penalty_scope = "prompt+generated"
    #: Whether a trailing assistant message is continued (a reply prefix such as "Verdict:").
    supports_prefill = False
    #: Whether generate() can return token log-probabilities (LogprobRequest).
    supports_logprobs = False
    #: Whether generate() takes on_result(i, completion), called as each request finishes (API backends),
    #: so callers can save results while the rest are in flight.
    streams_results = False

    def __init__(self, spec: Endpoint, seed: int = 0):
        self.spec = spec
        self.seed = seed
        self.calls = 0  # requests sent to the model: what "zero new calls on a rerun" counts
        # Set by the caller to see progress inside one long generate() call: called with a fraction of a
        # request as work is done (a local backend reports each decoding step), so a bar moves during a batch.
        self.on_progress: Callable[[float], None] | None = None

    @property
    def chunk_size(self) -> int:
        """How many requests the pipeline hands over at once (and saves after)."""
        return max(1, self.spec.batch_size)

    def generate(self, requests: list[Messages], logprobs: LogprobRequest | None = None) -> list[Completion]:
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


def open_backend(spec: Endpoint, seed: int = 0) -> Backend:
    if spec.backend == "imported":
        from lima_eval.errors import ConfigError

        raise ConfigError("backend 'imported' only holds answers from `lima-eval import-answers`; it cannot generate")
    cls = BACKENDS.load(spec.backend)
    return cls(spec, seed=seed)


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


__all__ = ["Backend", "Completion", "LogprobRequest", "Messages", "Sampling", "open_backend", "plain_prompt", "trim_at_stops"]
