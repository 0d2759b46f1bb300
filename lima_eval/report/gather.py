"""The records a report counts, gathered once from a run: this config's judge records (order-both combined),
human and imported labels, the answers and each rating judge's scale."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

from lima_eval.config import JudgeSpec
from lima_eval.judging.definitions import JudgeDefinition, load_definition
from lima_eval.judging.items import judge_label
from lima_eval.judging.stage import plan
from lima_eval.records import Generation, Judgment, Rating
from lima_eval.report.metrics import combine_orders
from lima_eval.report.summary import Inputs
from lima_eval.run import Run
from lima_eval.scales import labelled


@dataclass
class JudgeRecords:
    """One model judge of the config and its records for the items the config asks for."""

    spec: JudgeSpec
    label: str
    definition: JudgeDefinition
    judgments: list[Judgment]
    ratings: list[Rating]


def _current(run: Run, gens: dict[str, Generation]) -> list[JudgeRecords]:
    """Model judgments and ratings of the items this config asks for (not leftovers of an older config)."""
    store, cfg, prompts = run.store, run.config, run.prompts
    judgments, ratings, out = store.judgments(), store.ratings(), []
    if not judgments and not ratings:  # no model judge has written anything (e.g. a run of imported labels)
        return [JudgeRecords(spec, judge_label(spec), load_definition(spec.name), [], []) for spec in cfg.all_judges()]
    answers = run.answers(gens)
    for spec in cfg.all_judges():
        p = plan(cfg, spec, prompts, store, answers)
        wanted = [i.id for i in p.items]
        out.append(JudgeRecords(spec, judge_label(spec), p.definition,
                                [judgments[i] for i in wanted if i in judgments],
                                [ratings[i] for i in wanted if i in ratings]))
    return out


# Some of the record fields combine_orders pairs the two orders of an item by: records unique by these are unique
# by all of them.
_ORDER_KEY = attrgetter("prompt_id", "model_a", "model_b")


def _combined(imported: list[Judgment]) -> list[Judgment]:
    """Imported judgments with both orders of an item combined (combine_orders, rule 'tie'). A million imported
    judgments with no item judged twice (each pair in one order) are kept as they are, found so by a C-level map
    instead of combine_orders' Python step per record: combining would return them unchanged, in their order."""
    if len(set(map(_ORDER_KEY, imported))) == len(imported):
        return imported
    return combine_orders(imported, "tie")


def gather(run: Run) -> tuple[Inputs, list[JudgeRecords]]:
    """Everything the report counts: this config's judge records (order-both combined), human and imported
    labels, the answers (for lengths and the answer browser) and each rating judge's scale."""
    store, cfg, prompts = run.store, run.config, run.prompts
    gens = store.generations()
    groups = _current(run, gens)
    imported = store.imported()
    judgments: list[Judgment] = []
    for g in groups:
        judgments += combine_orders(g.judgments, g.spec.order_rule) if g.spec.two_orders else g.judgments
    # Imported judgments of a judge that saw each pair in both orders (MT-bench's g1/g2) count once per pair, by
    # FastChat's rule as for lima-eval's own `order: both` (orders that disagree are a tie).
    judgments += list(store.judgments(human=True).values()) + _combined(list(imported.values()))
    ratings = ([r for g in groups for r in g.ratings] + list(store.ratings(human=True).values())
               + list(store.imported_ratings().values()))
    labels: dict[str, tuple[str, ...]] = {s.name: s.labels for s in labelled()}
    labels |= {g.label: g.definition.labels for g in groups if g.definition.is_rating}
    expected: dict[tuple[str, str, str], int] = {}
    for g in groups:
        # a judge that has judged nothing (a run of imports) expects nothing
        if g.definition.is_rating or not g.judgments:
            continue
        turns = getattr(g.definition.judge_kind, "turns", 1)
        usable = sum(1 for p in prompts if len(p.user_turns) >= turns)
        expected |= {(m, b, g.label): usable for m, b in cfg.pairs()}
    inp = Inputs(judgments=judgments, ratings=ratings, generations=gens, pairs=list(cfg.pairs()),
                 baselines=list(cfg.baselines), rating_labels=labels,
                 tags={p.id: tuple(p.tags) + ((p.category,) if p.category else ()) for p in prompts},
                 categories={p.id: p.category for p in prompts if p.category},
                 seed=cfg.seed, expected=expected, imported=list(imported.values()))
    return inp, groups
