"""Messages -> prompt text, shared by the local backends (hf, vllm) so they see identical tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lima_eval.backends.base import PLAIN_STOPS, Messages, plain_prompt
from lima_eval.config import Endpoint
from lima_eval.errors import BackendError


class PromptRenderer:
    """Applies the chat template (or the plain format for base models), the system prompt and a reply prefix."""

    def __init__(self, tokenizer: Any, spec: Endpoint):
        self.tokenizer = tokenizer
        self.spec = spec
        fmt = spec.prompt_format
        if fmt == "auto":
            fmt = "chat" if tokenizer.chat_template else "plain"
        if fmt == "chat" and not tokenizer.chat_template:
            raise BackendError(f"model '{spec.model}' has no chat template; use prompt_format: plain")
        if fmt not in ("chat", "plain"):
            raise BackendError(f"prompt_format '{spec.prompt_format}' is not one of auto, chat, plain")
        self.format = fmt

    def text(self, messages: Messages) -> str:
        msgs = list(messages)
        if self.spec.system_prompt and not any(m["role"] == "system" for m in msgs):
            msgs = [{"role": "system", "content": self.spec.system_prompt}] + msgs
        if self.format == "plain":
            return plain_prompt(msgs)
        if msgs[-1]["role"] == "assistant":  # a reply prefix to continue
            return str(self.tokenizer.apply_chat_template(msgs, tokenize=False, continue_final_message=True))
        return str(self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))

    def ids(self, messages: Messages) -> list[int]:
        # Chat templates already contain the BOS token where the model wants one.
        return list(self.tokenizer(self.text(messages), add_special_tokens=self.format == "plain")["input_ids"])

    def stops(self) -> list[str]:
        return list(self.spec.sampling.stop) + (PLAIN_STOPS if self.format == "plain" else [])


def end_token_ids(model_dir: str, tokenizer: Any) -> list[int]:
    """Every token that ends a reply: generation_config's eos list (EOT first after SFT) and the tokenizer's eos."""
    ids: list[int] = []
    path = Path(model_dir) / "generation_config.json"
    if path.exists():
        eos = json.loads(path.read_text()).get("eos_token_id")
        ids += eos if isinstance(eos, list) else ([eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return list(dict.fromkeys(int(i) for i in ids))
