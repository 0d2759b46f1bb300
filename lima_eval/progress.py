"""One progress bar per stage on stderr, saying what was already on disk."""

from __future__ import annotations

import sys
from typing import Any


def bar(stage: str, total: int, cached: int, enabled: bool = True) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=cached, desc=stage, unit="item", file=sys.stderr, disable=not enabled,
                postfix=f"{cached} cached, {total - cached} to do", dynamic_ncols=True, leave=True)
