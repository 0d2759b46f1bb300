"""pytest plugin (entry point `pytest11`): load lima-eval runs in tests and gate on them.

    from lima_eval.check import assert_no_regression

    def test_new_checkpoint_is_no_worse(lima_run):
        new, old = lima_run("results/ckpt-1200"), lima_run("results/ckpt-1100")
        assert_no_regression(new, old, model="my-sft", judge="lima-pairwise:gpt-4o", max_drop=0.05)

`lima_run(path)` reads a run directory (relative paths are from pytest's rootdir) once per test session.
The assertion helpers live in lima_eval.check. This module is imported by every pytest session where
lima-eval is installed, so it imports nothing heavy until a test asks for a run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def lima_run(request: pytest.FixtureRequest) -> Callable[[str | Path], Any]:
    """A loader: lima_run(path) -> the run's labels (lima_eval.check.RunData), cached for the session."""
    from lima_eval.check import load_run

    cache: dict[Path, Any] = {}

    def load(path: str | Path) -> Any:
        p = Path(path)
        if not p.is_absolute():
            p = Path(request.config.rootpath) / p
        p = p.resolve()
        if p not in cache:
            cache[p] = load_run(p)
        return cache[p]

    return load
