"""Write the report of a run directory: summary.json, CSVs, report.md, figures and a self-contained report.html,
all composed from the registered report sections (lima_eval.report.sections)."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lima_eval.config import JUDGE_BOUNDS, RunConfig
from lima_eval.errors import ConfigError, LimaEvalError
from lima_eval.lock import writes_run
from lima_eval.records import Prompt
from lima_eval.registry import suggest
from lima_eval.report.columns import csv_safe
from lima_eval.report.freshness import mark_current, mark_stale
from lima_eval.report.gather import JudgeRecords, gather
from lima_eval.report.html import write_html
from lima_eval.report.sections import Context, sections, summarize, summarize_with_context
from lima_eval.report.sections.judges import judge_cards, judge_quality
from lima_eval.report.sections.mt_bench import mt_bench_markdown
from lima_eval.report.sections.notes import undertrained
from lima_eval.report.stats import LEVEL
from lima_eval.report.summary import Inputs
from lima_eval.run import Run
from lima_eval.store import write_atomic

log = logging.getLogger(__name__)

# Names other modules and users import from here.
__all__ = ["JUDGE_BOUNDS", "JudgeRecords", "build_report", "finite", "gather", "judge_cards", "judge_quality",
           "mt_bench_markdown", "summarize", "summarize_with_table"]


def summarize_with_table(inp: Inputs, anchor: str | None = None) -> tuple[dict[str, Any], Any, dict[str, int]]:
    """summarize's numbers, with the PairTable its rows were counted from and its prompt index (the leaderboard
    fits the cross-run length control on them)."""
    ctx = summarize_with_context(inp, anchor)
    return ctx.data, ctx.shared["pair_table"], ctx.shared["prompt_index"]


@writes_run
def build_report(run_dir: Path, cfg: RunConfig | None = None, prompts: list[Prompt] | None = None,
                 anchor: str | None = None) -> Path:
    """Rebuild run_dir/report/ from what is on disk; returns the report folder. Bradley-Terry ratings are
    anchored at `anchor` (default: the first baseline) = 1000."""
    run = Run(run_dir, cfg, prompts)
    store, cfg, prompts = run.store, run.config, run.prompts
    inp, groups = gather(run)
    if anchor is not None and anchor not in {m for j in inp.judgments for m in (j.model_a, j.model_b)}:
        known = sorted({m for j in inp.judgments for m in (j.model_a, j.model_b)})
        raise ConfigError(f"--anchor: no judgments involve '{anchor}'{suggest(anchor, known)}")
    parts = sections()
    ctx = Context(inp=inp, cfg=cfg, store=store, prompts=prompts, groups=groups, anchor=anchor,
                  shared={"sections": parts})
    for section in parts:
        ctx.data[section.key] = section.compute(ctx)
    out = store.report_dir
    if not ctx.data.get("rows") and not ctx.data.get("ratings") and _has_numbers(out / "summary.json"):
        raise LimaEvalError(f"{run_dir}: no judgments or ratings match this run's config, so the report would be "
                            f"empty; the existing report in {out} is kept (rerun `lima-eval run` to judge)")
    out.mkdir(parents=True, exist_ok=True)
    summary = {"run": cfg.name, "benchmark": cfg.benchmark.name, "n_prompts": len(prompts),
               "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
               "intervals": {"level": LEVEL, "over": "prompts", "methods": "docs/report.md"}, **ctx.data}
    mark_stale(store)  # from here until mark_current the report on disk is not taken as finished
    write_atomic(out / "summary.json",
                 json.dumps(finite(summary), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    for section in parts:
        for name, rows in section.csv(ctx.data[section.key], ctx).items():
            _csv(out / name, rows)
        ctx.figures[section.key] = section.figure(ctx.data[section.key], ctx)
    shown = sorted(parts, key=lambda s: s.place)
    blocks = [s.markdown(ctx.data[s.key], ctx) for s in shown]
    write_atomic(out / "report.md", "\n".join(b.strip("\n") + "\n" for b in blocks if b))
    untaught = frozenset({cfg.sft.name}) if cfg.sft is not None and undertrained(cfg) else frozenset()
    write_html(out / "report.html", cfg, summary, [h for s in shown for h in s.html(ctx.data[s.key], ctx)], inp,
               prompts, untaught)
    mark_current(store, cfg)
    return out


def _has_numbers(summary_path: Path) -> bool:
    """Whether an existing summary.json reports any pairwise row or rating."""
    try:
        old = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(old, dict) and bool(old.get("rows") or old.get("ratings"))


def _csv(path: Path, rows: list[dict]) -> None:
    f = io.StringIO(newline="")
    if rows:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows({k: csv_safe(v) for k, v in r.items()} for r in rows)
    write_atomic(path, f.getvalue())


def finite(value: Any) -> Any:
    """summary.json's data with NaN and infinities as null: strict JSON readers refuse the bare tokens."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
