"""Where the shipped data lives: the repo's benchmarks/ and judges/ (checkout) or lima_eval/_data (wheel)."""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    """The folder holding shipped `benchmarks` or `judges` definitions."""
    for candidate in (_PKG / "_data" / kind, _PKG.parent / kind):
        if candidate.is_dir():
            return candidate
    return _PKG.parent / kind


def default_config_path() -> Path:
    return _PKG / "quickstart.yaml"


def cache_dir() -> Path:
    """lima-eval's cache folder (converted models, judge replies): $LIMA_EVAL_CACHE or ~/.cache/lima-eval."""
    return Path(os.environ.get("LIMA_EVAL_CACHE") or Path.home() / ".cache" / "lima-eval")
