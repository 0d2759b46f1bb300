"""One progress bar per stage on stderr, saying what was already on disk."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Self


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

    def add(self, other: StageCounts) -> None:
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

    def close(self) -> None:
        self.bar.close()


def bar(stage: str, total: int, cached: int, enabled: bool = True) -> StageBar:
    return StageBar(stage, total, cached, enabled)


class Steps:
    """A bar over a few named steps of uneven length (converting a model: assemble, tokenizer, weights, save).
    It names the current step and its clock moves every second, so a long step is never a silent minute."""

    def __init__(self, stage: str, names: list[str], enabled: bool = True):

        from tqdm import tqdm

        self.names = names
        self.bar = tqdm(total=len(names), desc=stage, unit="step", file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True, leave=True, bar_format="{desc}: {n}/{total} [{elapsed}{postfix}]")
        self.bar.set_postfix_str(names[0] if names else "")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True) if enabled else None
        if self._thread is not None:
            self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.bar.refresh()

    def next(self) -> None:
        """The current step is done; the next one starts."""
        self.bar.update(1)
        if self.bar.n < len(self.names):
            self.bar.set_postfix_str(self.names[self.bar.n])

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.bar.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
