"""Where lima-eval's files live: the shipped data (the repo's benchmarks/ and judges/ in a checkout,
lima_eval/_data in a wheel) and the cache folder (converted models, downloads, judge replies)."""

from __future__ import annotations

import os
from pathlib import Path

from lima_eval.errors import LimaEvalError

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


def judge_cache_path() -> Path:
    """The judge-reply cache's default file: $LIMA_EVAL_JUDGE_CACHE, else judge-cache.sqlite in the cache folder
    (the openai-batch backend keeps its batch journals beside it when it has no run folder)."""
    explicit = os.environ.get("LIMA_EVAL_JUDGE_CACHE")
    return Path(explicit) if explicit else cache_dir() / "judge-cache.sqlite"


def download(url: str, folder: str, name: str) -> Path:
    """A public file, fetched once into the cache (CACHE/folder/name) and read from there afterwards."""
    import urllib.request  # stdlib, but slow to import (http, ssl): only when something is downloaded

    target = cache_dir() / folder / name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, tmp.open("wb") as f:
            f.write(r.read())
    except OSError as exc:
        raise LimaEvalError(f"could not download {url} ({exc}); download it yourself and give its path") from None
    tmp.replace(target)
    return target
