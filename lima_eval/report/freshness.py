"""Whether a run's report already shows what is on disk, so a rerun with nothing new skips rebuilding it
(figures and HTML take seconds; a no-op rerun should take well under one)."""

from __future__ import annotations

import json
from pathlib import Path

from lima_eval import __version__
from lima_eval.config import RunConfig, to_plain
from lima_eval.records import content_id
from lima_eval.store import RunStore, write_atomic

STAMP = ".inputs"  # in report/: the fingerprint of the inputs the report was built from


def inputs_fingerprint(store: RunStore, cfg: RunConfig) -> str:
    """The resolved config, every record file of the run (size and modification time), the SFT model's
    completion record and the lima-eval version: what a report is computed from."""
    files = sorted(p for p in store.root.glob("*.jsonl"))
    if cfg.sft is not None and cfg.sft.out:
        files.append(Path(cfg.sft.out) / "lima_sft.json")
    if cfg.benchmark.path:
        files.append(Path(cfg.benchmark.path))
    stats: list[tuple[str, int | None, int | None]] = []
    for p in files:
        try:
            st = p.stat()
            stats.append((str(p), st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((str(p), None, None))
    return content_id("report-inputs", __version__, to_plain(cfg), stats)


def report_is_current(store: RunStore, cfg: RunConfig) -> bool:
    """Whether report/ was built from exactly these inputs and its main files are all there."""
    out = store.report_dir
    if not all((out / name).exists() for name in ("report.md", "report.html", "summary.json")):
        return False
    try:
        stamp = json.loads((out / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return bool(stamp.get("inputs") == inputs_fingerprint(store, cfg))


def mark_stale(store: RunStore) -> None:
    """Forget which inputs the report was built from: called before any report file is rewritten, so a report
    killed half-way is rebuilt by the next run instead of being taken as finished."""
    (store.report_dir / STAMP).unlink(missing_ok=True)
    for tmp in store.report_dir.glob(".*.tmp"):  # left by a report killed before its rename (one writer per run)
        tmp.unlink(missing_ok=True)


def mark_current(store: RunStore, cfg: RunConfig) -> None:
    """Record the inputs the report was just built from (written last, after every report file)."""
    write_atomic(store.report_dir / STAMP, json.dumps({"inputs": inputs_fingerprint(store, cfg)}))
