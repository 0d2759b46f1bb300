"""Kinds of judges. A kind owns what its judge is shown (the template's placeholders), what it is asked about
(the items a run's answers give), what a reply becomes (a Judgment or a Rating) and where those records live.

A judge.yaml names its kind (`kind: pairwise`); kinds come from the `lima_eval.judge_kinds` entry points, the
built-ins below included, so a plugin adds a kind the way it adds a backend or a verdict parser: a subclass of
one of these classes (or of JudgeKind) and an entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from lima_eval.errors import ConfigError
from lima_eval.judging.definitions import Answers, JudgeDefinition, JudgeKind, all_placeholders, get_kind
from lima_eval.judging.items import (
    PairItem,
    RatingItem,
    pair_items,
    rating_item,
    shown_first,
    to_judgment,
    to_rating,
)
from lima_eval.judging.parsers import parse_checklist
from lima_eval.records import Judgment, Prompt, Rating

if TYPE_CHECKING:
    from lima_eval.backends.base import Completion
    from lima_eval.config import JudgeSpec, RunConfig

# JudgeKind, the interface every kind implements, and the lookup by name live in definitions.py beside the
# judge.yaml that names a kind; they are re-exported here, where plugins subclass the built-in kinds.
__all__ = ["PAIRWISE_OPTIONS", "Answers", "Checklist", "Item", "JudgeKind", "Pairwise", "PairwiseMultiturn",
           "Rated", "RatedMultiturn", "all_placeholders", "get_kind"]

Item = PairItem | RatingItem
# Pairwise options in terms of the order shown: the first answer, the second one, or neither.
PAIRWISE_OPTIONS = {"A": "first", "B": "second", "neither": "neither"}


class Pairwise(JudgeKind):
    """Two models' answers to one prompt, shown in a recorded order; the reply names the better one (or neither)."""

    name = "pairwise"
    supports_cards = orders_pairs = True
    placeholders = frozenset({"prompt", "answer_a", "answer_b"})
    optional = frozenset({"reference"})
    record_type = Judgment

    def first_orders(self, items: list[PairItem], seed: int) -> tuple[list[PairItem], dict[str, PairItem]]:
        def key(i: PairItem, first: str) -> tuple[str, tuple[str, ...], tuple[str, ...], str]:
            return i.prompt.id, tuple(g.id for g in i.a), tuple(g.id for g in i.b), first

        by_key = {key(i, i.first): i for i in items}
        firsts = [i for i in items if i.first == shown_first(seed, i.prompt.id, i.gen_a.model, i.gen_b.model)]
        other = {i.id: by_key[key(i, "b" if i.first == "a" else "a")] for i in firsts
                 if key(i, "b" if i.first == "a" else "a") in by_key}
        return firsts, other

    def pair_of(self, item: PairItem) -> tuple[str, str]:
        return item.gen_a.model, item.gen_b.model
    turns: ClassVar[int] = 1  # user turns each compared conversation has

    def default_options(self, labels: tuple[str, ...]) -> dict[str, str]:
        return dict(PAIRWISE_OPTIONS)

    def plan(self, cfg: RunConfig, spec: JudgeSpec, definition: JudgeDefinition, ident: dict[str, Any],
             prompts: list[Prompt], answers: Answers) -> tuple[list[Item], int]:
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
        return ({"prompt": item.prompt.text, "answer_a": one[-1].text, "answer_b": two[-1].text}
                | _references(item.prompt))

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

    name, scale = "checklist", "checklist"
    placeholders = frozenset({"prompt", "answer", "checklist"})
    optional = frozenset()
    needs_labels = False

    def values(self, item: RatingItem) -> dict[str, str]:
        return {"prompt": item.prompt.text, "answer": item.gen.text,
                "checklist": "\n".join(f"{i}. {c}" for i, c in enumerate(item.prompt.checklist, 1))}

    def to_record(self, item: RatingItem, definition: JudgeDefinition, label: str, completion: Completion,
                  prefix: str, use_logprobs: bool, cached: bool) -> Rating:
        raw = "" if completion.error else prefix + completion.text
        base: dict[str, Any] = {"id": item.id, "prompt_id": item.prompt.id, "model": item.gen.model, "judge": label,
                                "scale": definition.scale or self.scale, "generation": item.gen.id, "raw": raw,
                                "usage": completion.usage, "cached": cached, "turn": item.gen.turn}
        if completion.error:
            return Rating(label=None, error=completion.error, error_kind="call", **base)
        marks, problem = parse_checklist(raw, len(item.prompt.checklist))
        if marks is None:
            return Rating(label=None, error=problem, error_kind="parse", **base)
        met = sum(marks)
        return Rating(label=f"{met}/{len(marks)}", score=round(met / len(marks), 6),
                      criteria=dict(zip(item.prompt.checklist, marks)), **base)
