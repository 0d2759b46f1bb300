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
        self.bos_id = bos_to_add(tokenizer)

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
        """Token ids with the model's BOS exactly once where it expects one: a chat template that writes BOS
        already has it (not doubled); the plain format gets it prepended (a base model without its BOS
        degenerates: 'Assistant, Assistant, ...')."""
        ids = list(self.tokenizer(self.text(messages), add_special_tokens=False)["input_ids"])
        if self.bos_id is not None and (not ids or ids[0] != self.bos_id):
            ids.insert(0, self.bos_id)
        return ids

    def stops(self) -> list[str]:
        return list(self.spec.sampling.stop) + (PLAIN_STOPS if self.format == "plain" else [])


def bos_to_add(tokenizer: Any) -> int | None:
    """The BOS id if the model expects every sequence to start with it, else None.

    Read from the tokenizer itself: its `add_bos_token` setting (tokenizer_config.json; the embedded models
    carry the GGUF's `tokenizer.ggml.add_bos_token` there), or its post-processor prepending BOS when asked to
    add special tokens (Llama 3 style tokenizers).
    """
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    if getattr(tokenizer, "add_bos_token", False) is True:
        return int(bos)
    try:
        probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    except (TypeError, ValueError, KeyError):  # a tokenizer that cannot probe: trust its settings above
        return None
    return int(bos) if probe and probe[0] == bos else None


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
