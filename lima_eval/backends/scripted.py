"""Replies by rule, with no model: tests, demos and dry runs exercise every stage without weights or a server.

`model` names the rule:
- `echo`: the last user message back (an answer that differs per prompt);
- `fixed:TEXT`: always TEXT (e.g. `fixed:Verdict: A`, a judge that always picks the answer shown first);
- `cycle:T1|T2|...`: one of the texts, chosen by a hash of the request (stable across runs).
Registered through the same entry point group as every other backend.
"""

from __future__ import annotations

from lima_eval.backends.base import Backend, Completion, LogprobRequest, Messages
from lima_eval.config import Endpoint
from lima_eval.errors import ConfigError
from lima_eval.records import content_id

RULES = ("echo", "fixed:TEXT", "cycle:T1|T2|...")


class ScriptedBackend(Backend):
    """A backend whose replies follow a rule named by `model` (see the module docstring)."""

    repetition_penalty_scope = "none"

    def __init__(self, spec: Endpoint, seed: int = 0):
        super().__init__(spec, seed)
        rule, _, arg = spec.model.partition(":")
        if rule not in ("echo", "fixed", "cycle") or (rule != "echo" and not arg):
            raise ConfigError(f"backend 'scripted': model '{spec.model}' is not a rule; use one of {', '.join(RULES)}")
        self.rule, self.texts = rule, arg.split("|") if rule == "cycle" else [arg]

    def reply(self, messages: Messages) -> str:
        if self.rule == "echo":
            return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        if self.rule == "fixed":
            return self.texts[0]
        return self.texts[int(content_id("scripted", self.seed, messages), 16) % len(self.texts)]

    def complete(self, requests: list[Messages], logprobs: LogprobRequest | None = None) -> list[Completion]:
        self.calls += len(requests)
        out = []
        for messages in requests:
            text = self.reply(messages)
            words = sum(len(m["content"].split()) for m in messages)
            out.append(Completion(text=text, finish_reason="stop",
                                  usage={"prompt_tokens": words, "completion_tokens": len(text.split())}))
        return out
