"""Pure counting over records: combining both-order judgments, order effects, token usage and cost.

Used by judging itself (adaptive judging combines orders, a jury adds up its jurors' costs) and by the report,
which re-exports it as lima_eval.report.metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from lima_eval.records import Judgment, Rating


def combine_orders(judgments: list[Judgment], rule: str) -> list[Judgment]:
    """Judgments of a judge that saw each pair in both orders -> one per pair (rule 'tie'), or unchanged
    ('separate'). 'tie' is MT-bench's rule: the two orders must agree, else the pair is a tie; if either
    order has no verdict, the pair has none either (an error)."""
    if rule == "separate":
        return list(judgments)
    groups: dict[tuple, list[Judgment]] = {}
    for j in judgments:
        key = (j.judge, j.prompt_id, j.turn, j.generation_a, j.generation_b, j.model_a, j.model_b)
        groups.setdefault(key, []).append(j)
    out = []
    for group in groups.values():
        if len(group) != 2 or {g.shown_first for g in group} != {"a", "b"}:
            out.extend(group)
            continue
        x, y = group
        if x.verdict is None or y.verdict is None:
            bad = x if x.verdict is None else y
            out.append(dataclasses.replace(bad, shown_first=None))
            continue
        verdict = x.verdict if x.verdict == y.verdict else "tie"
        probs = None
        if x.probs and y.probs:
            probs = {k: round((x.probs.get(k, 0.0) + y.probs.get(k, 0.0)) / 2, 6) for k in ("a", "b", "tie")}
        # Both replies, each with the order it answered, so the report shows the text behind the verdict.
        raw = "\n".join(f"[{g.model_a if g.shown_first == 'a' else g.model_b} shown first] {g.raw}" for g in (x, y))
        out.append(dataclasses.replace(x, verdict=verdict, shown_first=None, probs=probs, raw=raw,
                                       usage=_sum_usage(x.usage, y.usage)))
    return out


def _sum_usage(x: dict, y: dict) -> dict:
    return {k: (x.get(k) or 0) + (y.get(k) or 0) for k in set(x) | set(y)}


@dataclass
class PositionStats:
    """How much the order shown sways a judge."""

    judge: str
    pairs_both_orders: int = 0  # pairs judged in both orders with two readable verdicts
    consistent: int = 0  # ... of which the verdicts agree
    decisive: int = 0  # readable, non-tie verdicts
    first_won: int = 0  # ... of which the answer shown first won

    @property
    def consistency(self) -> float | None:
        return self.consistent / self.pairs_both_orders if self.pairs_both_orders else None

    @property
    def first_win_rate(self) -> float | None:
        return self.first_won / self.decisive if self.decisive else None


def position_stats(judgments: list[Judgment], judge: str) -> PositionStats:
    st = PositionStats(judge=judge)
    pairs: dict[tuple, dict[str, str]] = {}
    for j in judgments:
        if j.judge != judge or j.verdict is None or j.shown_first is None:
            continue
        if j.verdict != "tie":
            st.decisive += 1
            st.first_won += int(j.verdict == j.shown_first)
        key = (j.prompt_id, j.turn, j.generation_a, j.generation_b)
        pairs.setdefault(key, {})[j.shown_first] = j.verdict
    for both in pairs.values():
        if len(both) == 2:
            st.pairs_both_orders += 1
            st.consistent += int(both["a"] == both["b"])
    return st


def records_cost(records: list[Judgment] | list[Rating] | list, price: dict[str, float] | None) -> float | None:
    """USD for the records: their tokens at `price` (per 1M input / output tokens), or, without a price, the
    cost each record carries in its usage (a jury's verdict: its jurors' costs); None when unknown."""
    if price:
        pin, pout = usage_totals(records)
        return round((pin * price["input"] + pout * price["output"]) / 1e6, 6)
    if records and all(isinstance(r.usage.get("cost_usd"), (int, float)) for r in records):
        return round(sum(float(r.usage["cost_usd"]) for r in records), 6)
    return None


def usage_totals(records: Iterable[Judgment | Rating]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) over records."""
    pin = pout = 0
    for r in records:
        pin += int(r.usage.get("prompt_tokens") or 0)
        pout += int(r.usage.get("completion_tokens") or 0)
    return pin, pout
