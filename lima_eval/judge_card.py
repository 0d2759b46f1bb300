"""Judge cards: a pairwise judge measured against people on a gold set (`lima-eval judge-card`).

The gold items become a run of imports in RESULTS/judge-cards/<judge>-<gold>-<identity>/ (the answers as imported
generations, every pair judged in both orders), so the judge runs through the same stage as in any run: resumable,
and every reply through the judge cache (a second card costs nothing). `--repeats K` judges each item K times
with seeds 0..K-1 (recorded) to measure how much the verdicts move. The card (judge_card.json, judge_card.md)
holds, each with a 95% bootstrap interval over items and its n:
- agreement with the human majority (LIMA's tie-discounted accuracy, agreement with and without ties, Cohen's
  kappa), next to the human-human ceiling (each annotator against the others' majority) and floors (always the
  first model, always the longer answer, a random judge);
- position consistency and the share of decisive verdicts that went to the answer shown first;
- length bias: the share of decisive verdicts that went to the longer answer, and the humans' share on the items;
- stability across repeats: the flip rate and Fleiss' kappa;
- parse errors and failed calls; tokens, cost and wall time per 1,000 judgments.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lima_eval.config import (
    IMPORTED,
    BenchmarkSpec,
    JudgeSpec,
    ModelSpec,
    RunConfig,
    _line_of,
    _set_path,
    build_section,
    needs_model,
    parse_overrides,
    to_plain,
    validate_judge,
)
from lima_eval.errors import ConfigError, InputError
from lima_eval.inputs import load_yaml, read_text
from lima_eval.judging.cards import CARD, CARD_MD, judge_identity
from lima_eval.judging.definitions import judge_price, load_definition
from lima_eval.judging.gold import GoldItem, load_gold
from lima_eval.judging.items import judge_label
from lima_eval.judging.jury import check_jurors
from lima_eval.judging.stage import answers_on_disk, plan
from lima_eval.lock import RunLock
from lima_eval.pipeline import judge_stage
from lima_eval.records import Generation, Judgment, Prompt, content_id
from lima_eval.registry import BACKENDS
from lima_eval.report.columns import md
from lima_eval.report.metrics import combine_orders, records_cost, usage_totals
from lima_eval.report.stats import agreement
from lima_eval.store import RunStore, append_jsonl, read_jsonl

RESAMPLES = 1000
METRICS = ("tie_discounted", "with_ties", "without_ties", "kappa")


def judge_section(judge: str, overrides: Sequence[str] = ()) -> JudgeSpec:
    """The judge a card is made of: a judge name or folder with --set keys, or a YAML file holding a judge
    section or a run config (its `judge:`, e.g. RUN/config.yaml), --set keys applied on top. Checked strictly."""


    path = Path(judge)
    data: Any = {"name": judge}
    text, bare = "", True
    if judge.endswith((".yaml", ".yml")) and path.is_file():
        try:
            text = read_text(path)
            data = load_yaml(text, path)
        except InputError as exc:
            raise ConfigError(str(exc)) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(f"{path}{f', line {mark.line + 1}' if mark else ''}: not valid YAML") from None
        if isinstance(data, dict) and isinstance(data.get("judge"), dict):
            data, bare = data["judge"], False
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a judge section (a mapping) or a run config with a judge:")
    try:
        section = dict(data)
        for key, value in parse_overrides(list(overrides)):

            _set_path(section, key, value)
        spec = build_section(JudgeSpec, section, "judge")
        validate_judge(spec, "judge")
    except ConfigError as exc:
        if not text:
            raise
        at = _line_of(text, re.search(r"config key '(?:judge\.)?([^']+)'" if bare else r"config key '([^']+)'",
                                      str(exc)))
        raise ConfigError(f"{path}{f', line {at}' if at else ''}: {exc}") from None
    return spec


def card_folder(results: Path, spec: JudgeSpec, gold_name: str) -> Path:
    """Where the card of this judge (its definition, endpoint identity) on this gold set lives."""
    key = content_id("judge-card", judge_identity(spec), gold_name)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{judge_label(spec)}-{gold_name}").strip("_")
    return Path(results) / "judge-cards" / f"{slug}-{key[:10]}"


def make_card(spec: JudgeSpec, gold: str, results: Path, limit: int | None = None, repeats: int = 1,
              show: bool = True, use_cache: bool = True) -> Path:
    """Judge the gold set (both orders, `repeats` seeds), write the card; returns the card's folder."""
    if repeats < 1:
        raise ConfigError(f"--repeats: {repeats} is out of range (must be >= 1)")
    definition = load_definition(spec.name)
    if not definition.judge_kind.supports_cards:
        raise ConfigError(f"judge '{spec.name}' rates single answers; a card measures a pairwise judge")
    # A card always sees both orders (a jury keeps its own combine rule: that is what the card measures).
    spec = dataclasses.replace(spec, order="both", combine=spec.combine if spec.jury else "tie")
    if spec.jury:

        check_jurors(spec)
    for endpoint in spec.jury or [spec]:
        BACKENDS.load(endpoint.backend).preflight(endpoint)
    gold_name, items = load_gold(gold, limit)
    if not spec.jury:
        needs_model(spec, "judge")
    folder = card_folder(results, spec, gold_name)
    models = sorted({m for i in items for m in (i.model_a, i.model_b)})
    prompts = [Prompt(id=i.id, text=i.prompt) for i in items]
    cfg = RunConfig(name=folder.name, output_dir=str(folder.parent), round_robin=True, baselines=[], judge=spec,
                    benchmark=BenchmarkSpec(name=IMPORTED, path=str(folder / "prompts.jsonl")),
                    models=[ModelSpec(name=m, backend=IMPORTED, model=f"imported:{m}") for m in models])
    by_id = {p.id: p for p in prompts}
    per_repeat: list[list[Judgment]] = []
    calls, started = 0, time.monotonic()
    with RunLock(folder):
        store = RunStore(folder)
        store.write_config(to_plain(cfg))
        known = {str(r.get("id")) for r in read_jsonl(folder / "prompts.jsonl")}
        append_jsonl(folder / "prompts.jsonl", [{"id": p.id, "prompt": p.text} for p in prompts if p.id not in known])
        have = store.generations()  # read once: the repeats add to it in memory as they write
        wanted: list[list[str]] = []
        for seed in range(repeats):
            cfg_k = dataclasses.replace(cfg, seed=seed)
            new = []
            for item in items:
                for model, text in ((item.model_a, item.answer_a), (item.model_b, item.answer_b)):
                    gid = cfg_k.generation_ids(cfg_k.model(model))(by_id[item.id], 0)
                    if gid not in have:
                        have[gid] = Generation(id=gid, prompt_id=item.id, model=model, text=text, backend=IMPORTED,
                                               finish_reason="imported")
                        new.append(have[gid])
            store.append_generations(new)
            answers = answers_on_disk(cfg_k, prompts, have)
            counts, _ = judge_stage(cfg_k, spec, prompts, store, show, use_cache, answers)
            calls += counts.calls
            wanted.append([i.id for i in plan(cfg_k, spec, prompts, store, answers).items])
        judged = store.judgments()  # once, after every repeat has written its verdicts
        per_repeat = [[judged[i] for i in ids if i in judged] for ids in wanted]
        wall = time.monotonic() - started
        card = compute_card(items, per_repeat, price=None if spec.jury else judge_price(spec))
        card |= {"judge": judge_label(spec), "identity": judge_identity(spec), "definition": definition.name,
                 "model": "+".join(m.model for m in spec.jury) if spec.jury else spec.model,
                 "backend": "jury" if spec.jury else spec.backend,
                 "jury": [judge_label(m) for m in spec.jury] or None, "combine": spec.jury_rule if spec.jury else None,
                 "gold": gold_name, "repeats": repeats, "seeds": list(range(repeats)), "new_calls": calls,
                 "wall_s": round(wall, 3),
                 "wall_s_per_1000": round(1000 * wall / max(1, card["records"]), 3) if card["records"] else None}
        (folder / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        (folder / CARD_MD).write_text(card_markdown(card), encoding="utf-8")
    return folder


# --- the numbers -------------------------------------------------------------------------------------------


def _majority(votes: Sequence[int]) -> int:
    counts = Counter(votes).most_common()
    return 0 if len(counts) > 1 and counts[0][1] == counts[1][1] else counts[0][0]


def combined_verdicts(items: dict[str, GoldItem], judgments: list[Judgment]) -> dict[str, int | None]:
    """Per gold item, the judge's verdict over both orders (they must agree, else a tie), as +1 (model_a's answer
    better) / 0 / -1, or None where a reply could not be read."""

    out: dict[str, int | None] = {}
    for j in combine_orders(judgments, "tie"):
        item = items.get(j.prompt_id)
        if item is None:
            continue
        winner = j.winner
        out[item.id] = None if winner is None else 0 if winner == "tie" else (1 if winner == item.model_a else -1)
    return out


def _with_interval(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """agreement(x, y) with a 95% percentile bootstrap interval over items for each figure."""
    point = agreement(x, y)
    out: dict[str, Any] = {"n": len(x)}
    if not len(x):
        return out | {m: None for m in METRICS}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(RESAMPLES):
        idx = rng.integers(0, len(x), len(x))
        boot = agreement(x[idx], y[idx])
        for m in METRICS:
            if boot[m] is not None:
                draws[m].append(float(boot[m]))  # type: ignore[arg-type]
    for m in METRICS:
        value = point[m]
        lo, hi = (np.percentile(draws[m], [2.5, 97.5]) if len(draws[m]) > 1 else (np.nan, np.nan))
        out[m] = None if value is None else round(float(value), 4)
        out[m + "_ci"] = None if value is None or np.isnan(lo) else [round(float(lo), 4), round(float(hi), 4)]
    return out


def _share(hits: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """A share with its 95% percentile bootstrap interval over items."""
    if not len(hits):
        return {"share": None, "ci": None, "n": 0}
    rng = np.random.default_rng(seed)
    boots = [float(hits[rng.integers(0, len(hits), len(hits))].mean()) for _ in range(RESAMPLES)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"share": round(float(hits.mean()), 4), "ci": [round(float(lo), 4), round(float(hi), 4)], "n": len(hits)}


def fleiss_kappa(table: np.ndarray) -> float | None:
    """Fleiss' kappa of an items x categories count table (every item rated by the same number of raters)."""
    if table.size == 0:
        return None
    raters = table.sum(axis=1)
    if raters.min() < 2 or raters.min() != raters.max():
        return None
    k = float(raters[0])
    p_item = ((table * (table - 1)).sum(axis=1)) / (k * (k - 1))
    p_cat = table.sum(axis=0) / table.sum()
    pe = float((p_cat ** 2).sum())
    return None if pe >= 1 else round((float(p_item.mean()) - pe) / (1 - pe), 4)


def compute_card(items: list[GoldItem], per_repeat: list[list[Judgment]],
                 price: dict[str, float] | None = None) -> dict[str, Any]:
    """Every figure of a card, from the gold items and the judge's judgments of each repeat."""
    gold = {i.id: i for i in items}
    first = combined_verdicts(gold, per_repeat[0])
    read = [i for i in items if first.get(i.id) is not None]
    x = np.array([first[i.id] for i in read], dtype=np.int64)
    y = np.array([i.majority for i in read], dtype=np.int64)
    longer = np.array([np.sign(len(i.answer_a) - len(i.answer_b)) for i in read], dtype=np.int64)
    card: dict[str, Any] = {"items": len(items), "judged": len(read),
                            "vs_human_majority": _with_interval(x, y)}
    # The ceiling: each annotator against the majority of the others, on the items the judge was scored on.
    names = sorted({a for i in read for a, _ in i.labels})
    per_annotator: dict[str, dict[str, Any]] = {}
    for name in names:
        mine, others = [], []
        for i in read:
            own = [v for a, v in i.labels if a == name]
            rest = [v for a, v in i.labels if a != name]
            if own and rest:
                mine.append(own[0])
                others.append(_majority(rest))
        per_annotator[name] = agreement(np.array(mine), np.array(others))
    pairs = {}
    for a_i, a in enumerate(names):
        for b in names[a_i + 1:]:
            both = [(dict(i.labels)[a], dict(i.labels)[b]) for i in read if a in dict(i.labels) and b in dict(i.labels)]
            if both:
                arr = np.array(both)
                pairs[f"{a}|{b}"] = {k: (round(float(v), 4) if isinstance(v, float) else v)
                                     for k, v in agreement(arr[:, 0], arr[:, 1]).items()}
    card["human_ceiling"] = {
        m: (round(float(np.mean([r[m] for r in per_annotator.values() if r[m] is not None])), 4)
            if any(r[m] is not None for r in per_annotator.values()) else None) for m in METRICS
    } | {"annotators": len(names), "method": "each annotator against the majority of the others (mean)",
         "pairs": pairs}
    # Floors on the same items.
    ties = y == 0
    card["floors"] = {
        "always_model_a": {k: (round(float(v), 4) if isinstance(v, float) else v)
                           for k, v in agreement(np.ones_like(y), y).items()},
        "always_longer": {k: (round(float(v), 4) if isinstance(v, float) else v)
                          for k, v in agreement(longer, y).items()},
        # A judge picking uniformly among the three verdicts: 1/3 exact; half credit when exactly one says tie.
        "random": {"n": len(y), "tie_discounted": round(float(np.mean(1 / 3 + 0.5 * np.where(ties, 2 / 3, 1 / 3))),
                                                                4) if len(y) else None,
                   "with_ties": round(1 / 3, 4), "without_ties": 0.5, "kappa": 0.0},
    }
    # Position: the two orders of an item, each read alone.
    orders: dict[str, dict[str, Judgment]] = {}
    for j in per_repeat[0]:
        if j.shown_first in ("a", "b") and j.verdict is not None:
            orders.setdefault(j.prompt_id, {})[j.shown_first] = j
    paired = [o for o in orders.values() if len(o) == 2]
    consistent = np.array([o["a"].verdict == o["b"].verdict for o in paired], dtype=float)
    decisive = [j for o in orders.values() for j in o.values() if j.verdict in ("a", "b")]
    card["position"] = {"consistency": _share(consistent),
                        "first_shown_wins": _share(np.array([j.verdict == j.shown_first for j in decisive],
                                                            dtype=float))}
    # Length: decisive verdicts between answers of different lengths.
    pick = (x != 0) & (longer != 0)
    human_pick = (y != 0) & (longer != 0)
    card["length"] = {"judge_prefers_longer": _share((x[pick] == longer[pick]).astype(float)),
                      "humans_prefer_longer": _share((y[human_pick] == longer[human_pick]).astype(float))}
    # Stability across repeats.
    if len(per_repeat) > 1:
        runs = [combined_verdicts(gold, js) for js in per_repeat]
        complete = [i.id for i in items if all(r.get(i.id) is not None for r in runs)]
        table = np.array([[sum(1 for r in runs if r[i] == c) for c in (1, 0, -1)] for i in complete], dtype=float)
        flips = np.array([len({r[i] for r in runs}) > 1 for i in complete], dtype=float)
        card["stability"] = {"flip_rate": _share(flips), "fleiss_kappa": fleiss_kappa(table), "n": len(complete)}
    else:
        card["stability"] = None
    records = [j for js in per_repeat for j in js]
    pin, pout = usage_totals(records)
    cost = records_cost(records, price)
    card |= {"records": len(records), "parse_errors": sum(1 for r in records if r.error_kind == "parse"),
             "failed_calls": sum(1 for r in records if r.error_kind == "call"), "prompt_tokens": pin,
             "completion_tokens": pout, "cost_usd": None if cost is None else round(cost, 6),
             "cost_usd_per_1000": None if cost is None or not records else round(1000 * cost / len(records), 6),
             "resamples": RESAMPLES, "level": 0.95}
    return card


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def _ci(d: dict[str, Any] | None, key: str, pct: bool = False) -> str:
    if not d or d.get(key) is None:
        return "-"
    ci = d.get(key + "_ci")
    return _fmt(d[key], pct) + (f" [{_fmt(ci[0], pct)}, {_fmt(ci[1], pct)}]" if ci else "")


def _share_text(d: dict[str, Any] | None) -> str:
    if not d or d.get("share") is None:
        return "-"
    return f"{100 * d['share']:.1f}% [{100 * d['ci'][0]:.1f}, {100 * d['ci'][1]:.1f}] (n={d['n']})"


def card_markdown(card: dict[str, Any]) -> str:

    v, c, f = card["vs_human_majority"], card["human_ceiling"], card["floors"]
    rows = [("tie-discounted accuracy (LIMA)", "tie_discounted"), ("agreement with ties (MT-bench)", "with_ties"),
            ("agreement without ties (MT-bench)", "without_ties"), ("Cohen's kappa", "kappa")]
    lines = [f"# Judge card: {md(card['judge'])} on {md(card['gold'])}", "",
             (f"{card['judged']} of {card['items']} gold items judged (both orders; {card['repeats']} repeat(s), "
              f"seeds {card['seeds']}). Intervals: 95% bootstrap over items ({card['resamples']} resamples)."), "",
             "| vs the human majority | judge | human ceiling | always model A | always longer | random |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, key in rows:
        pct = key != "kappa"
        lines.append(f"| {name} | {_ci(v, key, pct)} | {_fmt(c.get(key), pct)} | "
                     f"{_fmt(f['always_model_a'].get(key), pct)} | "
                     f"{_fmt(f['always_longer'].get(key), pct)} | {_fmt(f['random'].get(key), pct)} |")
    st = card["stability"]
    lines += ["", "| bias and stability | value |", "|---|---:|",
              f"| position consistency (both orders agree) | {_share_text(card['position']['consistency'])} |",
              f"| decisive verdicts for the answer shown first | {_share_text(card['position']['first_shown_wins'])} |",
              (f"| decisive verdicts for the longer answer (judge) | "
               f"{_share_text(card['length']['judge_prefers_longer'])} |"),
              (f"| decisive verdicts for the longer answer (humans) | "
               f"{_share_text(card['length']['humans_prefer_longer'])} |"),
              f"| flip rate across repeats | {_share_text(st['flip_rate']) if st else '- (use --repeats K)'} |",
              f"| Fleiss' kappa across repeats | {_fmt(st['fleiss_kappa']) if st else '-'} |",
              "", "| cost | value |", "|---|---:|",
              (f"| judgments | {card['records']} ({card['parse_errors']} parse errors, "
               f"{card['failed_calls']} failed calls) |"),
              f"| tokens in / out | {card['prompt_tokens']:,} / {card['completion_tokens']:,} |",
              f"| cost per 1,000 judgments (USD) | {_fmt(card['cost_usd_per_1000'])} |",
              (f"| wall time per 1,000 judgments (s) | {_fmt(card['wall_s_per_1000'])} (this card: "
               f"{card['new_calls']} new calls) |"), ""]
    return "\n".join(lines)
