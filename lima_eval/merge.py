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

from lima_eval.config import from_resolved, shard_of, to_plain
from lima_eval.errors import ConfigError, InputError
from lima_eval.inputs import load_json, read_text
from lima_eval.lock import RunLock
from lima_eval.store import RunStore, append_jsonl, read_jsonl, write_atomic

FILES = ("generations.jsonl", "judgments.jsonl", "ratings.jsonl", "human_judgments.jsonl", "human_ratings.jsonl",
         "imported_judgments.jsonl", "imported_ratings.jsonl")
VOLATILE = ("cached",)  # whether a reply came from the cache says nothing about the record
SHARDS = "shards.json"  # in a merged run: the split (N) and the shards i merged into it


def _config(run: Path) -> dict[str, Any]:
    data = RunStore(run).read_config()
    data = json.loads(json.dumps(data))
    data.pop("name", None)
    data.pop("output_dir", None)  # shards are written on different machines, the merge somewhere else again
    (data.get("benchmark") or {}).pop("shard", None)
    return data


def missing_shards(runs: list[Path]) -> tuple[int, list[int]]:
    """(N, the shards i/N none of `runs` holds) for shard folders of one split; (0, []) when none is a shard. Shards
    of different splits (1/2 with 2/3) cover the prompts unevenly and are refused."""
    split: dict[int, list[Path]] = {}
    held: set[int] = set()
    for r in runs:
        value = (RunStore(r).read_config().get("benchmark") or {}).get("shard")
        if value is not None:
            i, n = shard_of(value, f"{r / 'config.yaml'}: benchmark.shard")
            split.setdefault(n, []).append(r)
            held.add(i)
        elif (r / SHARDS).exists():  # a merged run remembers the split it was merged from
            n, shards = _merged_from(r / SHARDS)
            split.setdefault(n, []).append(r)
            held |= set(shards)
    if len(split) > 1:
        (n1, r1), (n2, r2) = list(split.items())[:2]
        raise ConfigError(f"merge: {r1[0]} is a shard of {n1} and {r2[0]} a shard of {n2}; merge the shards of one "
                          "split (lima-eval run --shard i/N with the same N)")
    if not split:
        return 0, []
    n = next(iter(split))
    return n, [i for i in range(1, n + 1) if i not in held]


def _merged_from(path: Path) -> tuple[int, list[int]]:
    data = load_json(read_text(path), path)
    ok = isinstance(data, dict) and isinstance(data.get("of"), int) and isinstance(data.get("shards"), list)
    if not ok or not all(isinstance(i, int) and 1 <= i <= data["of"] for i in data["shards"]):
        raise InputError(path, "expected {\"of\": N, \"shards\": [i, ...]} (written by lima-eval merge)")
    return data["of"], data["shards"]


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
    if not runs:
        raise ConfigError("merge: name at least one run folder")
    sources = list(runs) + ([out] if (out / "config.yaml").exists() else [])
    n, missing = missing_shards(sources)
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
        store.write_config(to_plain(cfg))
        if n:
            write_atomic(out / SHARDS,
                         json.dumps({"of": n, "shards": [i for i in range(1, n + 1) if i not in missing]}))
        for name in FILES:
            have = _latest(out / name)
            append_jsonl(out / name, [row for rid, row in merged[name].items()
                                      if rid not in have or not _same(have[rid], row)])
    return {name: len(rows) for name, rows in merged.items() if rows}
