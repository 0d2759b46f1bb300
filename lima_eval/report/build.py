"""Write the report of a run directory: summary.json, summary.csv, report.md and the win/tie/loss figure."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lima_eval.config import JudgeSpec, RunConfig, _build, validate
from lima_eval.judging.definitions import JudgeDefinition
from lima_eval.judging.parsers import ABSOLUTE, LIKERT
from lima_eval.records import Judgment, Prompt, Rating
from lima_eval.report.metrics import (RatingTally, Tally, combine_orders, position_stats, tally, tally_ratings,
                                      usage_totals)
from lima_eval.report.plots import winrate_figure
from lima_eval.store import RunStore

log = logging.getLogger(__name__)

HUMAN = "human"
SUMMARY_KEYS = ("model", "baseline", "judge", "n", "win", "tie", "loss", "errors", "win_pct", "tie_pct", "loss_pct")


def load_run_config(store: RunStore) -> RunConfig:
    cfg = _build(RunConfig, store.read_config(), "")
    validate(cfg)
    return cfg


@dataclass
class JudgeRecords:
    """One model judge of the config and its records for the items the config asks for."""

    spec: JudgeSpec
    label: str
    definition: JudgeDefinition
    judgments: list[Judgment]
    ratings: list[Rating]


def _current(store: RunStore, cfg: RunConfig, prompts: list[Prompt]) -> list[JudgeRecords]:
    """Model judgments and ratings of the items this config asks for (not leftovers of an older config)."""
    from lima_eval.judging.items import judge_label
    from lima_eval.judging.stage import plan

    judgments, ratings, out = store.judgments(), store.ratings(), []
    for spec in cfg.all_judges():
        p = plan(cfg, spec, prompts, store)
        wanted = [i.id for i in p.items]
        out.append(JudgeRecords(spec, judge_label(spec), p.definition,
                                [judgments[i] for i in wanted if i in judgments],
                                [ratings[i] for i in wanted if i in ratings]))
    return out


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


def _judge_cards(groups: list[JudgeRecords]) -> list[dict[str, object]]:
    """Per model judge: order effects, errors, tokens and cost of the records in this report."""
    cards = []
    for g in groups:
        records: list = g.judgments + g.ratings  # type: ignore[type-arg]
        if not records:
            continue
        pin, pout = usage_totals(records)
        price = g.definition.price(g.spec.model)
        cost = round((pin * price["input"] + pout * price["output"]) / 1e6, 6) if price else None
        card: dict[str, object] = {
            "judge": g.label, "definition": g.definition.name, "kind": g.definition.kind, "order": g.spec.order,
            "combine": g.spec.combine if g.spec.order == "both" else None, "logprobs": g.spec.logprobs,
            "records": len(records), "errors": sum(1 for r in records if r.error),
            "failed_calls": sum(1 for r in records if r.error_kind == "call"),
            "prompt_tokens": pin, "completion_tokens": pout, "cost_usd": cost,
        }
        if not g.definition.is_rating:
            st = position_stats(g.judgments, g.label)
            card |= {"pairs_both_orders": st.pairs_both_orders,
                     "position_consistency": None if st.consistency is None else round(st.consistency, 4),
                     "first_position_win_rate": None if st.first_win_rate is None else round(st.first_win_rate, 4)}
        cards.append(card)
    return cards


def build_report(run_dir: Path, cfg: RunConfig | None = None, prompts: list[Prompt] | None = None) -> Path:
    """Rebuild run_dir/report/ from what is on disk; returns the report folder."""
    store = RunStore(Path(run_dir))
    if cfg is None:
        cfg = load_run_config(store)
    if prompts is None:
        from lima_eval.benchmarks import load_prompts

        prompts = load_prompts(cfg.benchmark)
    groups = _current(store, cfg, prompts)
    judgments: list[Judgment] = []
    for g in groups:
        judgments += combine_orders(g.judgments, g.spec.combine) if g.spec.order == "both" else g.judgments
    judgments += list(store.judgments(human=True).values()) + list(store.imported().values())
    rows = _rows(cfg, judgments)
    rating_rows = _rating_rows(cfg, groups, list(store.ratings(human=True).values()))
    cards = _judge_cards(groups)
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
    errors = sum(r.errors for r in rows) + sum(r.errors for r in rating_rows)
    if errors:
        notes.append(f"{errors} judgment(s) have no readable verdict; they are counted as errors, not ties.")
    failed = sum(int(c["failed_calls"]) for c in cards)  # type: ignore[call-overload]
    if failed:
        notes.append(f"{failed} judge call(s) failed after every retry; run the same command again to retry them.")
    summary = {
        "run": cfg.name,
        "benchmark": cfg.benchmark.name,
        "n_prompts": len(prompts),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": [r.as_dict() for r in rows],
        "ratings": [r.as_dict() for r in rating_rows],
        "judges": cards,
        "notes": notes,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with (out / "summary.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(SUMMARY_KEYS))
        w.writeheader()
        for r in rows:
            w.writerow(r.as_dict())
    figure = winrate_figure(rows, out / "win_tie_loss.png") if rows else None
    sections = [_markdown(cfg, rows, notes, len(prompts), figure), _ratings_markdown(rating_rows),
                _cards_markdown(cards)]
    text = "\n".join(s.strip("\n") + "\n" for s in sections if s)
    (out / "report.md").write_text(text, encoding="utf-8")
    return out


def _rating_rows(cfg: RunConfig, groups: list[JudgeRecords], human: list[Rating]) -> list[RatingTally]:
    rows = []
    for g in groups:
        if g.definition.is_rating:
            for m in cfg.models:
                t = tally_ratings(g.ratings, m.name, g.label, g.definition.labels, g.definition.scale)
                if t.n or t.errors:
                    rows.append(t)
    for scale, labels in (("absolute", ABSOLUTE), ("likert", LIKERT)):
        mine = [r for r in human if r.scale == scale]
        for model in dict.fromkeys(r.model for r in mine):
            rows.append(tally_ratings(mine, model, HUMAN, labels, scale))
    return rows


def _ratings_markdown(rows: list[RatingTally]) -> str:
    if not rows:
        return ""
    lines = ["## Absolute ratings", ""]
    for scale in dict.fromkeys(r.scale for r in rows):
        mine = [r for r in rows if r.scale == scale]
        labels = mine[0].labels
        lines += ["| judge | model | n | " + " | ".join(labels) + " | mean | errors |",
                  "|---|---|---:|" + "---:|" * len(labels) + "---:|---:|"]
        for r in mine:
            cells = " | ".join(f"{r.counts.get(k, 0)} ({100.0 * r.counts.get(k, 0) / r.n:.0f}%)" if r.n else "0"
                               for k in labels)
            mean = f"{r.mean_score:.2f}" if r.mean_score is not None else "-"
            lines.append(f"| {r.judge} | {r.model} | {r.n} | {cells} | {mean} | {r.errors} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _cards_markdown(cards: list[dict[str, object]]) -> str:
    if not cards:
        return ""
    lines = ["## Judges", "", "| judge | order | records | errors | position consistency | first shown wins | "
             "tokens in / out | cost (USD) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in cards:
        cons, first = c.get("position_consistency"), c.get("first_position_win_rate")
        cost = c["cost_usd"]
        lines.append(
            f"| {c['judge']} | {c['order']}{' (' + str(c['combine']) + ')' if c['combine'] else ''} | {c['records']} | "
            f"{c['errors']} | {'-' if cons is None else f'{cons:.1%}'} | {'-' if first is None else f'{first:.1%}'} | "
            f"{c['prompt_tokens']:,} / {c['completion_tokens']:,} | {'-' if cost is None else f'{cost:.4f}'} |")
    lines += ["", "Position consistency: the share of pairs judged in both orders whose two verdicts agree. "
              "First shown wins: the share of decisive verdicts that went to the answer shown first (0.5 = no "
              "position bias). Cost uses the price table in the judge's judge.yaml; '-' where the model has none.",
              ""]
    return "\n".join(lines) + "\n"
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
