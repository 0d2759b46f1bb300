"""Contamination guard: benchmark prompts that appear in the training data (docs/contamination.md).

Texts are normalised (lower case, every run of characters other than letters and digits is one space) and split
into words. A prompt is contaminated when one of its n-grams (13 words by default, as GPT-3 and lm-eval's
decontamination use) appears in the training data; a prompt shorter than n words is contaminated when all of it
appears there as a run of words. The training data is the run's SFT data, plus any files under
`contamination.data` (JSON / JSONL: every string in every row is training text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima_eval.inputs import json_rows
from lima_eval.records import Prompt
from lima_eval.sft.data import load_conversations

_SPLIT = re.compile(r"[^0-9a-z]+")


def words(text: str) -> list[str]:
    return [w for w in _SPLIT.split(text.lower()) if w]


def _grams(tokens: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


@dataclass(frozen=True)
class Hit:
    prompt_id: str
    matched: str  # the first matching run of words
    grams: int  # how many of the prompt's n-grams were found (1 for a short prompt found whole)


def find(train_texts: Iterable[str], prompts: Sequence[Prompt], n: int = 13) -> list[Hit]:
    """The contaminated prompts (every user turn counts), in prompt order."""
    table: set[tuple[str, ...]] = set()
    corpus: list[str] = []
    for text in train_texts:
        toks = words(text)
        table.update(_grams(toks, n))
        corpus.append(" " + " ".join(toks) + " ")
    joined = "\n".join(corpus)
    hits = []
    for p in prompts:
        found, first = 0, ""
        for turn in p.user_turns:
            toks = words(turn)
            if len(toks) >= n:
                for g in _grams(toks, n):
                    if g in table:
                        found += 1
                        first = first or " ".join(g)
            elif toks and f" {' '.join(toks)} " in joined:
                found += 1
                first = first or " ".join(toks)
        if found:
            hits.append(Hit(p.id, first, found))
    return hits


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def training_texts(source: str) -> list[str]:
    """Training text of an SFT data source ('demo', a hub name or a file) or of any JSON / JSONL file."""
    path = Path(source)
    if source == "demo" or (not path.exists() and "/" in source and not source.endswith((".json", ".jsonl"))):
        return [t for conv in load_conversations(source) for t in conv]
    return [s for _, row in json_rows(path) for s in _strings(row)]


def sources(cfg: Any) -> list[str]:
    """The training data a run's prompts are checked against: its SFT data and `contamination.data`."""
    out = list(cfg.contamination.data)
    if cfg.sft is not None and cfg.sft.data not in out:
        out.insert(0, cfg.sft.data)
    return out


def check_run(cfg: Any, prompts: Sequence[Prompt]) -> dict[str, Any] | None:
    """The run's contamination (None when it has no training data to check against)."""
    srcs = sources(cfg)
    if not srcs:
        return None
    texts = [t for s in srcs for t in training_texts(s)]
    hits = find(texts, prompts, cfg.contamination.ngram)
    return {"ngram": cfg.contamination.ngram, "sources": srcs, "training_texts": len(texts), "prompts": len(prompts),
            "contaminated": len(hits), "share": round(len(hits) / len(prompts), 6) if prompts else 0.0,
            "hits": [{"prompt_id": h.prompt_id, "matched": h.matched[:200], "grams": h.grams} for h in hits]}
