"""One progress bar per stage on stderr, saying what was already on disk."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any


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


def bar(stage: str, total: int, cached: int, enabled: bool = True) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=cached, desc=stage, unit="item", file=sys.stderr, disable=not enabled,
                postfix=f"{cached} cached, {total - cached} to do", dynamic_ncols=True, leave=True)
