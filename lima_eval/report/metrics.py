"""Pure counting: judgments -> win / tie / loss of a model against a baseline."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

from lima_eval.records import Judgment


@dataclass
class Tally:
    """summary.json row. n counts readable verdicts (win + tie + loss); errors are counted apart."""

    model: str
    baseline: str
    judge: str
    n: int = 0
    win: int = 0
    tie: int = 0
    loss: int = 0
    errors: int = 0
    win_pct: float = 0.0
    tie_pct: float = 0.0
    loss_pct: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def oriented(j: Judgment, model: str, baseline: str) -> str | None:
    """The verdict from `model`'s side: win / tie / loss; None if the judgment is about another pair."""
    if {j.model_a, j.model_b} != {model, baseline} or j.verdict is None:
        return None
    if j.verdict == "tie":
        return "tie"
    winner = j.model_a if j.verdict == "a" else j.model_b
    return "win" if winner == model else "loss"


def tally(judgments: Iterable[Judgment], model: str, baseline: str, judge: str) -> Tally:
    t = Tally(model=model, baseline=baseline, judge=judge)
    for j in judgments:
        if j.judge != judge or {j.model_a, j.model_b} != {model, baseline}:
            continue
        if j.error or j.verdict is None:
            t.errors += 1
            continue
        side = oriented(j, model, baseline)
        setattr(t, side, getattr(t, side) + 1)  # type: ignore[arg-type]
    t.n = t.win + t.tie + t.loss
    if t.n:
        t.win_pct, t.tie_pct, t.loss_pct = (round(100.0 * x / t.n, 2) for x in (t.win, t.tie, t.loss))
    return t
