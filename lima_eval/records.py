"""The records that flow through a run: Prompt -> Generation -> Judgment / Rating. Frozen, with content-hash ids."""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import itertools
import json
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["a", "b", "tie"]
HUMAN = "human"  # the judge of every human label (annotators are told apart by `annotator`)
VERDICTS: tuple[str, ...] = ("a", "b", "tie")


# json.dumps with these arguments builds a new encoder on every call; one configured encoder gives the same
# bytes (it holds only its settings) without that cost, on paths that hash or write a record per request.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def content_id(*parts: Any, length: int = 16) -> str:
    """A short stable hash of the canonical JSON of `parts`."""
    return hashlib.sha256(_CANONICAL.encode(parts).encode("utf-8")).hexdigest()[:length]


@dataclass(frozen=True)
class Prompt:
    """One evaluation prompt with its id and category."""

    id: str
    text: str  # the first (or only) user turn
    category: str = ""
    tags: tuple[str, ...] = ()
    turns: tuple[str, ...] = ()  # every user turn of a multi-turn prompt (MT-bench); empty for single-turn
    reference: tuple[str, ...] = ()  # a reference answer per user turn, for reference-guided judges (MT-bench)
    checklist: tuple[str, ...] = ()  # yes/no criteria a good answer meets (checklist judges, WildBench style)
    rubric: str = ""  # what each score means for this prompt (rubric judges, Prometheus style)

    @property
    def user_turns(self) -> tuple[str, ...]:
        return self.turns or (self.text,)

    @property
    def key(self) -> str:
        return content_id("prompt", self.id, self.text) if not self.turns else content_id("prompt", self.id, self.turns)


@dataclass(frozen=True)
class Generation:
    """One model's answer to one prompt (or the error that replaced it)."""

    id: str
    prompt_id: str
    model: str
    text: str
    error: str | None = None
    backend: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    turn: int = 0  # which user turn this answers (0-based); later turns saw the model's own earlier answers

    @staticmethod
    def make_id(prompt: Prompt, model: str, model_spec: dict[str, Any], turn: int = 0) -> str:
        if turn == 0:
            return content_id("generation", prompt.key, model, model_spec)
        return content_id("generation", prompt.key, model, model_spec, turn)


@dataclass(frozen=True)
class Judgment:
    """A pairwise verdict between model_a and model_b on one prompt, by one judge (model or human).

    `verdict` is always in terms of model_a / model_b, whatever order the judge saw them in;
    `shown_first` records which of the two the judge saw as the first answer.
    """

    id: str
    prompt_id: str
    model_a: str
    model_b: str
    judge: str
    verdict: Verdict | None
    shown_first: Literal["a", "b"] | None = None
    generation_a: str | None = None
    generation_b: str | None = None
    raw: str = ""
    error: str | None = None
    error_kind: str | None = None  # "call": the request failed (retried on a rerun); "parse": unreadable reply
    annotator: str | None = None
    comment: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    # Logprob verdicts: the judge's probabilities for "a", "b" and "tie" (in model_a / model_b terms).
    probs: dict[str, float] | None = None
    # An imported label's own value, kept as it was (AlpacaEval's preference in [1, 2], continuous for
    # weighted annotators; 1 = model_a wins, 2 = model_b wins).
    preference: float | None = None
    turn: int = 0  # the user turn judged (mt-bench-pair judges turn 1, the second, in context)
    cached: bool = False  # the judge's reply came from the persistent cache (no new request)
    votes: dict[str, str | None] | None = None  # a jury's verdict: each juror's (None: unreadable)

    @property
    def score_b(self) -> float | None:
        """model_b's share of the win in [0, 1]: 1 win, 0.5 tie, 0 loss; soft where probabilities exist."""
        if self.verdict is None:
            return None
        if self.preference is not None and 1.0 <= self.preference <= 2.0:
            return self.preference - 1.0
        if self.probs:
            return self.probs.get("b", 0.0) + 0.5 * self.probs.get("tie", 0.0)
        return {"a": 0.0, "tie": 0.5, "b": 1.0}[self.verdict]

    @property
    def winner(self) -> str | None:
        """The winning model's name, "tie", or None without a verdict."""
        if self.verdict is None or self.verdict == "tie":
            return self.verdict
        return self.model_a if self.verdict == "a" else self.model_b

    def outcome(self, model: str) -> int | None:
        """The verdict from `model`'s side: +1 win, 0 tie, -1 loss; None without a verdict."""
        w = self.winner
        return None if w is None else 0 if w == "tie" else (1 if w == model else -1)

    def share(self, model: str) -> float | None:
        """`model`'s share of the win in [0, 1] (score_b seen from `model`'s side)."""
        sb = self.score_b
        return None if sb is None else (sb if model == self.model_b else 1.0 - sb)


@dataclass(frozen=True)
class Rating:
    """An absolute judgment of one answer: a label on the judge's scale (fail / pass / excellent, or 1-6)."""

    id: str
    prompt_id: str
    model: str
    judge: str
    label: str | None  # None when the judge gave no readable label (see error)
    scale: str = ""  # "absolute" (fail/pass/excellent) or "likert" (1-6)
    score: float | None = None  # the label as a number; with logprobs, the expected value over the scale
    generation: str | None = None
    raw: str = ""
    error: str | None = None
    error_kind: str | None = None
    annotator: str | None = None
    comment: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    probs: dict[str, float] | None = None
    cached: bool = False
    turn: int = 0  # the user turn whose answer is rated (MT-bench's single grading rates both)
    criteria: dict[str, bool] | None = None  # a checklist judge's verdict on each criterion (its text -> met)


# Records whose __init__ does nothing but set fields (no __post_init__), so from_dict may fill them directly.
_PLAIN = frozenset({Judgment, Rating, Generation})


def to_dict(record: Any) -> dict[str, Any]:
    """A record as a plain dict. Shallow: record fields hold only JSON values (str, numbers, lists, dicts)."""
    return {name: getattr(record, name) for name in _field_names(record.__class__)}


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names in declaration order (dataclasses.fields() rebuilds the tuple on each call)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


@functools.cache
def _layout(cls: type) -> tuple[frozenset[str], frozenset[str], dict[str, Any], tuple[tuple[str, Any], ...]]:
    """A record class's field names, required names, plain defaults and default factories (read once)."""
    fields = dataclasses.fields(cls)
    required = frozenset(f.name for f in fields
                         if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    factories = tuple((f.name, f.default_factory) for f in fields if f.default_factory is not dataclasses.MISSING)
    return frozenset(f.name for f in fields), required, defaults, factories


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """A record from its stored dict; keys the class does not know (written by a newer version) are ignored."""
    names, required, defaults, factories = _layout(cls)
    kwargs = {k: v for k, v in data.items() if k in names}
    for key in ("tags", "turns", "reference", "checklist"):
        if key in kwargs and isinstance(kwargs[key], list):
            kwargs[key] = tuple(kwargs[key])
    if cls not in _PLAIN or not required <= kwargs.keys():
        return cls(**kwargs)  # the class's own __init__ (and its error for a missing field)
    # Reading a run's records is the hot path of a large report: fill the instance directly (the frozen
    # dataclass __init__ sets every field through object.__setattr__, which costs more than the JSON parse).
    values = defaults | kwargs
    for name, factory in factories:
        if name not in values:
            values[name] = factory()
    obj: Any = object.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    return obj


def from_dicts(cls: type, data: Iterable[dict[str, Any]]) -> list[Any]:
    """Records from their stored dicts, as from_dict one by one. When every dict has exactly the class's fields
    (every record this version wrote), each becomes its record's own attribute dict, uncopied, and the records are
    made by C-level maps: a million judgments are read in a fraction of the time a Python step per record takes.
    The dicts must not be used after."""
    data = data if isinstance(data, list) else list(data)
    if cls not in _PLAIN:
        return [from_dict(cls, d) for d in data]
    names = _layout(cls)[0]
    if not all(map(operator.eq, map(dict.keys, data), itertools.repeat(names))):
        return [from_dict(cls, d) for d in data]
    out: list[Any] = list(map(object.__new__, itertools.repeat(cls, len(data))))
    collections.deque(map(object.__setattr__, out, itertools.repeat("__dict__"), data), maxlen=0)
    return out
