"""Model families, for self-preference warnings: a judge tends to favour answers of its own family (docs/families.md).

A model's or judge's `family:` in the config wins; left out, it is guessed from the model id (its last path part,
then its organisation, then, for a model, its name in the run), by the prefixes below. Unknown: "" (no warning).
Pure text matching, below the config: `config.family_of` applies it to a model or judge section.
"""

from __future__ import annotations

import re

# family -> patterns matched at the start of a lower-cased id part. More specific lines come first (EleutherAI's
# gpt-j before OpenAI's gpt). Fine-tunes named after their base's line (vicuna, zephyr...) count as that line.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("eleuther", r"gpt-?j\b|gpt-?neo|pythia"),
    ("gpt", r"gpt(?!4all)|chatgpt|o[134](?:$|[-_ ])|text[-_]davinci|davinci"),
    ("claude", r"claude"),
    ("gemini", r"gemini|palm|bard|(?:text|chat)-bison"),
    ("gemma", r"gemma"),
    ("llama", r"llama|meta-llama|codellama|vicuna|alpaca|tulu|guanaco|koala|wizardlm|gpt4all"),
    ("mistral", r"mistral|mixtral|codestral|ministral|zephyr"),
    ("qwen", r"qwen|qwq"),
    ("deepseek", r"deepseek"),
    ("phi", r"phi-?\d"),
    ("smollm", r"smollm"),
    ("command", r"command|c4ai|aya"),
    ("falcon", r"falcon"),
    ("yi", r"yi-"),
    ("olmo", r"olmo"),
    ("grok", r"grok"),
    ("glm", r"chatglm|glm-"),
)
_COMPILED = [(name, re.compile(f"(?:{pattern})")) for name, pattern in FAMILIES]


def guess(model_id: str) -> str:
    """The family a model id names ('' when none is known): 'gpt-4o' -> gpt, 'meta-llama/Llama-3-8B' -> llama."""
    text = model_id.strip().lower()
    for prefix in ("embedded:", "imported:"):
        text = text.removeprefix(prefix)
    parts = [p for p in re.split(r"[\\/]", text) if p]
    for part in reversed(parts):  # the model's own name first, then its organisation and folders
        for name, pattern in _COMPILED:
            if pattern.match(part):
                return name
    return ""
