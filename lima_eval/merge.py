"""`lima-eval merge`: shard folders of one run (lima-eval run --shard i/N) back into one run folder.

Every shard must come from the same config (the shard itself, the run name and the output folder aside). Records are
content-addressed, so a record in two folders under one id is kept once when the two are identical, and is an
error (naming the file and the id) when they differ. Nothing is written until every input has been read and
checked; the merged folder gets the config without the shard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lima_eval.errors import ConfigError, InputError
from lima_eval.store import read_jsonl

FILES = ("generations.jsonl", "judgments.jsonl", "ratings.jsonl", "human_judgments.jsonl", "human_ratings.jsonl",
         "imported_judgments.jsonl", "imported_ratings.jsonl")
VOLATILE = ("cached",)  # whether a reply came from the cache says nothing about the record


def _config(run: Path) -> dict[str, Any]:
    from lima_eval.store import RunStore

    data = RunStore(run).read_config()
    data = json.loads(json.dumps(data))
    data.pop("name", None)
    data.pop("output_dir", None)  # shards are written on different machines, the merge somewhere else again
    (data.get("benchmark") or {}).pop("shard", None)
    return data


def _latest(path: Path) -> dict[str, dict[str, Any]]:
    """The latest row per id of one JSONL file (a rerun appends a retried failure under the same id)."""
    out: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(read_jsonl(path), 1):
        if not isinstance(row.get("id"), str) or not row["id"]:
            raise InputError(path, "a record without an id", line=n, field="id")
        out[row["id"]] = row
    return out


def _same(x: dict[str, Any], y: dict[str, Any]) -> bool:
    return {k: v for k, v in x.items() if k not in VOLATILE} == {k: v for k, v in y.items() if k not in VOLATILE}


def merge_runs(runs: list[Path], out: Path) -> dict[str, int]:
    """Merge `runs` into `out`; returns the records per file in the merged run."""
    from lima_eval.config import from_resolved
    from lima_eval.lock import RunLock
    from lima_eval.store import RunStore, append_jsonl

    if not runs:
        raise ConfigError("merge: name at least one run folder")
    sources = list(runs) + ([out] if (out / "config.yaml").exists() else [])
    base = _config(sources[0])
    for r in sources[1:]:
        if _config(r) != base:
            raise ConfigError(f"merge: {r} was made by another config than {sources[0]} (only the shard and the "
                              "run name may differ)")
    merged: dict[str, dict[str, dict[str, Any]]] = {f: {} for f in FILES}
    where: dict[tuple[str, str], Path] = {}
    for r in sources:
        for name in FILES:
            for rid, row in _latest(r / name).items():
                seen = merged[name].get(rid)
                if seen is None or _same(seen, row) or (seen.get("error") and not row.get("error")):
                    merged[name][rid], where[(name, rid)] = row, r  # a retried failure replaces the error
                elif not (row.get("error") and not seen.get("error")):
                    raise InputError(r / name, f"record '{rid}' differs from the one in {where[(name, rid)] / name}"
                                               " (the same id must mean the same record)", field="id")
    cfg = from_resolved(base | {"name": out.name, "output_dir": str(out.parent)}, str(sources[0] / "config.yaml"))
    with RunLock(out):
        store = RunStore(out)
        from lima_eval.config import to_plain

        store.write_config(to_plain(cfg))
        for name in FILES:
            have = _latest(out / name)
            append_jsonl(out / name, [row for rid, row in merged[name].items()
                                      if rid not in have or not _same(have[rid], row)])
    return {name: len(rows) for name, rows in merged.items() if rows}
