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


def download(url: str, folder: str, name: str) -> Path:
    """A public file, fetched once into the cache (CACHE/folder/name) and read from there afterwards."""
    import urllib.request

    from lima_eval.errors import LimaEvalError

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
