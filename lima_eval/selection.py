"""Checkpoint selection: LIMA chose between epochs 5 and 10 by hand on 50 dev prompts; we let a judge do it.

Every kept epoch model answers the dev prompts; the judge compares every pair of epochs (round robin, order
randomised as usual); an epoch's score is its mean result over its comparisons (win 1, tie 0.5, loss 0).
The table goes to OUT/checkpoint_selection.{csv,md} and the choice to OUT/selection.json.

A command above sft/ (it runs the pipeline and reads the report's statistics), after `lima-eval sft` trains.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from lima_eval.config import (
    BenchmarkSpec,
    JudgeSpec,
    ModelSpec,
    RunConfig,
    build_section,
    parse_overrides,
    validate,
)
from lima_eval.errors import LimaEvalError
from lima_eval.judging.counting import combine_orders
from lima_eval.pipeline import run
from lima_eval.recipe import SFTConfig
from lima_eval.records import Judgment
from lima_eval.report.stats import rate_values
from lima_eval.store import RunStore


def epoch_models(cfg: SFTConfig) -> dict[int, Path]:
    root = Path(cfg.out) / "epochs"
    found = {int(p.name.split("-")[1]): p for p in root.glob("epoch-*") if p.name.split("-")[1].isdigit()}
    return {e: found[e] for e in sorted(found) if e in cfg.keep_epochs}


def epoch_row(judgments: list[Judgment], epoch: int) -> dict[str, Any]:
    """An epoch's win / tie / loss / errors over its comparisons, and its score: the report's discrete win rate
    (win 1, tie 0.5, loss 0)."""
    name = f"epoch-{epoch}"
    mine = [j for j in judgments if name in (j.model_a, j.model_b)]
    res = [j.outcome(name) for j in mine]
    counts = {k: sum(1 for r in res if r == v) for k, v in (("win", 1), ("tie", 0), ("loss", -1))}
    read = [j for j, r in zip(mine, res) if r is not None]
    n = len(read)
    values = rate_values("discrete_win_rate", np.array([j.share(name) for j in read], dtype=float),
                         np.array([j.outcome(name) for j in read], dtype=np.int8))
    score = float(values.mean()) if n else float("nan")
    return {"epoch": epoch, **counts, "errors": len(res) - n, "n": n, "score": round(score, 4)}


def select_checkpoint(cfg: SFTConfig, dev_prompts: Path, judge_name: str, judge_overrides: tuple[str, ...] | list[str],
                      show_progress: bool = True) -> Path:
    epochs = epoch_models(cfg)
    if len(epochs) < 2:
        raise LimaEvalError(f"checkpoint selection needs at least two kept epoch models in {Path(cfg.out) / 'epochs'} "
                            f"(keep_epochs={cfg.keep_epochs})")
    judge = {"name": judge_name} | dict(parse_overrides(judge_overrides))
    run_cfg = RunConfig(
        name="selection", output_dir=str(Path(cfg.out)), seed=cfg.seed, round_robin=True,
        benchmark=BenchmarkSpec(name="dev", path=str(dev_prompts)),
        models=[ModelSpec(name=f"epoch-{e}", backend="hf", model=str(p), revision=str(p.stat().st_mtime_ns))
                for e, p in epochs.items()],
        judge=build_section(JudgeSpec, judge, "judge"),
    )
    for m in run_cfg.models:
        m.sampling.max_new_tokens = cfg.dev_max_new_tokens
    validate(run_cfg)
    run(run_cfg, show_progress=show_progress)
    judgments = list(RunStore(run_cfg.run_dir).judgments().values())
    if run_cfg.judge.two_orders:  # one result per pair, as in the report
        judgments = combine_orders(judgments, run_cfg.judge.order_rule)
    rows = [epoch_row(judgments, e) for e in epochs]
    scored = [r for r in rows if r["n"]]
    if not scored:
        raise LimaEvalError("checkpoint selection: the judge gave no readable verdict")
    best = max(scored, key=lambda r: (r["score"], -r["epoch"]))  # ties go to the earlier epoch
    out = Path(cfg.out)
    with (out / "checkpoint_selection.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    md = ["| epoch | n | win | tie | loss | errors | score |", "|---:|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {r['epoch']}{' (best)' if r is best else ''} | {r['n']} | {r['win']} | {r['tie']} | {r['loss']} | "
           f"{r['errors']} | {r['score']:.3f} |" for r in rows]
    (out / "checkpoint_selection.md").write_text("\n".join(md) + "\n")
    path = epochs[int(best["epoch"])]
    (out / "selection.json").write_text(json.dumps({"best_epoch": best["epoch"], "path": str(path),
                                                     "judge": run_cfg.judge.name, "rows": rows}, indent=2))
    return path
