"""Kinds of judges. A kind owns what its judge is shown (the template's placeholders), what it is asked about
(the items a run's answers give), what a reply becomes (a Judgment or a Rating) and where those records live.

A judge.yaml names its kind (`kind: pairwise`); kinds come from the `lima_eval.judge_kinds` entry points, the
built-ins below included, so a plugin adds a kind the way it adds a backend or a verdict parser: a subclass of
one of these classes (or of JudgeKind) and an entry point.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from lima_eval.errors import UnknownNameError
from lima_eval.judging.items import PairItem, RatingItem, pair_items, rating_item, to_judgment, to_rating
from lima_eval.records import Generation, Judgment, Prompt, Rating
from lima_eval.registry import JUDGE_KINDS

if TYPE_CHECKING:
    from lima_eval.backends.base import Completion
    from lima_eval.config import JudgeSpec, RunConfig
    from lima_eval.judging.definitions import JudgeDefinition
    from lima_eval.store import RunStore

Item = PairItem | RatingItem
Answers = dict[tuple[str, str, int], Generation]  # (prompt id, model, turn) -> the answer on disk
# Pairwise options in terms of the order shown: the first answer, the second one, or neither.
PAIRWISE_OPTIONS = {"A": "first", "B": "second", "neither": "neither"}


class JudgeKind:
    """What every kind declares. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str] = ""
    placeholders: ClassVar[frozenset[str]] = frozenset()  # the template must use all of these
    # ... and may use these too: a prompt's reference answer (reference-guided judges); a judge whose template
    # uses one is asked only about prompts that have a reference (the rest are skipped, and counted).
    optional: ClassVar[frozenset[str]] = frozenset()
    record_type: ClassVar[type[Judgment | Rating]]
    needs_labels: ClassVar[bool] = False  # a scale of labels in judge.yaml (`labels:`)
    # What the kind supports: a judge card against people's pairwise labels (lima-eval judge-card), and the
    # ordering and adaptive rules of pairs (order: both-if-close, stop_when_decided).
    supports_cards: ClassVar[bool] = False
    orders_pairs: ClassVar[bool] = False

    @property
    def gives_ratings(self) -> bool:
        return self.record_type is Rating

    def default_options(self, labels: tuple[str, ...]) -> dict[str, str]:
        """The token that answers each option (logprob verdicts), when judge.yaml gives no `options:`."""
        return {label: label for label in labels}

    def plan(self, cfg: RunConfig, spec: JudgeSpec, definition: JudgeDefinition, ident: dict[str, Any],
             prompts: list[Prompt], answers: Answers) -> tuple[list[Item], int]:
        """The items to ask about and how many were skipped for a missing answer."""
        raise NotImplementedError

    def values(self, item: Any) -> dict[str, str]:
        """The placeholder values of one item."""
        raise NotImplementedError

    def to_record(self, item: Any, definition: JudgeDefinition, label: str, completion: Completion, prefix: str,
                  use_logprobs: bool, cached: bool) -> Judgment | Rating:
        raise NotImplementedError

    def on_disk(self, store: RunStore) -> dict[str, Any]:
        """This kind's records already in the run folder, by id."""
        return store.ratings() if self.gives_ratings else store.judgments()

    def append(self, store: RunStore, records: Iterable[Any]) -> int:
        return store.append_ratings(records) if self.gives_ratings else store.append_judgments(records)


class Pairwise(JudgeKind):
    """Two models' answers to one prompt, shown in a recorded order; the reply names the better one (or neither)."""

    name = "pairwise"
    supports_cards = orders_pairs = True
    placeholders = frozenset({"prompt", "answer_a", "answer_b"})
    optional = frozenset({"reference"})
    record_type = Judgment
    turns: ClassVar[int] = 1  # user turns each compared conversation has

    def default_options(self, labels: tuple[str, ...]) -> dict[str, str]:
        return dict(PAIRWISE_OPTIONS)

    def plan(self, cfg: RunConfig, spec: JudgeSpec, definition: JudgeDefinition, ident: dict[str, Any],
             prompts: list[Prompt], answers: Answers) -> tuple[list[Item], int]:
        from lima_eval.errors import ConfigError

        usable = [p for p in prompts if len(p.user_turns) >= self.turns]
        if prompts and not usable:
            raise ConfigError(f"judge '{definition.name}' compares {self.turns}-turn conversations; benchmark "
                              f"'{cfg.benchmark.name}' has none (try benchmark: mt-bench)")
        items: list[Item] = []
        skipped = 0
        if definition.needs_reference:
            skipped = sum(1 for p in usable if len(p.reference) < self.turns) * len(cfg.pairs())
            usable = [p for p in usable if len(p.reference) >= self.turns]
        for model, baseline in cfg.pairs():
            for p in usable:
                a = [answers.get((p.id, model, t)) for t in range(self.turns)]
                b = [answers.get((p.id, baseline, t)) for t in range(self.turns)]
                if any(g is None for g in a + b):
                    skipped += 1
                    continue
                items.extend(pair_items(definition, ident, spec.order, cfg.seed, p, tuple(a), tuple(b)))  # type: ignore[arg-type]
        return items, skipped

    def values(self, item: PairItem) -> dict[str, str]:
        one, two = item.shown()
        return {"prompt": item.prompt.text, "answer_a": one[-1].text, "answer_b": two[-1].text} | _references(item.prompt)

    def to_record(self, item: PairItem, definition: JudgeDefinition, label: str, completion: Completion,
                  prefix: str, use_logprobs: bool, cached: bool) -> Judgment:
        return to_judgment(item, definition, label, completion, prefix, use_logprobs, cached)


class PairwiseMultiturn(Pairwise):
    """Two models' two-turn conversations (MT-bench's pairwise judge); the reply names the better assistant."""

    name = "pairwise-multiturn"
    placeholders = frozenset({"question_1", "question_2", "answer_a_1", "answer_a_2", "answer_b_1", "answer_b_2"})
    optional = frozenset({"reference_1", "reference_2"})
    turns = 2

    def values(self, item: PairItem) -> dict[str, str]:
        one, two = item.shown()
        q = item.prompt.user_turns
        return {"question_1": q[0], "question_2": q[1], "answer_a_1": one[0].text, "answer_a_2": one[1].text,
                "answer_b_1": two[0].text, "answer_b_2": two[1].text} | _references(item.prompt)


def _references(prompt: Prompt) -> dict[str, str]:
    """A prompt's reference answers as placeholder values: reference (the first turn's), reference_1, ...."""
    out = {f"reference_{t + 1}": text for t, text in enumerate(prompt.reference)}
    return out | ({"reference": prompt.reference[0]} if prompt.reference else {})


class Rated(JudgeKind):
    """One answer on the judge's own scale (`labels:`, worst first), e.g. LIMA's fail / pass / excellent."""

    name = "rating"
    placeholders = frozenset({"prompt", "answer"})
    optional = frozenset({"reference", "rubric"})
    record_type = Rating
    needs_labels = True
    turn: ClassVar[int] = 0  # the user turn whose answer is rated

    def plan(self, cfg: RunConfig, spec: JudgeSpec, definition: JudgeDefinition, ident: dict[str, Any],
             prompts: list[Prompt], answers: Answers) -> tuple[list[Item], int]:
        from lima_eval.errors import ConfigError

        t = self.turn
        usable = [p for p in prompts if len(p.user_turns) > t]
        if prompts and not usable:
            raise ConfigError(f"judge '{definition.name}' rates answers to turn {t + 1}; benchmark "
                              f"'{cfg.benchmark.name}' has no prompt with {t + 1} turns (try benchmark: mt-bench)")
        items: list[Item] = []
        skipped = 0
        if definition.needs_reference:
            skipped = sum(1 for p in usable if len(p.reference) <= t) * len(cfg.models)
            usable = [p for p in usable if len(p.reference) > t]
        for field_name in ("rubric", "checklist"):
            if definition.uses(field_name):  # asked only about prompts that have one
                skipped += sum(1 for p in usable if not getattr(p, field_name)) * len(cfg.models)
                usable = [p for p in usable if getattr(p, field_name)]
        for m in cfg.models:
            for p in usable:
                gens = [answers.get((p.id, m.name, k)) for k in range(t + 1)]
                if any(g is None for g in gens):
                    skipped += 1
                    continue
                items.append(rating_item(definition, ident, p, gens[-1], tuple(gens[:-1])))  # type: ignore[arg-type]
        return items, skipped

    def values(self, item: RatingItem) -> dict[str, str]:
        return {"prompt": item.prompt.text, "answer": item.gen.text, "rubric": item.prompt.rubric} | _references(
            item.prompt)

    def to_record(self, item: RatingItem, definition: JudgeDefinition, label: str, completion: Completion,
                  prefix: str, use_logprobs: bool, cached: bool) -> Rating:
        return to_rating(item, definition, label, completion, prefix, use_logprobs, cached)


class RatedMultiturn(Rated):
    """The answer to the second question of a two-turn conversation, on the judge's scale, with the first turn
    as context (MT-bench's single-answer grading of turn 2)."""

    name = "rating-multiturn"
    placeholders = frozenset({"question_1", "answer_1", "question_2", "answer_2"})
    optional = frozenset({"reference_1", "reference_2"})
    turn = 1

    def values(self, item: RatingItem) -> dict[str, str]:
        q = item.prompt.user_turns
        return {"question_1": q[0], "answer_1": item.context[0].text, "question_2": q[1],
                "answer_2": item.gen.text} | _references(item.prompt)


class Checklist(Rated):
    """One answer checked against its prompt's checklist (WildBench style): the judge says yes or no for each
    criterion; the record keeps each verdict, and its score is the share met."""

    name = "checklist"
    placeholders = frozenset({"prompt", "answer", "checklist"})
    optional = frozenset()
    needs_labels = False

    def values(self, item: RatingItem) -> dict[str, str]:
        return {"prompt": item.prompt.text, "answer": item.gen.text,
                "checklist": "\n".join(f"{i}. {c}" for i, c in enumerate(item.prompt.checklist, 1))}

    def to_record(self, item: RatingItem, definition: JudgeDefinition, label: str, completion: Completion,
                  prefix: str, use_logprobs: bool, cached: bool) -> Rating:
        from lima_eval.judging.parsers import parse_checklist

        raw = "" if completion.error else prefix + completion.text
        base: dict[str, Any] = {"id": item.id, "prompt_id": item.prompt.id, "model": item.gen.model, "judge": label,
                                "scale": definition.scale or "checklist", "generation": item.gen.id, "raw": raw,
                                "usage": completion.usage, "cached": cached, "turn": item.gen.turn}
        if completion.error:
            return Rating(label=None, error=completion.error, error_kind="call", **base)
        marks, problem = parse_checklist(raw, len(item.prompt.checklist))
        if marks is None:
            return Rating(label=None, error=problem, error_kind="parse", **base)
        met = sum(marks)
        return Rating(label=f"{met}/{len(marks)}", score=round(met / len(marks), 6),
                      criteria=dict(zip(item.prompt.checklist, marks)), **base)


@functools.cache
def get_kind(name: str) -> JudgeKind:
    """The kind named in a judge.yaml (an instance of its registered class)."""
    cls = JUDGE_KINDS.load(name)
    if not (isinstance(cls, type) and issubclass(cls, JudgeKind)):
        raise UnknownNameError(f"judge kind '{name}' ({JUDGE_KINDS.target(name)}) is not a JudgeKind subclass")
    return cls()


def all_placeholders() -> frozenset[str]:
    """Every placeholder some kind fills (a template that uses another kind's is named as wrong)."""
    out: frozenset[str] = frozenset()
    for name in JUDGE_KINDS.names():
        try:
            out |= get_kind(name).placeholders | get_kind(name).optional
        except (ImportError, UnknownNameError):
            continue  # a broken plugin kind is reported when a judge names it
    return out
