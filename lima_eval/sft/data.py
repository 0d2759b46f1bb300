"""Conversations for SFT: loading (LIMA / chat formats, JSONL or HF), and rendering to (ids, labels).

The rendering is LIMA's: each utterance is followed by the EOT token; the loss covers the assistant's
utterances (and their EOT, so the model learns to stop), never the user's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lima_eval.errors import InputError, LimaEvalError, MissingExtraError
from lima_eval.inputs import json_rows, shown
from lima_eval.recipe import EOT

IGNORE = -100
DEMO = Path(__file__).with_name("demo.jsonl")

# Utterances separated by EOT, as in LIMA; a system message is folded into the next user turn.
# (continue_final_message works as usual: transformers cuts the text after the final message's content.)
CHAT_TEMPLATE = (
    "{{ bos_token if bos_token else '' }}"
    "{%- set ns = namespace(sys='') -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{%- set ns.sys = m['content'] + '\\n\\n' -%}"
    "{%- else -%}"
    "{%- if m['role'] == 'user' -%}{{ ns.sys }}{%- set ns.sys = '' -%}{%- endif -%}"
    "{{ m['content'] }}" + EOT +
    "{%- endif -%}"
    "{%- endfor -%}"
)


def _utterances(row: Any, path: object, line: int) -> list[str]:
    """The alternating user/assistant utterances of one row, starting with the user, ending with the assistant."""
    if not isinstance(row, dict):
        raise InputError(path, "expected a JSON object", line=line)
    if "conversations" in row:
        turns = row["conversations"]
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise InputError(path, "must be a list of strings", line=line, field="conversations")
    elif "messages" in row:
        msgs = row["messages"]
        if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
            raise InputError(path, "must be a list of {role, content} objects", line=line, field="messages")
        system = [m.get("content", "") for m in msgs if m.get("role") == "system"]
        msgs = [m for m in msgs if m.get("role") != "system"]
        for i, m in enumerate(msgs):
            want = "user" if i % 2 == 0 else "assistant"
            if m.get("role") != want:
                raise InputError(path, f"message {i} has role {shown(m.get('role'))}; expected {shown(want)} "
                                       "(turns must alternate, starting with the user)", line=line, field="messages")
            if not isinstance(m.get("content"), str):
                raise InputError(path, f"message {i} has no text content", line=line, field="messages")
        turns = [m["content"] for m in msgs]
        if system and turns:
            turns[0] = "\n\n".join(system) + "\n\n" + turns[0]
    else:
        raise InputError(path, "no 'conversations' or 'messages' field", line=line)
    if len(turns) < 2:
        raise InputError(path, "needs at least a user turn and an assistant turn", line=line)
    if len(turns) % 2:
        raise InputError(path, "the last utterance must be the assistant's (even number of turns)", line=line)
    for i, t in enumerate(turns):
        if not t.strip():
            raise InputError(path, f"utterance {i} is empty", line=line)
    return turns


def load_conversations(source: str, limit: int | None = None) -> list[list[str]]:
    """Conversations from 'demo', 'GAIR/lima' (HF, train split) or a JSONL file; bad rows name their line."""
    if source == "demo":
        path = DEMO
    elif not Path(source).exists() and "/" in source and not source.endswith(".jsonl"):
        return _load_hf(source, limit)
    else:
        path = Path(source)
    out = []
    for line_no, row in json_rows(path):
        out.append(_utterances(row, path, line_no))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise InputError(path, "no conversations")
    return out


def _load_hf(name: str, limit: int | None) -> list[list[str]]:
    try:
        import datasets
    except ImportError as exc:
        raise MissingExtraError("datasets", extra="hub") from exc
    try:
        ds = datasets.load_dataset(name, split="train", token=os.environ.get("HF_TOKEN") or None)
    except Exception as exc:
        raise LimaEvalError(f"could not load Hugging Face dataset {name}: {type(exc).__name__}. It is gated: "
                            "accept its terms, set HF_TOKEN, or pass a local JSONL") from exc
    out = []
    for i, row in enumerate(ds):
        turns = _utterances(row, f"{name} (train)", i + 1)
        out.append(turns)
        if limit is not None and len(out) >= limit:
            break
    return out


def render(turns: list[str], tokenizer: Any, eot_id: int, max_len: int) -> tuple[list[int], list[int]]:
    """(input ids, labels) for one conversation; labels are IGNORE on the BOS and on every user utterance."""
    ids: list[int] = []
    labels: list[int] = []
    if tokenizer.bos_token_id is not None:
        ids.append(tokenizer.bos_token_id)
        labels.append(IGNORE)
    for i, text in enumerate(turns):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"] + [eot_id]
        ids += piece
        labels += piece if i % 2 == 1 else [IGNORE] * len(piece)
    return ids[:max_len], labels[:max_len]
