"""A persistent judge-reply cache: one SQLite file (standard library), shared by runs and processes.

Keyed by a hash of what determines the reply: the judge endpoint's identity (backend, model, sampling,
prompt format, system prompt, dtype, seed), the rendered messages and the logprob request. Only replies
that came back are stored; failed calls are not, so they are retried. WAL mode and a busy timeout make
concurrent writers from several processes safe.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from lima_eval.backends.base import Completion, LogprobRequest, Messages
from lima_eval.errors import StoreError
from lima_eval.records import content_id
from lima_eval.resources import judge_cache_path


def default_path() -> Path:
    """$LIMA_EVAL_JUDGE_CACHE, else judge-cache.sqlite in the lima-eval cache folder."""
    return judge_cache_path()


def cache_key(identity: dict[str, Any], messages: Messages, logprobs: LogprobRequest | None) -> str:
    """`identity` is the judge's (judging.items.identity: endpoint, sampling, seed, logprob setting)."""
    want = None if logprobs is None else {"top": logprobs.top, "candidates": list(logprobs.candidates)}
    return content_id("judge-cache", identity, messages, want, length=40)


_JSON = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False), one encoder


def _encode(c: Completion) -> str:
    return _JSON({"text": c.text, "finish_reason": c.finish_reason, "usage": c.usage, "logprobs": c.logprobs})


def _decode(blob: str) -> Completion:
    d = json.loads(blob)
    steps = d.get("logprobs")
    return Completion(text=d.get("text", ""), finish_reason=d.get("finish_reason"), usage=d.get("usage") or {},
                      logprobs=[(t, alts) for t, alts in steps] if steps is not None else None)


class JudgeCache:
    """get_many / put_many over a `replies(key, value, created)` table."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.hits = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                             "created REAL NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"judge cache {self.path}: cannot open ({exc}); set judge.cache_path, "
                             "LIMA_EVAL_JUDGE_CACHE, or pass --no-cache") from None

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            part = keys[start:start + 500]
            marks = ",".join("?" * len(part))
            for key, value in self._db.execute(f"SELECT key, value FROM replies WHERE key IN ({marks})", part):
                found[key] = _decode(value)
        self.hits += len(found)
        return found

    def put_many(self, items: list[tuple[str, Completion]]) -> None:
        rows = [(k, _encode(c), time.time()) for k, c in items if not c.error]
        if not rows:
            return
        with self._db:  # one transaction per chunk
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO replies (key, value, created) VALUES (?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        self._db.close()
