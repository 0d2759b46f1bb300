"""Write the report of a run directory: summary.json, summary.csv, report.md and the win/tie/loss figure."""

from __future__ import annotations

import csv
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from lima_eval.config import RunConfig, _build, validate
from lima_eval.records import Judgment, Prompt
from lima_eval.report.metrics import Tally, tally
from lima_eval.report.plots import winrate_figure
from lima_eval.store import RunStore

log = logging.getLogger(__name__)

HUMAN = "human"
SUMMARY_KEYS = ("model", "baseline", "judge", "n", "win", "tie", "loss", "errors", "win_pct", "tie_pct", "loss_pct")


def load_run_config(store: RunStore) -> RunConfig:
    cfg = _build(RunConfig, store.read_config(), "")
    validate(cfg)
    return cfg


def _current_judgments(store: RunStore, cfg: RunConfig, prompts: list[Prompt]) -> list[Judgment]:
    """Model judgments of the pairs this config asks for (not leftovers of an older config)."""
    from lima_eval.pipeline import plan_judging

    items, _ = plan_judging(cfg, prompts, store)
    wanted = {i.id for i in items}
    return [j for jid, j in store.judgments().items() if jid in wanted]


def _rows(cfg: RunConfig, judgments: list[Judgment]) -> list[Tally]:
    judges = list(dict.fromkeys(j.judge for j in judgments if j.judge != HUMAN))
    if any(j.judge == HUMAN for j in judgments):
        judges.append(HUMAN)
    pairs = list(cfg.pairs())
    for j in judgments:  # human labels may cover pairs the config does not list
        pair = (j.model_b, j.model_a) if j.model_a in cfg.baselines else (j.model_a, j.model_b)
        if pair not in pairs and (pair[1], pair[0]) not in pairs:
            pairs.append(pair)
    rows = []
    for judge in judges:
        for model, baseline in pairs:
            t = tally(judgments, model, baseline, judge)
            if t.n or t.errors:
                rows.append(t)
    return rows


def _sft_steps(cfg: RunConfig) -> int | None:
    from lima_eval.sft.train import DONE

    path = Path(cfg.sft.out) / DONE if cfg.sft is not None else None
    return json.loads(path.read_text()).get("steps") if path is not None and path.exists() else None


def _weak_judge_note(cfg: RunConfig) -> str | None:
    if cfg.judge.backend == "hf" and cfg.judge.model.startswith("embedded:"):
        return (
            f"The judge here is `{cfg.judge.model}`, a tiny local model: a smoke-test judge whose verdicts say "
            "little about quality. For real numbers point the judge at a strong model, e.g. "
            "`--set judge.backend=openai --set judge.model=gpt-4o` (key in OPENAI_API_KEY), or any "
            "OpenAI-compatible server with `--set judge.base_url=http://HOST:PORT/v1`."
        )
    return None


def build_report(run_dir: Path, cfg: RunConfig | None = None, prompts: list[Prompt] | None = None) -> Path:
    """Rebuild run_dir/report/ from what is on disk; returns the report folder."""
    store = RunStore(Path(run_dir))
    if cfg is None:
        cfg = load_run_config(store)
    if prompts is None:
        from lima_eval.benchmarks import load_prompts

        prompts = load_prompts(cfg.benchmark)
    judgments = _current_judgments(store, cfg, prompts) + list(store.judgments(human=True).values())
    rows = _rows(cfg, judgments)
    out = store.report_dir
    out.mkdir(parents=True, exist_ok=True)

    notes = [n for n in [_weak_judge_note(cfg)] if n]
    caps = sorted({m.sampling.max_new_tokens for m in cfg.models})
    if caps and caps[0] < 512:
        notes.append(f"Answers were capped at {', '.join(map(str, caps))} new tokens (LIMA used 2,048).")
    if cfg.sft is not None:
        steps = _sft_steps(cfg)
        if steps is not None and steps < 100:
            notes.append(f"The SFT stage ran {steps} optimiser step(s) on `{cfg.sft.base}`: that demonstrates the "
                         "path, not LIMA's result (LIMA: 1,000 examples x 15 epochs, GPU work).")
    errors = sum(r.errors for r in rows)
    if errors:
        notes.append(f"{errors} judgment(s) have no readable verdict; they are counted as errors, not ties.")
    summary = {
        "run": cfg.name,
        "benchmark": cfg.benchmark.name,
        "n_prompts": len(prompts),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": [r.as_dict() for r in rows],
        "notes": notes,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with (out / "summary.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(SUMMARY_KEYS))
        w.writeheader()
        for r in rows:
            w.writerow(r.as_dict())
    figure = winrate_figure(rows, out / "win_tie_loss.png") if rows else None
    (out / "report.md").write_text(_markdown(cfg, rows, notes, len(prompts), figure), encoding="utf-8")
    return out


def _markdown(cfg: RunConfig, rows: list[Tally], notes: list[str], n_prompts: int, figure: Path | None) -> str:
    lines = [f"# lima-eval report: {cfg.name}", "",
             f"Benchmark `{cfg.benchmark.name}` ({n_prompts} prompts). Models under test: "
             + ", ".join(f"`{m}`" for m in dict.fromkeys(m for m, _ in cfg.pairs()))
             + "; baselines: " + ", ".join(f"`{b}`" for b in cfg.baselines) + ".", ""]
    if figure is not None:
        lines += [f"![win / tie / loss]({figure.name})", ""]
    lines += ["| judge | model | baseline | n | win | tie | loss | errors |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.judge} | {r.model} | {r.baseline} | {r.n} | {r.win} ({r.win_pct:.0f}%) | "
                     f"{r.tie} ({r.tie_pct:.0f}%) | {r.loss} ({r.loss_pct:.0f}%) | {r.errors} |")
    if not rows:
        lines.append("| (no judgments yet) | | | | | | | |")
    lines += ["", "Win / tie / loss are from the model's side, as in LIMA's Figure 1; percentages are of readable "
              "verdicts (n), errors excluded.", ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)
