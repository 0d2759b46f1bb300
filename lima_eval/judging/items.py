"""What a judge is asked (items with stable ids) and how its reply becomes a Judgment or a Rating."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lima_eval.backends.base import Completion
from lima_eval.config import JudgeSpec
from lima_eval.inputs import shown
from lima_eval.judging.definitions import JudgeDefinition, load_definition
from lima_eval.judging.logprobs import chosen_option, option_probs
from lima_eval.judging.parsers import FIRST, NEITHER, get_parser
from lima_eval.records import Generation, Judgment, Prompt, Rating, content_id


def judge_label(spec: JudgeSpec) -> str:
    """How a model judge is named in records and reports: definition:model (a jury: jury:model+model+...)."""
    if spec.jury:
        return "jury:" + "+".join(judge_label(m).split(":", 1)[1] for m in spec.jury)
    model = spec.model.removeprefix("embedded:").rstrip("/").split("/")[-1]
    name = spec.name.rstrip("/").split("/")[-1]
    return f"{name}:{model}"


def shown_first(seed: int, prompt_id: str, model_a: str, model_b: str) -> str:
    """Which side the judge sees first: a coin flip seeded by the run seed and the prompt id (recorded)."""
    return "a" if int(content_id("order", seed, prompt_id, model_a, model_b), 16) % 2 == 0 else "b"


@dataclass(frozen=True)
class PairItem:
    """One pairwise comparison: a prompt and two models' answers (one per user turn), in the order shown."""

    id: str
    prompt: Prompt
    a: tuple[Generation, ...]  # model_a's answers, turn by turn (one for single-turn judges)
    b: tuple[Generation, ...]
    first: str  # "a" or "b"

    @property
    def gen_a(self) -> Generation:
        return self.a[-1]

    @property
    def gen_b(self) -> Generation:
        return self.b[-1]

    def shown(self) -> tuple[tuple[Generation, ...], tuple[Generation, ...]]:
        """The two conversations in the order the judge sees them."""
        return (self.a, self.b) if self.first == "a" else (self.b, self.a)


@dataclass(frozen=True)
class RatingItem:
    """One answer to rate on the judge's absolute scale."""

    id: str
    prompt: Prompt
    gen: Generation
    context: tuple[Generation, ...] = ()  # the same model's answers to the earlier turns (a multi-turn rating)


def identity(spec: JudgeSpec, seed: int) -> dict:
    """What makes a judge's verdicts what they are (part of every judgment id). A jury's: its jurors' (each with
    its definition's fingerprint) and how it combines them."""
    if spec.jury:
        jurors = [identity(m, seed) | {"definition": load_definition(m.name).fingerprint} for m in spec.jury]
        return {"jury": jurors, "rule": spec.jury_rule, "seed": seed} | (
            {"abstain_below": spec.abstain_below} if spec.abstain else {})
    return spec.identity() | {"seed": seed} | ({"logprobs": spec.top_logprobs} if spec.logprobs else {})


def pair_items(definition: JudgeDefinition, ident: dict, order: str, seed: int, prompt: Prompt,
               a: tuple[Generation, ...], b: tuple[Generation, ...]) -> list[PairItem]:
    """One item (order random) or two (order both) for a pair of answers; `ident` is identity(spec, seed)."""
    # Single-turn ids keep the scheme they had before multi-turn judges existed, so old runs still resume.
    gens = [a[0].id, b[0].id] if len(a) == 1 else [g.id for g in a] + ["|"] + [g.id for g in b]
    firsts = (["a", "b"] if order in ("both", "both-if-close")
              else [shown_first(seed, prompt.id, a[-1].model, b[-1].model)])
    return [PairItem(id=content_id("judgment", definition.fingerprint, ident, *gens, first),
                     prompt=prompt, a=a, b=b, first=first) for first in firsts]


def rating_item(definition: JudgeDefinition, ident: dict, prompt: Prompt, gen: Generation,
                context: tuple[Generation, ...] = ()) -> RatingItem:
    return RatingItem(id=content_id("rating", definition.fingerprint, ident, gen.id), prompt=prompt, gen=gen,
                      context=context)


def read_option(definition: JudgeDefinition, raw: str, completion: Completion, use_logprobs: bool,
                prefilled: bool) -> tuple[str | None, dict[str, float] | None, str | None]:
    """(option, probabilities, problem). Logprobs first where asked for and present; else the text parser."""
    if use_logprobs and completion.logprobs:
        steps, options, prefix = completion.logprobs, definition.options, definition.reply_prefix
        probs, _ = option_probs(steps, options, prefix, prefilled)
        if probs is not None:
            # The verdict is the option the judge emitted (so the stored reply shows it); the probabilities are
            # its confidence. Only when it emitted no option token is the most probable option the verdict:
            # summed over spellings ("A", " A"), that can differ from the single most likely token.
            said = chosen_option(steps, options, prefix, prefilled)
            return said or max(probs, key=lambda k: probs[k]), probs, None
    try:
        option, problem = get_parser(definition.parser)(raw)
    except Exception as exc:  # noqa: BLE001 - a plugin parser broken on one reply: a recorded parse error
        return None, None, f"parser '{definition.parser}' failed: {type(exc).__name__}: {exc}"[:300]
    if option is not None and option not in definition.options.values() and option not in definition.labels:
        return None, None, f"parser '{definition.parser}' returned {shown(option)}, not one of the judge's options"
    return option, None, problem


def to_judgment(item: PairItem, definition: JudgeDefinition, label: str, completion: Completion, prefix: str,
                use_logprobs: bool = False, cached: bool = False) -> Judgment:
    """Turn the judge's reply into a Judgment; a failed call or an unreadable reply is an error, not a tie."""
    raw = "" if completion.error else prefix + completion.text
    base: dict[str, Any] = {"id": item.id, "prompt_id": item.prompt.id, "model_a": item.gen_a.model,
                "model_b": item.gen_b.model, "judge": label, "shown_first": item.first,
                "generation_a": item.gen_a.id, "generation_b": item.gen_b.id,
                "raw": raw, "usage": completion.usage, "turn": item.gen_a.turn, "cached": cached}
    if completion.error:
        return Judgment(verdict=None, error=completion.error, error_kind="call", **base)
    position, probs, problem = read_option(definition, raw, completion, use_logprobs, bool(prefix))
    if position is None:
        return Judgment(verdict=None, error=problem, error_kind="parse", **base)
    a_first = item.first == "a"

    def side(pos: str) -> str:
        if pos == NEITHER:
            return "tie"
        return "a" if (pos == FIRST) == a_first else "b"

    verdict = side(position)
    mapped = {side(k): round(v, 6) for k, v in probs.items()} if probs else None
    return Judgment(verdict=verdict, probs=mapped, **base)  # type: ignore[arg-type]


def to_rating(item: RatingItem, definition: JudgeDefinition, label: str, completion: Completion, prefix: str,
              use_logprobs: bool = False, cached: bool = False) -> Rating:
    raw = "" if completion.error else prefix + completion.text
    base: dict[str, Any] = {"id": item.id, "prompt_id": item.prompt.id, "model": item.gen.model, "judge": label,
                "scale": definition.scale or definition.judge_kind.scale, "generation": item.gen.id, "raw": raw,
                "usage": completion.usage, "cached": cached, "turn": item.gen.turn}
    if completion.error:
        return Rating(label=None, error=completion.error, error_kind="call", **base)
    option, probs, problem = read_option(definition, raw, completion, use_logprobs, bool(prefix))
    if option is None:
        return Rating(label=None, error=problem, error_kind="parse", **base)
    rank = {lab: i + 1 for i, lab in enumerate(definition.labels)}
    score = sum(p * rank[k] for k, p in probs.items()) if probs else float(rank[option])
    return Rating(label=option, score=round(score, 6),
                  probs={k: round(v, 6) for k, v in probs.items()} if probs else None, **base)
