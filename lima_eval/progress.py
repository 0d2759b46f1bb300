"""One progress bar per stage on stderr, saying what was already on disk."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass
class StageCounts:
    """What one stage did: items already on disk, new records, errors, and requests actually sent."""

    cached: int = 0  # records already on disk
    new: int = 0
    errors: int = 0
    calls: int = 0
    missing_imports: int = 0  # prompts an `imported` model has no answer for
    cache_hits: int = 0  # judge replies reused from the persistent cache (no request)
    failed_calls: int = 0  # requests that failed after every retry (retried on the next run)

    def add(self, other: "StageCounts") -> None:
        for key, value in vars(other).items():
            setattr(self, key, getattr(self, key) + value)


def header(line: str, enabled: bool = True) -> None:
    """One line saying what a stage is about to do ("SFT: ...", "generate: ...", "judge: ...", "report: ...")."""
    if enabled:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


class StageBar:
    """A stage's progress bar in requests. Finished (saved) requests are counted exactly with done(); work in
    flight inside one large call moves the bar by fractions with partial() (a local backend reports each
    decoding step), so a single long batch is not a silent minute."""

    def __init__(self, stage: str, total: int, cached: int, enabled: bool = True):
        from tqdm import tqdm

        self.settled = cached
        self.bar = tqdm(total=total, initial=cached, desc=stage, unit="item", file=sys.stderr, disable=not enabled,
                        postfix=f"{cached} cached, {total - cached} to do", dynamic_ncols=True, leave=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total} [{elapsed}<{remaining}{postfix}]")

    def partial(self, amount: float) -> None:
        if amount > 0 and self.bar.n + amount <= self.bar.total:
            self.bar.update(amount)

    def done(self, n: int) -> None:
        """n more requests finished: the bar shows exactly what is saved."""
        self.settled += n
        self.bar.n = self.settled
        self.bar.refresh()

    update = done

    def close(self) -> None:
        self.bar.close()


def bar(stage: str, total: int, cached: int, enabled: bool = True) -> StageBar:
    return StageBar(stage, total, cached, enabled)
