"""The judges of a report: per judge its order effects, errors, tokens and cost, its card against people, a
jury's make-up, and the notes on how far to trust each (position bias, length preference, `require:` bounds)."""

from __future__ import annotations

import re
from collections import Counter
from operator import attrgetter, eq
from pathlib import Path
from shlex import quote
from typing import Any

import numpy as np

from lima_eval.config import JudgeSpec, RunConfig
from lima_eval.judging.cards import find_cards
from lima_eval.judging.definitions import judge_price, load_definition
from lima_eval.judging.items import judge_label
from lima_eval.judging.jury import queue_path
from lima_eval.records import Judgment
from lima_eval.report.columns import inline, md, percent, table
from lima_eval.report.gather import JudgeRecords
from lima_eval.report.html import human_kappa
from lima_eval.report.metrics import PositionStats, combine_orders, position_stats, records_cost, usage_totals
from lima_eval.report.sections import Context, Section
from lima_eval.report.stats import LEVEL, critical, wilson

EXPLAINED = ("Position consistency: the share of pairs judged in both orders whose two verdicts agree. "
             "First shown wins: the share of decisive verdicts that went to the answer shown first (0.5 = no "
             "position bias). Kappa vs humans: the judge's Cohen's kappa with the human majority on its judge card's "
             "gold set, and people's own ceiling on it (`lima-eval judge-card`). Cost: the tokens at the prices in "
             "`judges/prices.yaml` (USD per 1M tokens; a judge's judge.yaml may add or override entries under "
             "`prices:`); n/a where the model has no price there. A judge whose two orders agree on fewer than half "
             "of the pairs, or whose decisive verdicts go more than three times in four to one position, could not "
             "tell the answers apart (docs/report.md).")


class Judges(Section):
    key, title, rank, place = "judges", "Judges", 70, 90

    def compute(self, ctx: Context) -> list[dict[str, Any]]:
        cfg, store = ctx.run
        cards = judge_cards(ctx.groups, Path(cfg.output_dir), store.root) + imported_cards(ctx.inp.imported)
        ctx.shared["require_notes"] = require_notes(cfg, cards)  # marks each card trusted or not
        for c in cards:
            if "position_consistency" in c:  # a pairwise judge
                c["cannot_tell_apart"] = cannot_tell_apart(c)
        return cards

    def notes(self, data: list[dict[str, Any]], ctx: Context) -> list[tuple[int, str]]:
        cfg, store = ctx.run
        out = [(0, n) for n in ctx.shared.get("require_notes", [])]
        out += [(50, _jury_note(c, store.root)) for c in data if c.get("jury")]
        out += [(80, n) for n in (_position_note(c) for c in data) if n]
        out += [(90, n) for n in _trust_notes(cfg, data, ctx.data.get("rows") or [])]
        failed = sum(int(c["failed_calls"]) for c in data)
        if failed:
            out.append((100, (f"{failed} judge call(s) failed after every retry; run the same command again to "
                             "retry them.")))
        return out

    def markdown(self, data: list[dict[str, Any]], ctx: Context) -> str:
        if not data:
            return ""
        lines = ["## Judges", "", ("| judge | order | records | errors | position consistency | first shown wins | "
                 "kappa vs humans [ceiling] | tokens in / out | cost (USD) |"),
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for c in data:
            cons, first = c.get("position_consistency"), c.get("first_position_win_rate")
            cost = c["cost_usd"]
            lines.append(
                f"| {md(c['judge'])} | {c['order']}{' (' + str(c['combine']) + ')' if c['combine'] else ''}"
                f"{'; jury: ' + c['jury']['rule'] if c.get('jury') else ''} | {c['records']} | "
                f"{c['errors']} | {percent(cons)} | {percent(first)} | {md(human_kappa(c))} | "
                f"{c['prompt_tokens']:,} / {c['completion_tokens']:,} | {'n/a' if cost is None else f'{cost:.4f}'} |")
        lines += ["", EXPLAINED, ""]
        return "\n".join(lines) + "\n"

    def html(self, data: list[dict[str, Any]], ctx: Context) -> list[str]:
        if not data:
            return []
        return ["<h2>Judges</h2>", table(
            ["judge", "order", "records", "errors", "failed calls", "position consistency", "first shown wins",
             "kappa vs humans [ceiling]", "tokens in / out", "cost (USD)"],
            [[c["judge"], c["order"] + (f" ({c['combine']})" if c["combine"] else "")
              + (f"; jury: {c['jury']['rule']}" if c.get("jury") else ""), c["records"], c["errors"],
              c["failed_calls"], percent(c.get("position_consistency")), percent(c.get("first_position_win_rate")),
              human_kappa(c), f"{c['prompt_tokens']:,} / {c['completion_tokens']:,}",
              "n/a" if c["cost_usd"] is None else f"{c['cost_usd']:.4f}"] for c in data]),
            f'<p class="note">{inline(EXPLAINED)}</p>']


def _trust_notes(cfg: RunConfig, cards: list[dict[str, Any]], rows: list[dict]) -> list[str]:
    """How far to trust each judge, from the run itself and its card: a length preference whose interval excludes
    one half, a parse-error share over 5%, and the card against human labels (or the command that makes one)."""
    notes = []
    for r in rows:
        low = r.get("prefers_longer_ci_low")
        if isinstance(low, float) and low > 0.5:
            notes.append(f"`{r['judge']}` gave {float(r['prefers_longer']):.0%} of its decisive verdicts "
                         f"on {r['model']} vs {r['baseline']} to the longer answer (95% interval from {low:.0%}): "
                         "check the length-controlled column before reading the win rate as quality.")
    specs = {judge_label(s): s for s in cfg.all_judges()}
    carded = {label for label, s in specs.items() if load_definition(s.name).judge_kind.supports_cards}
    for c in cards:
        if c.get("records") and c["errors"] / c["records"] > 0.05:
            notes.append(f"`{c['judge']}`: {c['errors']} of {c['records']} replies ({c['errors'] / c['records']:.0%}) "
                         "had no readable verdict.")
        if c["judge"] not in carded:  # imported judges, and kinds a card cannot measure (ratings, checklists)
            continue
        hc = c.get("human_card")
        if hc and hc.get("kappa") is not None:
            notes.append(f"`{c['judge']}` against people ({hc['gold']}, {hc['judged']} items): Cohen's kappa "
                         f"{hc['kappa']:.2f} with the human majority, where people agree with each other at "
                         f"{float(hc['ceiling_kappa'] or 0):.2f} (card: {hc['path']}).")
        else:
            spec = specs[c["judge"]]
            sets = (f" --set {quote('backend=' + spec.backend)} --set {quote('model=' + spec.model)}"
                    if spec.model else "")
            what = f"{quote(spec.name)} --gold pandalm{sets}"
            if spec.jury:  # a jury's section is in the run's config (the card reads its `judge:`)
                what = ((quote(str(cfg.run_dir / "config.yaml")) if spec is cfg.judge else "JURY.yaml")
                        + " --gold pandalm")
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


def cannot_tell_apart(card: dict[str, Any], level: float = LEVEL) -> str | None:
    """Why a pairwise judge's verdicts follow where the answers were shown rather than the answers, or None. It
    fails its own consistency checks when the pairs it judged in both orders got the same verdict in both less
    often than not (the 95% interval of that share below 1/2), or when the answer shown first (or second) got
    more than three in four of its decisive verdicts (the interval of that share above 3/4, or below 1/4):
    position then decided more of its verdicts than the answers did (docs/report.md)."""
    pairs, agree = card.get("pairs_both_orders"), card.get("position_consistency")
    if isinstance(pairs, int) and pairs >= 2 and isinstance(agree, float):
        lo, hi = _interval(agree, pairs, level)
        if hi < 0.5:
            return (f"its two orders agreed on {round(agree * pairs)} of {pairs} pairs ({agree:.0%}, 95% interval "
                    f"{lo:.0%} - {hi:.0%})")
    share, decisive = card.get("first_position_win_rate"), card.get("decisive_verdicts")
    if isinstance(decisive, int) and decisive >= 2 and isinstance(share, float):
        lo, hi = _interval(share, decisive, level)
        if lo > 0.75 or hi < 0.25:
            return (f"{share:.0%} of its {decisive} decisive verdicts went to the answer shown first (95% interval "
                    f"{lo:.0%} - {hi:.0%})")
    return None


def _interval(share: float, n: int, level: float) -> tuple[float, float]:
    lo, hi = wilson(np.array(share), np.array(float(n)), critical(level, n - 1))
    return float(lo), float(hi)


def _position_note(card: dict[str, Any]) -> str | None:
    """A note when a judge clearly favours one position: the first-shown answer's share of its decisive
    verdicts has a 95% interval that excludes one half."""
    share, decisive = card.get("first_position_win_rate"), card.get("decisive_verdicts")
    if not isinstance(share, float) or not isinstance(decisive, int) or decisive < 2:
        return None
    lo, hi = (float(x) for x in wilson(np.array(share), np.array(float(decisive)), critical(LEVEL, decisive - 1)))
    if lo <= 0.5 <= hi:
        return None
    side = "first" if share > 0.5 else "second"
    agreed = f"{float(card.get('position_consistency') or 0):.0%}"
    if card.get("order") == "both" and card.get("cannot_tell_apart"):
        fix = (f"Judging each pair in both orders cannot cancel a bias this strong: the two orders agreed on {agreed} "
               "of pairs, the pairs they disagreed on count as ties, and its win rates are no finding (What the "
               "numbers say).")
    elif card.get("order") == "both":
        fix = ("Each pair was judged in both orders, so this cancels out of the win rates (the two orders agreed on "
               f"{agreed} of pairs).")
    elif card.get("order") == "both-if-close":
        fix = ("With `order: both-if-close`, only pairs whose first verdict was close were judged in both orders; the "
               "confident ones stand on one order, where this bias can still sway them.")
    else:
        fix = "With `order: random` it adds noise to every verdict; `order: both` (the default) cancels it out."
    return (f"`{card['judge']}` favours the answer shown {side}: {share:.0%} of its {decisive} decisive verdicts went "
            f"to the first-shown answer (95% interval {lo:.0%} - {hi:.0%}). {fix}")


def human_card(results: Path | None, spec: JudgeSpec) -> dict[str, Any] | None:
    """The judge's card against human gold labels (lima-eval judge-card), when one exists under RESULTS."""
    if results is None:
        return None
    found = find_cards(results, spec)
    if not found:
        return None
    c = found[0]
    vs, ceiling = c.get("vs_human_majority") or {}, c.get("human_ceiling") or {}
    flips = (c.get("stability") or {}).get("flip_rate") or {}
    return {"gold": c.get("gold"), "judged": c.get("judged"), "kappa": vs.get("kappa"), "kappa_ci": vs.get("kappa_ci"),
            "tie_discounted": vs.get("tie_discounted"), "ceiling_kappa": ceiling.get("kappa"),
            "flip_rate": flips.get("share"), "flip_rate_ci": flips.get("ci"), "path": c.get("path")}




def judge_quality(card: dict[str, Any], bound: str, level: float = LEVEL) -> tuple[float, float, float, int] | str:
    """(value, interval low, interval high, n) of one quality bound for a judge's report card, or why there is
    none: kappa with humans (its judge card), position bias |first-shown share - 1/2| (this run), flip rate
    across repeats (its judge card, made with --repeats)."""
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
        cost = records_cost(records, None if g.spec.jury else judge_price(g.spec))
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
    # A million imported judgments: the fields are read by C-level maps, and the common cases (one judge, no
    # usage, no errors) need no Python step per record.
    seen = set(map(attrgetter("judge", "shown_first"), imported))  # (judge, order shown) met
    if len({judge for judge, _ in seen}) == 1 and all(shown is not None for _, shown in seen):
        by_judge = {next(iter(seen))[0]: imported}
    else:
        by_judge = {}
        for j in imported:
            if j.shown_first is not None:
                by_judge.setdefault(j.judge, []).append(j)
    cards = []
    for label, records in by_judge.items():
        st = _position_stats(records, label) if records is imported else position_stats(records, label)
        plain = list(map(attrgetter("error", "error_kind", "usage"), records)).count((None, None, {}))
        pin, pout = (0, 0) if plain == len(records) else usage_totals(records)
        errors = 0 if plain == len(records) else sum(1 for r in records if r.error and r.error_kind != "abstain")
        abstained = 0 if plain == len(records) else sum(1 for r in records if r.error_kind == "abstain")
        cards.append({
            "judge": label, "definition": "imported", "kind": "pairwise", "order": "both", "combine": "tie",
            "logprobs": False, "records": len(records),
            "errors": errors, "abstained": abstained,
            "failed_calls": 0, "prompt_tokens": pin, "completion_tokens": pout, "cost_usd": None,
            "pairs_both_orders": st.pairs_both_orders, "decisive_verdicts": st.decisive,
            "position_consistency": None if st.consistency is None else round(st.consistency, 4),
            "first_position_win_rate": None if st.first_win_rate is None else round(st.first_win_rate, 4)})
    return cards


def _position_stats(records: list[Judgment], judge: str) -> PositionStats:
    """position_stats of one judge's records, every one shown in a known order. When no item was judged twice
    (each pair seen in one order: no two records share their answers), no pair has both orders, and the verdicts
    are counted by C-level maps instead of a Python step per record (a million imported judgments)."""
    if len(set(map(attrgetter("generation_a", "generation_b"), records))) < len(records):
        return position_stats(records, judge)  # some answers judged twice (or unknown): pair them up
    verdicts = list(map(attrgetter("verdict"), records))
    return PositionStats(judge=judge, decisive=len(verdicts) - verdicts.count(None) - verdicts.count("tie"),
                         first_won=sum(map(eq, verdicts, map(attrgetter("shown_first"), records))))
