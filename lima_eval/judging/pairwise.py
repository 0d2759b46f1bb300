"""The pairwise judging stage: which pairs to judge, in which order to show them, and reading the verdict."""

from __future__ import annotations

from dataclasses import dataclass

from lima_eval.config import JudgeSpec
from lima_eval.judging.definitions import JudgeDefinition
from lima_eval.judging.parsers import FIRST, NEITHER, SECOND, get_parser
from lima_eval.records import Generation, Judgment, Prompt, content_id


def judge_label(spec: JudgeSpec) -> str:
    """How a model judge is named in records and reports: definition:model."""
    model = spec.model.removeprefix("embedded:").rstrip("/").split("/")[-1]
    return f"{spec.name}:{model}"


def shown_first(seed: int, prompt_id: str, model_a: str, model_b: str) -> str:
    """Which side the judge sees first: a coin flip seeded by the run seed and the prompt id (recorded)."""
    return "a" if int(content_id("order", seed, prompt_id, model_a, model_b), 16) % 2 == 0 else "b"


@dataclass(frozen=True)
class PairItem:
    """One thing to judge: a prompt and two generations, with the order they are shown in."""

    id: str
    prompt: Prompt
    gen_a: Generation
    gen_b: Generation
    first: str  # "a" or "b"

    def messages(self, definition: JudgeDefinition, prefill: bool = False) -> list[dict[str, str]]:
        one, two = (self.gen_a, self.gen_b) if self.first == "a" else (self.gen_b, self.gen_a)
        return definition.render(prefill=prefill, prompt=self.prompt.text, answer_a=one.text, answer_b=two.text)


def make_item(definition: JudgeDefinition, spec: JudgeSpec, seed: int, prompt: Prompt,
              gen_a: Generation, gen_b: Generation) -> PairItem:
    first = shown_first(seed, prompt.id, gen_a.model, gen_b.model)
    ident = spec.identity() | {"seed": seed}
    jid = content_id("judgment", definition.fingerprint, ident, gen_a.id, gen_b.id, first)
    return PairItem(id=jid, prompt=prompt, gen_a=gen_a, gen_b=gen_b, first=first)


def to_judgment(item: PairItem, definition: JudgeDefinition, label: str, raw: str, call_error: str | None,
                usage: dict) -> Judgment:
    """Turn the judge's reply into a Judgment; a failed call or an unreadable reply is an error, not a tie."""
    base = dict(id=item.id, prompt_id=item.prompt.id, model_a=item.gen_a.model, model_b=item.gen_b.model,
                judge=label, shown_first=item.first, generation_a=item.gen_a.id, generation_b=item.gen_b.id,
                raw=raw, usage=usage)
    if call_error:
        return Judgment(verdict=None, error=call_error, error_kind="call", **base)
    position, problem = get_parser(definition.parser)(raw)
    if position is None:
        return Judgment(verdict=None, error=problem, error_kind="parse", **base)
    if position == NEITHER:
        verdict = "tie"
    else:
        shown_a_first = item.first == "a"
        verdict = "a" if (position == FIRST) == shown_a_first else "b"
    assert position in (FIRST, SECOND, NEITHER)
    return Judgment(verdict=verdict, **base)  # type: ignore[arg-type]
