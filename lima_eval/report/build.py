"""Write the report of a run directory: summary.json, CSVs, report.md, figures and a self-contained report.html."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lima_eval.config import JudgeSpec, RunConfig
from lima_eval.errors import LimaEvalError
from lima_eval.judging.definitions import JudgeDefinition, paid_price
from lima_eval.judging.parsers import ABSOLUTE, LIKERT
from lima_eval.lock import writes_run
from lima_eval.records import Generation, Judgment, Prompt, Rating
from lima_eval.report.columns import PAIRWISE, csv_row, csv_safe, markdown_table, md, pct, shown
from lima_eval.report.html import INTERVALS, figure_rows, human_kappa, mean_ci, rating_ci, write_html
from lima_eval.report.lc import add_difficulty_lc
from lima_eval.report.metrics import combine_orders, position_stats, records_cost, usage_totals
from lima_eval.report.plots import winrate_figure
from lima_eval.report.stats import LEVEL
from lima_eval.report.summary import (
    Inputs,
    bt_ratings,
    checklist_rows,
    judge_agreement,
    mt_bench_rows,
    pair_table,
    pairwise_rows,
    rating_rows,
    row_keys,
    safety_rows,
)
from lima_eval.run import Run
from lima_eval.store import write_atomic

log = logging.getLogger(__name__)


@dataclass
class JudgeRecords:
    """One model judge of the config and its records for the items the config asks for."""

    spec: JudgeSpec
    label: str
    definition: JudgeDefinition
    judgments: list[Judgment]
    ratings: list[Rating]


def _current(run: Run, gens: dict[str, Generation]) -> list[JudgeRecords]:
    """Model judgments and ratings of the items this config asks for (not leftovers of an older config)."""
    from lima_eval.judging.definitions import load_definition
    from lima_eval.judging.items import judge_label
    from lima_eval.judging.stage import plan

    store, cfg, prompts = run.store, run.config, run.prompts
    judgments, ratings, out = store.judgments(), store.ratings(), []
    if not judgments and not ratings:  # no model judge has written anything (e.g. a run of imported labels)
        return [JudgeRecords(spec, judge_label(spec), load_definition(spec.name), [], []) for spec in cfg.all_judges()]
    answers = run.answers(gens)
    for spec in cfg.all_judges():
        p = plan(cfg, spec, prompts, store, answers)
        wanted = [i.id for i in p.items]
        out.append(JudgeRecords(spec, judge_label(spec), p.definition,
                                [judgments[i] for i in wanted if i in judgments],
                                [ratings[i] for i in wanted if i in ratings]))
    return out


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


def _trust_notes(cfg: RunConfig, cards: list[dict[str, Any]], rows: list[dict]) -> list[str]:
    """How far to trust each judge, from the run itself and its card: a length preference whose interval excludes
    one half, a parse-error share over 5%, and the card against human labels (or the command that makes one)."""
    notes = []
    for r in rows:
        low = r.get("prefers_longer_ci_low")
        if isinstance(low, float) and low > 0.5:
            notes.append(f"`{r['judge']}` gave {float(r['prefers_longer']):.0%} of its decisive verdicts on {r['model']} "
                         f"vs {r['baseline']} to the longer answer (95% interval from {low:.0%}): check the "
                         "length-controlled column before reading the win rate as quality.")
    from lima_eval.judging.items import judge_label

    specs = {judge_label(s): s for s in cfg.all_judges()}
    for c in cards:
        if c.get("records") and c["errors"] / c["records"] > 0.05:
            notes.append(f"`{c['judge']}`: {c['errors']} of {c['records']} replies ({c['errors'] / c['records']:.0%}) "
                         "had no readable verdict.")
        if c.get("definition") == "imported" or c.get("kind") == "rating" or c["judge"] not in specs:
            continue
        hc = c.get("human_card")
        if hc and hc.get("kappa") is not None:
            notes.append(f"`{c['judge']}` against people ({hc['gold']}, {hc['judged']} items): Cohen's kappa "
                         f"{hc['kappa']:.2f} with the human majority, where people agree with each other at "
                         f"{float(hc['ceiling_kappa'] or 0):.2f} (card: {hc['path']}).")
        else:
            from shlex import quote

            spec = specs[c["judge"]]
            sets = f" --set {quote('backend=' + spec.backend)} --set {quote('model=' + spec.model)}" if spec.model else ""
            what = f"{quote(spec.name)} --gold pandalm{sets}"
            if spec.jury:  # a jury's section is in the run's config (the card reads its `judge:`)
                what = (quote(str(cfg.run_dir / "config.yaml")) if spec is cfg.judge else "JURY.yaml") + " --gold pandalm"
            notes.append(f"`{c['judge']}` has no judge card, so how far it agrees with people is unknown: "
                         f"`lima-eval judge-card {what} --results {quote(cfg.output_dir)}`"
                         + (" (JURY.yaml: its judge section)." if spec.jury and spec is not cfg.judge else "."))
    return notes


def _jury_note(card: dict[str, Any], run_dir: Path) -> str:
    """What a jury is and how its verdicts came about; where the pairs it abstained on wait for people."""
    j = card["jury"]
    said = ", ".join(f"{k} {v}" for k, v in j["outcomes"].items() if v)
    text = (f"`{card['judge']}` is a jury of {', '.join(f'`{x}`' for x in j['jurors'])} ({j['rule']}"
            + (f", abstaining at a support of {j['abstain_below']:g} or less" if j["abstain"] else "")
            + f"); its {card['records']} verdicts: {said or 'none yet'}.")
    if j["abstained_pairs"]:
        text += (f" It abstained on {j['abstained_pairs']} pair(s), counted in the errors column (no verdict, not a "
                 f"tie); they wait for people in {j['queue']}: fill in label and annotator, then "
                 f"`lima-eval import-human {run_dir} {j['queue']}`.")
    return text


def _position_note(card: dict[str, Any]) -> str | None:
    """A note when a judge clearly favours one position: the first-shown answer's share of its decisive
    verdicts has a 95% interval that excludes one half."""
    import numpy as np

    from lima_eval.report.stats import critical, wilson

    share, decisive = card.get("first_position_win_rate"), card.get("decisive_verdicts")
    if not isinstance(share, float) or not isinstance(decisive, int) or decisive < 2:
        return None
    lo, hi = (float(x) for x in wilson(np.array(share), np.array(float(decisive)), critical(LEVEL, decisive - 1)))
    if lo <= 0.5 <= hi:
        return None
    side = "first" if share > 0.5 else "second"
    fix = (f"Each pair was judged in both orders, so this cancels out of the win rates (the two orders agreed on "
           f"{float(card.get('position_consistency') or 0):.0%} of pairs)." if card.get("order") == "both" else
           "With `order: both-if-close`, only pairs whose first verdict was close were judged in both orders; the "
           "confident ones stand on one order, where this bias can still sway them." if card.get("order") ==
           "both-if-close" else "With `order: random` it adds noise to every verdict; `order: both` (the default) cancels it out.")
    return (f"`{card['judge']}` favours the answer shown {side}: {share:.0%} of its {decisive} decisive verdicts went "
            f"to the first-shown answer (95% interval {lo:.0%} - {hi:.0%}). {fix}")


def _conclusions(rows: list[dict]) -> list[str]:
    """One line per row: a clear difference (the win rate's interval excludes one half) or none."""
    out = []
    for r in rows:
        lo, hi = r.get("win_rate_ci_low"), r.get("win_rate_ci_high")
        who = f"`{r['model']}` vs `{r['baseline']}` ({r['judge']})"
        if lo is None or hi is None:
            out.append(f"{who}: too few prompts to tell (n = {r['n']}).")
        elif lo > 0.5:
            out.append(f"{who}: `{r['model']}` is preferred (win rate {100 * r['win_rate']:.1f}%, 95% interval "
                       f"{100 * lo:.1f} - {100 * hi:.1f}).")
        elif hi < 0.5:
            out.append(f"{who}: `{r['baseline']}` is preferred (win rate {100 * r['win_rate']:.1f}%, 95% interval "
                       f"{100 * lo:.1f} - {100 * hi:.1f}).")
        else:
            out.append(f"{who}: no clear difference (the 95% interval of the win rate, {100 * lo:.1f} - "
                       f"{100 * hi:.1f}, contains 50%).")
    return out


def human_card(results: Path | None, spec: JudgeSpec) -> dict[str, Any] | None:
    """The judge's card against human gold labels (lima-eval judge-card), when one exists under RESULTS."""
    if results is None:
        return None
    from lima_eval.judge_card import find_cards

    found = find_cards(results, spec)
    if not found:
        return None
    c = found[0]
    vs, ceiling = c.get("vs_human_majority") or {}, c.get("human_ceiling") or {}
    flips = (c.get("stability") or {}).get("flip_rate") or {}
    return {"gold": c.get("gold"), "judged": c.get("judged"), "kappa": vs.get("kappa"), "kappa_ci": vs.get("kappa_ci"),
            "tie_discounted": vs.get("tie_discounted"), "ceiling_kappa": ceiling.get("kappa"),
            "flip_rate": flips.get("share"), "flip_rate_ci": flips.get("ci"), "path": c.get("path")}


# Bounds on a judge's quality: `lima-eval check` rules and a run config's `judge.require:` take the same keys.
JUDGE_BOUNDS = ("min_judge_kappa", "max_position_bias", "max_flip_rate")


def judge_quality(card: dict[str, Any], bound: str, level: float = LEVEL) -> tuple[float, float, float, int] | str:
    """(value, interval low, interval high, n) of one quality bound for a judge's report card, or why there is
    none: kappa with humans (its judge card), position bias |first-shown share - 1/2| (this run), flip rate
    across repeats (its judge card, made with --repeats)."""
    import numpy as np

    from lima_eval.report.stats import critical, wilson

    hc = card.get("human_card")
    if bound == "min_judge_kappa":
        if not hc or hc.get("kappa") is None:
            return f"judge '{card['judge']}' has no judge card (lima-eval judge-card)"
        low, high = hc.get("kappa_ci") or (hc["kappa"], hc["kappa"])
        return float(hc["kappa"]), float(low), float(high), int(hc.get("judged") or 0)
    if bound == "max_flip_rate":
        if not hc or hc.get("flip_rate") is None:
            return f"judge '{card['judge']}' has no judge card made with --repeats 2 or more"
        low, high = hc.get("flip_rate_ci") or (hc["flip_rate"], hc["flip_rate"])
        return float(hc["flip_rate"]), float(low), float(high), int(hc.get("judged") or 0)
    share, decisive = card.get("first_position_win_rate"), card.get("decisive_verdicts")
    if not isinstance(share, float) or not isinstance(decisive, int) or decisive < 2:
        return f"judge '{card['judge']}' has too few decisive verdicts in this run to measure its position bias"
    lo, hi = (float(x) for x in wilson(np.array(share), np.array(float(decisive)), critical(level, decisive - 1)))
    # |share - 1/2|: its interval runs from the distance of the nearest end to 1/2 (0 if 1/2 is inside).
    low = 0.0 if lo <= 0.5 <= hi else min(abs(lo - 0.5), abs(hi - 0.5))
    return abs(share - 0.5), low, max(abs(lo - 0.5), abs(hi - 0.5)), decisive


def require_notes(cfg: RunConfig, cards: list[dict[str, Any]]) -> list[str]:
    """For each judge whose config sets `require:`, the bounds its verdicts fail (then they are untrusted)."""
    from lima_eval.judging.items import judge_label

    by_label = {c["judge"]: c for c in cards}
    notes = []
    for spec in cfg.all_judges():
        card = by_label.get(judge_label(spec))
        if not spec.require or card is None:
            continue
        failed = []
        for bound, threshold in spec.require.items():
            got = judge_quality(card, bound)
            if isinstance(got, str):
                failed.append(f"{bound} {threshold:g}: unknown ({got})")
                continue
            value, low, high, _ = got
            ok = high >= threshold if bound.startswith("min_") else low <= threshold
            if not ok:
                failed.append(f"{bound} {threshold:g}: {value:.3f} [{low:.3f}, {high:.3f}]")
        card["trusted"] = not failed
        if failed:
            notes.append(f"UNTRUSTED: the verdicts of `{card['judge']}` fail the judge's `require:` bounds "
                         f"({'; '.join(failed)}); read its win rates as unverified.")
    return notes


def judge_cards(groups: list[JudgeRecords], results: Path | None = None,
                run_dir: Path | None = None) -> list[dict[str, Any]]:
    """Per model judge: order effects, errors, tokens and cost of the records in this report, its card against
    human labels when RESULTS holds one, and a jury's make-up and outcomes (its queue in RUN_DIR)."""
    cards = []
    for g in groups:
        records: list = g.judgments + g.ratings
        if not records:
            continue
        pin, pout = usage_totals(records)
        cost = records_cost(records, None if g.spec.jury else paid_price(g.definition.price(g.spec.model),
                                                                          g.spec.backend))
        card: dict[str, Any] = {
            "judge": g.label, "definition": g.definition.name, "kind": g.definition.kind, "order": g.spec.order,
            "combine": g.spec.order_rule if g.spec.two_orders else None, "logprobs": g.spec.logprobs,
            "records": len(records), "errors": sum(1 for r in records if r.error and r.error_kind != "abstain"),
            "abstained": sum(1 for r in records if r.error_kind == "abstain"),
            "failed_calls": sum(1 for r in records if r.error_kind == "call"),
            "prompt_tokens": pin, "completion_tokens": pout, "cost_usd": cost,
        }
        if g.spec.jury:
            card["jury"] = jury_summary(g, run_dir)
        if not g.definition.is_rating:
            card["human_card"] = human_card(results, g.spec)
            st = position_stats(g.judgments, g.label)
            card |= {"pairs_both_orders": st.pairs_both_orders, "decisive_verdicts": st.decisive,
                     "position_consistency": None if st.consistency is None else round(st.consistency, 4),
                     "first_position_win_rate": None if st.first_win_rate is None else round(st.first_win_rate, 4)}
        cards.append(card)
    return cards


def jury_summary(g: JudgeRecords, run_dir: Path | None = None) -> dict[str, Any]:
    """A jury's make-up and how its verdicts came about (unanimous, majority, split, abstained), and the pairs
    it abstained on, which wait in its human queue."""
    import re
    from collections import Counter

    from lima_eval.judging.items import judge_label
    from lima_eval.judging.jury import queue_path

    outcomes = Counter(m.group(1) for j in g.judgments
                       if (m := re.search(r"\((unanimous|majority|split|abstained|unreadable), support", j.raw)))
    pairs = combine_orders(g.judgments, g.spec.order_rule) if g.spec.two_orders else g.judgments
    abstained = sum(1 for j in pairs if j.error_kind == "abstain")
    queue = queue_path(run_dir, g.spec) if abstained and run_dir is not None else None
    return {"jurors": [judge_label(m) for m in g.spec.jury], "rule": g.spec.jury_rule, "abstain": g.spec.abstain,
            "abstain_below": g.spec.abstain_below if g.spec.abstain else None,
            "outcomes": {k: outcomes.get(k, 0) for k in ("unanimous", "majority", "split", "abstained", "unreadable")},
            "abstained_pairs": abstained, "queue": None if queue is None else str(queue)}


def imported_cards(imported: list[Judgment]) -> list[dict[str, Any]]:
    """Per imported judge that saw pairs in both orders (MT-bench's g1/g2): its order effects, as for our own."""
    by_judge: dict[str, list[Judgment]] = {}
    for j in imported:
        if j.shown_first is not None:
            by_judge.setdefault(j.judge, []).append(j)
    cards = []
    for label, records in by_judge.items():
        st = position_stats(records, label)
        pin, pout = usage_totals(records)
        cards.append({
            "judge": label, "definition": "imported", "kind": "pairwise", "order": "both", "combine": "tie",
            "logprobs": False, "records": len(records), "errors": sum(1 for r in records if r.error and r.error_kind != "abstain"),
            "abstained": sum(1 for r in records if r.error_kind == "abstain"),
            "failed_calls": 0, "prompt_tokens": pin, "completion_tokens": pout, "cost_usd": None,
            "pairs_both_orders": st.pairs_both_orders, "decisive_verdicts": st.decisive,
            "position_consistency": None if st.consistency is None else round(st.consistency, 4),
            "first_position_win_rate": None if st.first_win_rate is None else round(st.first_win_rate, 4)})
    return cards


def gather(run: Run) -> tuple[Inputs, list[JudgeRecords]]:
    """Everything the report counts: this config's judge records (order-both combined), human and imported
    labels, the answers (for lengths and the answer browser) and each rating judge's scale."""
    store, cfg, prompts = run.store, run.config, run.prompts
    gens = store.generations()
    groups = _current(run, gens)
    imported = store.imported()
    judgments: list[Judgment] = []
    for g in groups:
        judgments += combine_orders(g.judgments, g.spec.order_rule) if g.spec.two_orders else g.judgments
    # Imported judgments of a judge that saw each pair in both orders (MT-bench's g1/g2) count once per pair, by
    # FastChat's rule as for lima-eval's own `order: both` (orders that disagree are a tie).
    judgments += list(store.judgments(human=True).values()) + combine_orders(list(imported.values()), "tie")
    ratings = ([r for g in groups for r in g.ratings] + list(store.ratings(human=True).values())
               + list(store.imported_ratings().values()))
    labels: dict[str, tuple[str, ...]] = {"absolute": ABSOLUTE, "likert": LIKERT}
    labels |= {g.label: g.definition.labels for g in groups if g.definition.is_rating}
    expected: dict[tuple[str, str, str], int] = {}
    for g in groups:
        if g.definition.is_rating or not g.judgments:  # a judge that has judged nothing (a run of imports) expects nothing
            continue
        turns = getattr(g.definition.judge_kind, "turns", 1)
        usable = sum(1 for p in prompts if len(p.user_turns) >= turns)
        expected |= {(m, b, g.label): usable for m, b in cfg.pairs()}
    inp = Inputs(judgments=judgments, ratings=ratings, generations=gens, pairs=list(cfg.pairs()),
                 baselines=list(cfg.baselines), rating_labels=labels,
                 tags={p.id: tuple(p.tags) + ((p.category,) if p.category else ()) for p in prompts},
                 categories={p.id: p.category for p in prompts if p.category},
                 seed=cfg.seed, expected=expected, imported=list(imported.values()))
    return inp, groups


def summarize(inp: Inputs, anchor: str | None = None) -> dict[str, Any]:
    """The numbers of the report (rows, Bradley-Terry, ratings, agreement) from gathered inputs."""
    return summarize_with_table(inp, anchor)[0]


def summarize_with_table(inp: Inputs, anchor: str | None = None) -> tuple[dict[str, Any], Any, dict[str, int]]:
    """summarize's numbers, with the PairTable its rows were counted from and its prompt index (the leaderboard
    fits the cross-run length control on them)."""
    keys = row_keys(inp)
    table, prompt_index, errors, covered = pair_table(inp, keys)
    rows, st = pairwise_rows(keys, table, len(prompt_index), errors, covered, inp.expected)
    add_difficulty_lc(rows, keys, table, len(prompt_index))
    return {"rows": rows, "bradley_terry": bt_ratings(keys, st, ([anchor] if anchor else []) + inp.baselines) if keys else [],
            "ratings": rating_rows(inp), "agreement": judge_agreement(inp), "mt_bench": mt_bench_rows(inp),
            "checklist": checklist_rows(inp)}, table, prompt_index


@writes_run
def build_report(run_dir: Path, cfg: RunConfig | None = None, prompts: list[Prompt] | None = None,
                 anchor: str | None = None) -> Path:
    """Rebuild run_dir/report/ from what is on disk; returns the report folder. Bradley-Terry ratings are
    anchored at `anchor` (default: the first baseline) = 1000."""
    run = Run(run_dir, cfg, prompts)
    store, cfg, prompts = run.store, run.config, run.prompts
    inp, groups = gather(run)
    if anchor is not None and anchor not in {m for j in inp.judgments for m in (j.model_a, j.model_b)}:
        from lima_eval.errors import ConfigError
        from lima_eval.registry import suggest

        known = sorted({m for j in inp.judgments for m in (j.model_a, j.model_b)})
        raise ConfigError(f"--anchor: no judgments involve '{anchor}'{suggest(anchor, known)}")
    numbers = summarize(inp, anchor)
    cards = judge_cards(groups, Path(cfg.output_dir), store.root) + imported_cards(inp.imported)
    rows = numbers["rows"]
    out = store.report_dir
    if not rows and not numbers["ratings"] and _has_numbers(out / "summary.json"):
        raise LimaEvalError(f"{run_dir}: no judgments or ratings match this run's config, so the report would be "
                            f"empty; the existing report in {out} is kept (rerun `lima-eval run` to judge)")
    out.mkdir(parents=True, exist_ok=True)

    notes = [n for n in [_weak_judge_note(cfg)] if n]
    caps = sorted({m.sampling.max_new_tokens for m in cfg.models if not m.imported})
    if caps and caps[0] < 512:
        notes.append(f"Answers were capped at {', '.join(map(str, caps))} new tokens (LIMA used 2,048).")
    if cfg.sft is not None:
        steps = _sft_steps(cfg)
        if steps is not None and steps < 100:
            notes.append(f"The SFT stage ran {steps} optimiser step(s) on `{cfg.sft.base}`: that demonstrates the "
                         "path, not LIMA's result (LIMA: 1,000 examples x 15 epochs, GPU work).")
    from lima_eval.judging.adaptive import stop_note, stop_rows

    adaptive = [row for g in groups if g.spec.stop_when_decided is not None and not g.definition.is_rating
                for row in stop_rows(g.spec, g.label, g.judgments, len(prompts))]
    notes += [stop_note(r) for r in adaptive]
    missing = sum(r["missing"] or 0 for r in rows)
    by_design = sum(r["prompts"] - r["prompts_judged"] for r in adaptive if r["decision"])
    if missing > by_design:
        notes.append(f"{missing - by_design} prompt(s) have no judgment for their pair (an answer failed or was not "
                     "judged yet); see the missing column. Rerun `lima-eval run` to fill them."
                     + (f" {by_design} more were left unjudged by stop_when_decided, as planned." if by_design else ""))
    errors = sum(r["errors"] for r in rows) + sum(r["errors"] for r in numbers["ratings"] if r["subset"] == "all")
    abstained = sum(c["jury"]["abstained_pairs"] for c in cards if c.get("jury"))
    if errors > abstained:
        notes.append(f"{errors - abstained} judgment(s) have no readable verdict; they are counted as errors, not "
                     "ties.")
    notes += [n for n in (_jury_note(c, run_dir) for c in cards if c.get("jury")) if n]
    from lima_eval.report.selfpref import note as self_note
    from lima_eval.report.selfpref import self_preference

    try:
        contamination = _contamination(cfg, prompts, inp)
    except LimaEvalError as exc:  # the training data is gone or unreachable (a hub dataset offline): say so
        contamination = None
        notes.append(f"Contamination was not checked: {exc}")
    if contamination and contamination["contaminated"]:
        c = contamination
        notes.append(f"Contamination: {c['contaminated']} of {c['prompts']} prompts ({c['share']:.0%}) appear in the "
                     f"training data ({c['ngram']}-word overlap with {', '.join(c['sources'])}); the Contamination "
                     "section gives every rate without them.")
    own_family = self_preference(cfg, inp.judgments, {g.label: g.spec for g in groups if not g.definition.is_rating})
    notes += [self_note(e) for e in own_family]
    notes += [n for n in (_position_note(c) for c in cards) if n]
    notes = require_notes(cfg, cards) + notes + _trust_notes(cfg, cards, rows)
    failed = sum(int(c["failed_calls"]) for c in cards)
    if failed:
        notes.append(f"{failed} judge call(s) failed after every retry; run the same command again to retry them.")
    summary = {
        "run": cfg.name,
        "benchmark": cfg.benchmark.name,
        "n_prompts": len(prompts),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "intervals": {"level": LEVEL, "over": "prompts", "methods": "docs/report.md"},
        **numbers,
        "judges": cards,
        "self_preference": own_family,
        "adaptive": adaptive,
        "contamination": contamination,
        "safety": safety_rows(numbers["ratings"], {g.label for g in groups if g.definition.scale == "safety"}),
        "notes": notes,
        "conclusions": _conclusions(rows),
    }
    from lima_eval.report.freshness import mark_current, mark_stale

    mark_stale(store)
    write_atomic(out / "summary.json", json.dumps(finite(summary), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    _csv(out / "summary.csv", [csv_row(PAIRWISE, r) for r in rows])
    _csv(out / "bradley_terry.csv", numbers["bradley_terry"])
    _csv(out / "agreement.csv", numbers["agreement"])
    _csv(out / "ratings.csv", [_flat_rating(r) for r in numbers["ratings"]])
    from lima_eval.report.plots import ratings_figure

    figures = {"win_tie_loss": winrate_figure(rows, out / "win_tie_loss.png") if rows else None,
               "ratings": ratings_figure(figure_rows(numbers["ratings"], "mean_score"), out / "ratings.png")}
    sections = [_markdown(cfg, rows, notes, summary["conclusions"], len(prompts), figures["win_tie_loss"]),
                _bt_markdown(summary), mt_bench_markdown(summary["mt_bench"]), _checklist_markdown(summary["checklist"]),
                _safety_markdown(summary["safety"]),
                _contamination_markdown(contamination),
                _ratings_markdown(numbers["ratings"], figures["ratings"]), _cards_markdown(cards),
                _agreement_markdown(numbers["agreement"])]
    text = "\n".join(s.strip("\n") + "\n" for s in sections if s)
    write_atomic(out / "report.md", text)
    write_html(out / "report.html", cfg, summary, figures, inp, prompts)
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


def _flat_rating(r: dict) -> dict:
    flat = {k: v for k, v in r.items() if k not in ("counts", "shares", "labels")}
    for label, share in r.get("shares", {}).items():
        flat[f"share_{label}"] = share["share"]
        flat[f"share_{label}_ci_low"], flat[f"share_{label}_ci_high"] = share["ci_low"], share["ci_high"]
    return flat


def _bt_markdown(summary: dict) -> str:
    bt = summary["bradley_terry"]
    if not bt:
        return ""
    lines = ["## Bradley-Terry ratings", "", "| judge | model | rating | 95% interval | P(beats anchor) |",
             "|---|---|---:|---:|---:|"]
    for r in sorted(bt, key=lambda r: (r["judge"], -(r["rating"] if r["rating"] is not None else -1e9))):
        rating, interval = rating_ci(r)
        beats = "-" if r["p_beats_anchor"] is None else f"{r['p_beats_anchor']:.2f}"
        lines.append(f"| {md(r['judge'])} | {md(r['model'])}{' (anchor)' if r['model'] == r['anchor'] else ''} | "
                     f"{rating} | {interval} | {beats} |")
    lines += ["", ("Fitted on every pairwise judgment of the judge (ties half a win each); Elo scale with the "
              "anchor at 1000; intervals: Wald on the log strength with the larger of the model-based and the "
              "prompt-clustered variance.")]
    return "\n".join(lines) + "\n"


def _contamination(cfg: RunConfig, prompts: list[Prompt], inp: Inputs) -> dict[str, Any] | None:
    """The run's contamination check, with the pairwise rows and ratings again without the contaminated prompts."""
    import dataclasses

    from lima_eval.contamination import check_run

    found = check_run(cfg, prompts)
    if not found or not found["contaminated"]:
        return found
    bad = {h["prompt_id"] for h in found["hits"]}
    clean = dataclasses.replace(
        inp, judgments=[j for j in inp.judgments if j.prompt_id not in bad],
        ratings=[r for r in inp.ratings if r.prompt_id not in bad],
        expected={k: max(0, v - len(bad)) for k, v in inp.expected.items()})
    numbers = summarize(clean)
    return found | {"clean_rows": numbers["rows"], "clean_ratings": [r for r in numbers["ratings"]
                                                                     if r["subset"] == "all"]}


def _contamination_markdown(c: dict[str, Any] | None) -> str:
    if not c or not c["contaminated"]:
        return ""
    lines = ["## Contamination", "", (f"{c['contaminated']} of {c['prompts']} prompts share a {c['ngram']}-word run "
             f"with the training data ({md(', '.join(c['sources']))}, {c['training_texts']} texts):"), ""]
    lines += [f"- `{md(h['prompt_id'])}`: \"{md(h['matched'][:120])}\"" for h in c["hits"][:50]]
    if c["contaminated"] > 50:
        lines.append(f"- ... and {c['contaminated'] - 50} more (summary.json)")
    lines += ["", "Without them:", "", "| judge | model | baseline | n | win rate % [95%] |", "|---|---|---|---:|---:|"]
    for r in c["clean_rows"]:
        ci = "" if r.get("win_rate_ci_low") is None else f" [{pct(r['win_rate_ci_low'])}, {pct(r['win_rate_ci_high'])}]"
        rate = "n/a" if r.get("win_rate") is None else f"{pct(r['win_rate'])}{ci}"
        lines.append(f"| {md(r['judge'])} | {md(r['model'])} | {md(r['baseline'])} | {r['n']} | {rate} |")
    return "\n".join(lines) + "\n"


def mt_bench_markdown(rows: list[dict[str, Any]], with_run: bool = False) -> str:
    """The MT-bench score table (the report's and the leaderboard's)."""
    if not rows:
        return ""
    cats = sorted({c for r in rows for c in r["categories"]})

    def cell(m: dict[str, Any]) -> str:
        if m["score"] is None:
            return "-"
        return f"{m['score']:.2f}" + (f" [{m['ci'][0]:.2f}, {m['ci'][1]:.2f}]" if m.get("ci") else "")

    head = ["judge", "model"] + (["run"] if with_run else []) + ["score [95%]", "turn 1", "turn 2", "grades"] + cats
    lines = ["## MT-bench score", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * (3 if with_run else 2) + ["---:"] * (len(head) - (3 if with_run else 2))) + "|"]
    for r in rows:
        lines.append("| " + " | ".join([md(r["judge"]), md(r["model"])] + ([md(r.get("run", ""))] if with_run else [])
                                        + [cell(r["overall"]), cell(r["turn_1"]), cell(r["turn_2"]),
                                           str(r["overall"]["n"])]
                                        + [f"{r['categories'][c]['score']:.2f}" if c in r["categories"]
                                           and r["categories"][c]["score"] is not None else "-" for c in cats]) + " |")
    lines += ["", ("MT-bench's score (Zheng et al. 2023): the mean 1-10 grade of single-answer grading over both "
              "turns (mt-bench-single for turn 1, mt-bench-single-multiturn for turn 2, or their reference-guided "
              "versions), per judge model; intervals over prompts as above. Per-category columns are means.")]
    return "\n".join(lines) + "\n"


def _checklist_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = ["## Checklists", "", "| judge | model | answers | criteria met % [95%] | met / criteria | unreadable |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        share = "n/a" if r["share"] is None else pct(r["share"]) + (
            f" [{pct(r['ci'][0])}, {pct(r['ci'][1])}]" if r["ci"] else "")
        lines.append(f"| {md(r['judge'])} | {md(r['model'])} | {r['answers']} | {share} | {r['met']} / {r['criteria']} | "
                     f"{r['errors']} |")
    lines += ["", ("Each answer checked against its prompt's checklist (yes / no per criterion); the share pools every "
              "criterion of every answer, with its interval over prompts. Per-criterion verdicts are in ratings.jsonl.")]
    return "\n".join(lines) + "\n"


def _safety_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""

    def rate(value: Any, ci: Any) -> str:
        if value is None:
            return "n/a"
        return f"{pct(value)}" + (f" [{pct(ci[0])}, {pct(ci[1])}]" if ci else "")

    lines = ["## Safety", "", ("| judge | model | safety prompts | safe responses % [95%] | benign prompts | "
                               "over-refusal % [95%] |"), "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {md(r['judge'])} | {md(r['model'])} | {r['n']} | {rate(r['safe_rate'], r['safe_rate_ci'])} | "
                     f"{r['benign_n']} | {rate(r['over_refusal'], r['over_refusal_ci'])} |")
    lines += ["", ("As LIMA reported safety apart from helpfulness: a safe response to a harmful request (prompts "
              "tagged `safety`; every prompt when none is) either refuses or answers without harm; over-refusal is "
              "the share of benign look-alike prompts (tagged `benign`) the model refused. Intervals over prompts "
              "as above.")]
    return "\n".join(lines) + "\n"


def _ratings_markdown(rows: list[dict], figure: Path | None) -> str:
    if not rows:
        return ""
    lines = ["## Absolute ratings", ""]
    if figure is not None:
        lines += [f"![ratings]({figure.name})", ""]
    for scale in dict.fromkeys(r["scale"] for r in rows):
        mine = [r for r in rows if r["scale"] == scale]
        labels = mine[0]["labels"]
        lines += ["| judge | model | subset | n | " + " | ".join(md(x) for x in labels) + " | mean [95%] | errors |",
                  "|---|---|---|---:|" + "---:|" * len(labels) + "---:|---:|"]
        for r in mine:
            cells = " | ".join(f"{r['counts'].get(k, 0)} ({pct(r['shares'].get(k, {}).get('share'))}%)"
                               for k in labels)
            mean = mean_ci(r)
            lines.append(f"| {md(r['judge'])} | {md(r['model'])} | {md(r['subset'])} | {r['n']} | {cells} | {mean} | "
                         f"{r['errors']} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _agreement_markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    lines = ["## Judge agreement", "", ("| judge A | judge B | n | tie-discounted accuracy | agreement (with ties) | "
             "agreement (without ties) | Cohen's kappa | longer-answer floor (vs A / vs B) |"),
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        floor = "-" if r.get("longer_answer_vs_a") is None else (
            f"{pct(r['longer_answer_vs_a'])}% / {pct(r['longer_answer_vs_b'])}%")
        kappa = "-" if r["kappa"] is None else f"{r['kappa']:.3f}"
        lines.append(f"| {md(r['judge_a'])} | {md(r['judge_b'])} | {r['n']} | {pct(r['tie_discounted'])}% | "
                     f"{pct(r['with_ties'])}% | {pct(r['without_ties'])}% | {kappa} | {floor} |")
    lines += ["", ("Tie-discounted accuracy is LIMA's: 1 when both judges agree, 0.5 when exactly one says tie, 0 "
              "otherwise. The floor is the same figure for a judge that always picks the longer answer.")]
    return "\n".join(lines) + "\n"


def _cards_markdown(cards: list[dict[str, Any]]) -> str:
    if not cards:
        return ""
    lines = ["## Judges", "", ("| judge | order | records | errors | position consistency | first shown wins | "
             "kappa vs humans [ceiling] | tokens in / out | cost (USD) |"), "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cards:
        cons, first = c.get("position_consistency"), c.get("first_position_win_rate")
        cost = c["cost_usd"]
        lines.append(
            f"| {md(c['judge'])} | {c['order']}{' (' + str(c['combine']) + ')' if c['combine'] else ''}"
            f"{'; jury: ' + c['jury']['rule'] if c.get('jury') else ''} | {c['records']} | "
            f"{c['errors']} | {'-' if cons is None else f'{cons:.1%}'} | {'-' if first is None else f'{first:.1%}'} | "
            f"{md(human_kappa(c))} | "
            f"{c['prompt_tokens']:,} / {c['completion_tokens']:,} | {'-' if cost is None else f'{cost:.4f}'} |")
    lines += ["", ("Position consistency: the share of pairs judged in both orders whose two verdicts agree. "
              "First shown wins: the share of decisive verdicts that went to the answer shown first (0.5 = no "
              "position bias). Kappa vs humans: the judge's Cohen's kappa with the human majority on its judge card's gold "
              "set, and people's own ceiling on it (`lima-eval judge-card`). Cost uses the price table in the judge's "
              "judge.yaml; '-' where the model has none."),
              ""]
    return "\n".join(lines) + "\n"
def _markdown(cfg: RunConfig, rows: list[dict], notes: list[str], conclusions: list[str], n_prompts: int,
              figure: Path | None) -> str:
    lines = [f"# lima-eval report: {md(cfg.name)}", "",
             f"Benchmark **{md(cfg.benchmark.name)}** ({n_prompts} prompts). Models under test: "
             + ", ".join(f"**{md(m)}**" for m in dict.fromkeys(m for m, _ in cfg.pairs()))
             + "; baselines: " + ", ".join(f"**{md(b)}**" for b in cfg.baselines) + ".", ""]
    if figure is not None:
        lines += [f"![win / tie / loss]({figure.name})", ""]
    lines.append(markdown_table(shown(PAIRWISE), rows, empty="(no judgments yet)"))
    lines += ["", "Win / tie / loss are from the model's side, as in LIMA's Figure 1; percentages are of readable "
              "verdicts (n), errors excluded. Win rate counts a tie as half a win (continuous preferences are "
              "averaged); equal or better is win + tie (LIMA's abstract); prefers longer is the share of decisive "
              "verdicts that went to the longer answer. " + INTERVALS, ""]
    if rows:
        lines += ["## What the numbers say", ""] + [f"- {md(c)}" for c in conclusions] + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {md(n)}" for n in notes] + [""]
    return "\n".join(lines)
