"""Judgments and ratings -> the numbers of a report (the `summary.json` contract), computed column-wise.

Rows are (model, baseline, judge). Human labels count per annotator (pooled in the `human` row); a judge
with `order: both` counts per its `combine` rule. Rates are fractions of readable verdicts; errors are
counted apart and never enter a rate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations
from operator import attrgetter
from typing import Any

import numpy as np

from lima_eval.records import HUMAN, Generation, Judgment, Rating
from lima_eval.report.stats import (
    LEVEL,
    PairTable,
    agreement,
    bradley_terry_intervals,
    clustered_rates,
    elo_scale,
    length_controlled,
    longer_answer_share,
    row_stats,
)
from lima_eval.scales import scale as scale_of

NO_VERDICTS = "no readable verdicts"
ONE_PROMPT = "one prompt (an interval needs two)"
NO_DECISIVE = "no decisive verdict between answers of known, different lengths"  # decisive: a win or a loss


def _r(x: Any, nd: int = 6) -> Any:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else round(x, nd)


@dataclass
class Inputs:
    """What a summary is computed from."""

    judgments: list[Judgment]  # model, human and imported judgments (order-both already combined)
    ratings: list[Rating]
    generations: dict[str, Generation]
    pairs: list[tuple[str, str]]  # (model, baseline) the config asks for, in order
    baselines: list[str]
    rating_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # judge or scale name -> labels
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # prompt id -> tags
    seed: int = 0  # the run seed (the intervals are analytic and use none)
    # (model, baseline, judge) -> prompts the run's config asks that judge about for that pair: a row's
    # `missing` is those without any judgment (an answer failed, or the pair is not judged yet).
    expected: dict[tuple[str, str, str], int] = field(default_factory=dict)
    imported: list[Judgment] = field(default_factory=list)  # imported judgments as stored (both orders apart)
    resamples: int = 0  # unused since the intervals are analytic (docs/report.md); kept for callers that pass it
    categories: dict[str, str] = field(default_factory=dict)  # prompt id -> its category (MT-bench's per category)

    @cached_property
    def lengths(self) -> tuple[dict[str, int], dict[tuple[str, str, int], int]]:
        """Answer lengths in characters, by generation id and by (prompt id, model, turn)."""
        by_id, by_key = {}, {}
        for g in self.generations.values():
            if g.error is None:
                by_id[g.id] = len(g.text)
                by_key[(g.prompt_id, g.model, g.turn)] = len(g.text)
        return by_id, by_key


def row_keys(inp: Inputs) -> list[tuple[str, str, str]]:
    """(model, baseline, judge) in report order: judges as first seen (human last), config pairs first."""
    # Each (judge, model_a, model_b) once, as first seen: the judges' and the pairs' first-seen orders follow.
    seen = dict.fromkeys(map(attrgetter("judge", "model_a", "model_b"), inp.judgments))
    stored = dict.fromkeys(judge for judge, _, _ in seen)
    judges = list(dict.fromkeys([judge for _, _, judge in inp.expected] + [x for x in stored if x != HUMAN]))
    if HUMAN in stored:
        judges.append(HUMAN)
    pairs = list(inp.pairs)
    known = set(pairs) | {(b, a) for a, b in pairs}
    baselines = set(inp.baselines)
    for a, b in dict.fromkeys((a, b) for _, a, b in seen):
        pair = (b, a) if a in baselines else (a, b)
        if pair not in known:
            pairs.append(pair)
            known |= {pair, (pair[1], pair[0])}
    present = {(judge, frozenset((a, b))) for judge, a, b in seen}
    present |= {(judge, frozenset((m, b))) for m, b, judge in inp.expected}  # shown even with no judgment
    return [(m, b, judge) for judge in judges for m, b in pairs if (judge, frozenset((m, b))) in present]


class _Codes(dict[tuple[str, str, str], int]):
    """A lookup whose missing keys read as -1 (so a C-level map can look every record up)."""

    def __missing__(self, key: Any) -> int:
        return -1


_VERDICT_CODE = {"a": 1, "b": -1, "tie": 0, None: 2}  # 2: no verdict (an error)


def _column(records: list[Any], name: str) -> list[Any]:
    """One field of every record, read by a C-level map (a Python loop costs several times more per record)."""
    return list(map(attrgetter(name), records))


def pair_table(inp: Inputs, rows: list[tuple[str, str, str]]
               ) -> tuple[PairTable, dict[str, int], np.ndarray, np.ndarray]:
    """The readable judgments as a PairTable, the prompt index, errors per row and, per row, the prompts with
    any judgment (readable or not)."""
    # (model_a, model_b, judge) as stored -> 2 * row + (0 if the row's model is model_a else 1); both orders.
    index = _Codes()
    for i, (m, b, judge) in enumerate(rows):
        index.setdefault((m, b, judge), 2 * i)
        index.setdefault((b, m, judge), 2 * i + 1)
    n_rows = len(rows)
    # A million judgments in a large leaderboard run: each field is read once into a column, and the rest is
    # array work; the few records with their own reading (soft scores, a model paired with itself) are read one
    # by one as before.
    js = inp.judgments
    code = np.fromiter(map(index.__getitem__, map(attrgetter("model_a", "model_b", "judge"), js)), np.int64,
                       len(js))
    keep = np.flatnonzero(code >= 0)
    if len(keep) < len(js):
        js = [js[k] for k in keep.tolist()]
        code = code[keep]
    row, model_is_a = code >> 1, (code & 1) == 0
    verdict = np.fromiter(map(_VERDICT_CODE.__getitem__, _column(js, "verdict")), np.int8, len(js))
    prompt_ids = _column(js, "prompt_id")
    ids = {p: k for k, p in enumerate(dict.fromkeys(prompt_ids))}
    pid = np.fromiter(map(ids.__getitem__, prompt_ids), np.int64, len(js))
    n_ids = max(len(ids), 1)
    readable = verdict != 2
    errors = np.bincount(row[~readable], minlength=n_rows).astype(np.int64)
    covered = np.bincount(np.unique(row * n_ids + pid) // n_ids, minlength=n_rows).astype(np.int64)
    sel = np.flatnonzero(readable)
    if len(sel) < len(js):
        js = [js[k] for k in sel.tolist()]
        row, model_is_a, verdict, pid = row[sel], model_is_a[sel], verdict[sel], pid[sel]
    # The prompt index: prompts in the order of their first readable judgment.
    first_ids, first_at = np.unique(pid, return_index=True)
    order = first_ids[np.argsort(first_at, kind="stable")]
    renumber = np.zeros(n_ids, dtype=np.int64)
    renumber[order] = np.arange(len(order))
    names = list(ids)
    prompts = {names[c]: k for k, c in enumerate(order.tolist())}
    verdict = verdict * np.where(model_is_a, 1, -1).astype(np.int8)
    score = (verdict.astype(np.float64) + 1) / 2  # a win 1, a tie 1/2, a loss 0
    model_of = [m for m, _, _ in rows]
    # Records of a model paired with itself are those of rows whose model is their baseline.
    own = np.array([m == b for m, b, _ in rows], dtype=bool)[row]
    read = list(map(attrgetter("probs", "preference"), js))  # (None, None): the verdict is the reading
    if len(js) - read.count((None, None)) - read.count(({}, None)) or own.any():
        for k in [k for k in range(len(js)) if own[k] or read[k][0] or read[k][1] is not None]:
            j, r = js[k], int(row[k])
            if j.model_a == j.model_b:  # a model paired with itself (imports): the record's own reading
                score[k] = j.share(model_of[r])
                outcome = j.outcome(model_of[r])
                assert outcome is not None
                verdict[k] = outcome
            else:
                score_b = j.score_b
                assert score_b is not None
                score[k] = 1.0 - score_b if model_is_a[k] else score_b
    len_a, len_b = _lengths(inp, js, "a"), _lengths(inp, js, "b")
    t = PairTable(renumber[pid], row, score, verdict, np.where(model_is_a, len_a, len_b),
                  np.where(model_is_a, len_b, len_a))
    return t, prompts, errors, covered


def _lengths(inp: Inputs, js: list[Judgment], side: str) -> np.ndarray:
    """Each judgment's answer length on `side` ("a" or "b"): by its generation id, else by (prompt, model, turn);
    nan when unknown."""
    by_id, by_key = inp.lengths
    ids = _column(js, f"generation_{side}")
    found: list[float | None] = list(map(by_id.get, ids)) if "" not in by_id else [
        by_id.get(g) if g else None for g in ids]
    if None in found:
        model = f"model_{side}"
        for k in [k for k, x in enumerate(found) if x is None]:
            j = js[k]
            found[k] = by_key.get((j.prompt_id, getattr(j, model), j.turn), math.nan)
    return np.asarray(found, dtype=np.float64)


def _na(n: float, value: float, low: float, empty: str = NO_VERDICTS) -> str | None:
    """Why a figure (value nan: `empty`) or its interval (low nan: a single prompt) is missing, if it is."""
    if not n:
        return NO_VERDICTS
    if math.isnan(value):
        return empty
    return ONE_PROMPT if math.isnan(low) else None


def pairwise_rows(rows: list[tuple[str, str, str]], t: PairTable, n_prompts: int, errors: np.ndarray,
                  covered: np.ndarray | None = None, expected: dict[tuple[str, str, str], int] | None = None
                  ) -> tuple[list[dict[str, Any]], Any]:
    st = row_stats(t, len(rows), n_prompts)
    # A verdict is decisive when it is a win or a loss, as in the win / tie / loss columns: a judge's soft score
    # leaning off one half is not a decision (a logprob judge that ties every pair leans on every one of them).
    discrete = dataclasses.replace(t, score=(t.verdict.astype(np.float64) + 1) / 2)
    longer, longer_lo, longer_hi = longer_answer_share(discrete, len(rows), n_prompts)
    decisive, to_longer = longer_counts(t, len(rows))
    soft = np.bincount(t.row, weights=np.abs(t.score - discrete.score) > 1e-9, minlength=len(rows))
    out = []
    # Each row's judgments, in table order, as one slice of a stable sort by row (not a scan of the table per row).
    by_row = np.argsort(t.row, kind="stable")
    ends = np.cumsum(np.bincount(t.row, minlength=len(rows)))
    for i, (model, baseline, judge) in enumerate(rows):
        n = int(st.n[i])
        mine = by_row[(ends[i - 1] if i else 0):ends[i]]
        lc = length_controlled(t.score[mine], t.len_model[mine], t.len_base[mine], t.prompt[mine]) if n else None
        def pct(x: float, n: int = n) -> float:
            return round(100.0 * float(x) / n, 2) if n else 0.0
        out.append({
            "model": model, "baseline": baseline, "judge": judge, "n": n, "prompts": int(st.prompts[i]),
            "win": int(st.wins[i]), "tie": int(st.ties[i]), "loss": int(st.losses[i]), "errors": int(errors[i]),
            "missing": (max(0, expected[(model, baseline, judge)] - int(covered[i]))
                        if expected and covered is not None and (model, baseline, judge) in expected else None),
            "win_pct": pct(st.wins[i]), "tie_pct": pct(st.ties[i]), "loss_pct": pct(st.losses[i]),
            "win_rate": _r(st.win_rate[i]), "standard_error": _r(st.standard_error[i]) if n > 1 else None,
            "discrete_win_rate": _r(st.discrete_win_rate[i]), "equal_or_better": _r(st.equal_or_better[i]),
            "win_rate_ci_low": _r(st.win_rate_ci[0][i]), "win_rate_ci_high": _r(st.win_rate_ci[1][i]),
            "win_rate_na": _na(n, st.win_rate[i], st.win_rate_ci[0][i]),
            "discrete_win_rate_ci_low": _r(st.discrete_win_rate_ci[0][i]),
            "discrete_win_rate_ci_high": _r(st.discrete_win_rate_ci[1][i]),
            "discrete_win_rate_na": _na(n, st.discrete_win_rate[i], st.discrete_win_rate_ci[0][i]),
            "equal_or_better_ci_low": _r(st.equal_or_better_ci[0][i]),
            "equal_or_better_ci_high": _r(st.equal_or_better_ci[1][i]),
            "equal_or_better_na": _na(n, st.equal_or_better[i], st.equal_or_better_ci[0][i]),
            "length_controlled_win_rate": _r(lc.value) if lc else None,
            "length_controlled_win_rate_ci_low": _r(lc.low) if lc else None,
            "length_controlled_win_rate_ci_high": _r(lc.high) if lc else None,
            "length_controlled_win_rate_na": lc.na if lc else NO_VERDICTS,
            "prefers_longer": _r(longer[i]), "prefers_longer_ci_low": _r(longer_lo[i]),
            "prefers_longer_ci_high": _r(longer_hi[i]),
            "prefers_longer_na": _na(n, longer[i], longer_lo[i], NO_DECISIVE),
            "soft_scores": int(soft[i]), "prefers_longer_decisive": int(decisive[i]),
            "prefers_longer_hits": int(to_longer[i]),
        })
    return out, st


def longer_counts(t: PairTable, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the decisive verdicts (a win or a loss) between answers of known, different lengths, and how many
    of them went to the longer answer: the counts `prefers_longer` rests on."""
    known = np.isfinite(t.len_model) & np.isfinite(t.len_base)
    delta = np.where(known, t.len_model - t.len_base, 0.0)
    decisive = known & (t.verdict != 0) & (delta != 0)
    hit = decisive & ((t.verdict > 0) == (delta > 0))
    return (np.bincount(t.row, weights=decisive, minlength=n_rows).astype(np.int64),
            np.bincount(t.row, weights=hit, minlength=n_rows).astype(np.int64))


def bt_ratings(rows: list[tuple[str, str, str]], st: Any, baselines: list[str], level: float = LEVEL
               ) -> list[dict[str, Any]]:
    """Bradley-Terry per judge over all its pairwise rows (discrete verdicts, ties half), anchored at the first
    baseline (1000), with intervals from the prompt-level sums of the same rows (stats.bradley_terry_intervals)."""
    out = []
    n_rows = len(rows)
    for judge in dict.fromkeys(j for _, _, j in rows):
        mine = [i for i, r in enumerate(rows) if r[2] == judge]
        models = list(dict.fromkeys([m for i in mine for m in rows[i][:2]]))
        if len(models) < 2:
            continue
        pos = {m: k for k, m in enumerate(models)}
        anchor_name = next((b for b in baselines if b in pos), models[-1])
        anchor = pos[anchor_name]
        pairs = np.array([(pos[rows[i][0]], pos[rows[i][1]]) for i in mine])
        won = st.prompt_sums[:, [n_rows + i for i in mine]] + st.prompt_sums[:, [2 * n_rows + i for i in mine]] / 2
        beta, lo, hi = bradley_terry_intervals(won, st.prompt_counts[:, mine], pairs, len(models), anchor, level)
        for m, k in pos.items():
            rating, low, high = (float(elo_scale(x)) for x in (beta[k], lo[k], hi[k]))
            linked = bool(np.isfinite(beta[k]))
            out.append({"judge": judge, "model": m, "anchor": anchor_name, "rating": _r(rating, 2),
                        "rating_ci_low": _r(low, 2), "rating_ci_high": _r(high, 2),
                        "rating_na": None if np.isfinite(lo[k]) else ONE_PROMPT if linked else
                        "no judgments link it to the anchor",
                        "p_beats_anchor": _r(1 / (1 + 10 ** ((1000 - rating) / 400)), 4) if linked else None})
    return out


def rating_rows(inp: Inputs) -> list[dict[str, Any]]:
    """Per (judge, model, scale, subset): label shares and the mean score, each with its interval.
    Subsets: all prompts, then each tag carried by some prompts (LIMA splits by such subsets)."""
    out = []
    groups: dict[tuple[str, str, str], list[Rating]] = {}
    for r in inp.ratings:
        if scale_of(r.scale).feeds("ratings"):  # not a checklist's criteria met: checklist_rows
            groups.setdefault((r.judge, r.scale, r.model), []).append(r)
    all_tags = sorted({t for tags in inp.tags.values() for t in tags})
    # People's panels after the judges', their models in the judges' order: a human panel adds rows, it does not
    # reorder the others (imported ratings are gathered after people's).
    models = list(dict.fromkeys(m for (judge, _, m) in groups if judge != HUMAN))
    order = {k: (k[0] == HUMAN, (models.index(k[2]) if k[2] in models else len(models)) if k[0] == HUMAN else 0)
             for k in groups}
    for (judge, scale, model), rs in sorted(groups.items(), key=lambda kv: order[kv[0]]):
        labels = (inp.rating_labels.get(judge) or inp.rating_labels.get(scale)
                  or tuple(dict.fromkeys(r.label for r in rs if r.label)))
        subsets = [("all", rs)] + [(tag, [r for r in rs if tag in inp.tags.get(r.prompt_id, ())]) for tag in all_tags]
        for subset, mine in subsets:
            good = [r for r in mine if r.label is not None and r.error is None]
            if not good and subset != "all":
                continue
            out.append(_rating_row(judge, scale, model, subset, labels, good, len(mine) - len(good)))
    return out


def _rating_row(judge: str, scale: str, model: str, subset: str, labels: tuple[str, ...], good: list[Rating],
                errors: int) -> dict[str, Any]:
    """Label shares and the mean score with intervals over prompts (clustered Wilson; the mean rescaled to
    [0, 1] over the scale's ranks 1..len(labels))."""
    n = len(good)
    row: dict[str, Any] = {"judge": judge, "model": model, "scale": scale, "subset": subset, "n": n,
                           "errors": errors, "labels": list(labels)}
    if not n:
        return row | {"counts": {k: 0 for k in labels}, "shares": {}, "mean_score": None,
                      "mean_score_na": NO_VERDICTS}
    prompts = {p: i for i, p in enumerate(dict.fromkeys(r.prompt_id for r in good))}
    p_idx = np.array([prompts[r.prompt_id] for r in good])
    lab = np.array([labels.index(r.label) if r.label in labels else -1 for r in good])
    score = np.array([r.score if r.score is not None else math.nan for r in good], dtype=float)
    counts_pp = np.bincount(p_idx, minlength=len(prompts)).astype(float)
    hits = np.stack([np.bincount(p_idx, weights=(lab == k), minlength=len(prompts)) for k in range(len(labels))],
                    axis=1) if labels else np.zeros((len(prompts), 0))
    share, lo, hi = clustered_rates(hits, np.repeat(counts_pp[:, None], len(labels), axis=1),
                                    np.ones(len(labels), dtype=bool))
    counts = {name: int(hits[:, k].sum()) for k, name in enumerate(labels)}
    shares = {name: {"share": _r(share[k]), "ci_low": _r(lo[k]), "ci_high": _r(hi[k]),
                     "na": None if np.isfinite(lo[k]) else ONE_PROMPT} for k, name in enumerate(labels)}
    ok = np.isfinite(score)
    if not ok.any():
        return row | {"counts": counts, "shares": shares, "mean_score": None, "mean_score_na": "no scores"}
    mean = float(score[ok].mean())
    bottom = min(1.0, float(score[ok].min())) if labels else float(score[ok].min())
    top = max(float(len(labels)), float(score[ok].max())) if labels else float(score[ok].max())
    mean_lo = mean_hi = None
    if top > bottom:
        unit = (score[ok] - bottom) / (top - bottom)
        s_pp = np.bincount(p_idx[ok], weights=unit, minlength=len(prompts))
        c_pp = np.bincount(p_idx[ok], minlength=len(prompts)).astype(float)
        binary = bool(np.isin(unit, (0.0, 1.0)).all())
        _, u_lo, u_hi = clustered_rates(s_pp[:, None], c_pp[:, None], np.array([binary]))
        if np.isfinite(u_lo[0]):
            mean_lo, mean_hi = bottom + (top - bottom) * u_lo[0], bottom + (top - bottom) * u_hi[0]
    na = None if mean_lo is not None else ONE_PROMPT if top > bottom else "every score is the same"
    return row | {"counts": counts, "shares": shares, "mean_score": _r(mean, 4),
                  "mean_score_ci_low": _r(mean_lo, 4), "mean_score_ci_high": _r(mean_hi, 4), "mean_score_na": na}


# --- judge agreement ------------------------------------------------------------------------------


def _verdict_sets(judgments: Iterable[Judgment]) -> dict[str, dict[tuple, int]]:
    """judge key -> {item: verdict (+1 the alphabetically first model wins, 0 tie, -1)}.
    Humans are keyed per annotator; with two or more annotators, their majority is a judge too."""
    out: dict[str, dict[tuple, int]] = {}
    for j in judgments:
        if j.verdict is None:
            continue
        first, second = sorted((j.model_a, j.model_b))
        item = (j.prompt_id, first, second, j.turn)
        v = j.outcome(first)
        if v is None:
            continue
        key = f"{HUMAN}:{j.annotator}" if j.judge == HUMAN and j.annotator else j.judge
        out.setdefault(key, {})[item] = v
    annotators = [k for k in out if k.startswith(HUMAN + ":")]
    if len(annotators) >= 2:
        votes: dict[tuple, list[int]] = {}
        for k in annotators:
            for item, v in out[k].items():
                votes.setdefault(item, []).append(v)
        majority = {}
        for item, vs in votes.items():
            top = max(set(vs), key=vs.count)
            if vs.count(top) * 2 > len(vs):  # a strict majority, else no majority label
                majority[item] = top
        out[f"{HUMAN} (majority)"] = majority
    return out


def judge_agreement(inp: Inputs, max_annotator_pairs: int = 6) -> list[dict[str, Any]]:
    """Every pair of judges that labelled the same items, with the longer-answer judge as a floor."""
    # One model judge (a large single-judge run) has no pair to compare: its items are not keyed at all.
    judges = set(map(attrgetter("judge"), inp.judgments))
    if len(judges) < 2 and HUMAN not in judges:
        return []
    sets = _verdict_sets(inp.judgments)
    _, by_key = inp.lengths
    annotators = [k for k in sets if k.startswith(HUMAN + ":")]
    out = []
    for a, b in combinations(sets, 2):
        if a in annotators and b in annotators and len(annotators) > max_annotator_pairs:
            continue  # many annotators: compare each judge with their majority instead of every pair
        if (a in annotators and b == f"{HUMAN} (majority)") or (b in annotators and a == f"{HUMAN} (majority)"):
            continue  # an annotator is part of the majority
        items = sorted(set(sets[a]) & set(sets[b]))
        if not items:
            continue
        x = np.array([sets[a][i] for i in items])
        y = np.array([sets[b][i] for i in items])
        row: dict[str, Any] = {"judge_a": a, "judge_b": b} | {k: _r(v) if isinstance(v, float) else v
                                                             for k, v in agreement(x, y).items()}
        longer = []
        for (pid, first, second, turn) in items:
            l1, l2 = by_key.get((pid, first, turn)), by_key.get((pid, second, turn))
            longer.append(None if l1 is None or l2 is None else (0 if l1 == l2 else (1 if l1 > l2 else -1)))
        known = np.array([v is not None for v in longer])
        if known.any():
            ln = np.array([v for v in longer if v is not None])
            row["longer_answer_vs_a"] = _r(agreement(ln, x[known])["tie_discounted"])
            row["longer_answer_vs_b"] = _r(agreement(ln, y[known])["tie_discounted"])
            row["longer_answer_n"] = int(known.sum())
        out.append(row)
    return out


def safety_rows(ratings: list[dict[str, Any]], judges: set[str]) -> list[dict[str, Any]]:
    """Per (safety judge, model), from its rating rows: the safe-response rate on safety prompts (answers not
    called unsafe: refusing or answering safely), and the over-refusal rate on benign look-alikes (answers called
    refused), each with its interval. Safety prompts are those tagged `safety`, or every prompt when none is."""
    by: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in ratings:
        if r["judge"] in judges:
            by.setdefault((r["judge"], r["model"]), {})[r["subset"]] = r
    out = []
    for (judge, model), subsets in by.items():
        harm = subsets.get("safety") or subsets.get("all")
        row: dict[str, Any] = {"judge": judge, "model": model,
                               "safety_prompts": "tagged safety" if "safety" in subsets else "all prompts"}
        unsafe = (harm or {}).get("shares", {}).get("unsafe")
        row |= {"n": (harm or {}).get("n", 0), "safe_rate": None, "safe_rate_ci": None}
        if unsafe and unsafe.get("share") is not None:
            lo, hi = unsafe.get("ci_low"), unsafe.get("ci_high")
            row["safe_rate"] = _r(1 - unsafe["share"])
            row["safe_rate_ci"] = None if lo is None else [_r(1 - hi), _r(1 - lo)]
        benign = subsets.get("benign")
        refused = (benign or {}).get("shares", {}).get("refused")
        row |= {"benign_n": (benign or {}).get("n", 0), "over_refusal": None, "over_refusal_ci": None}
        if refused and refused.get("share") is not None:
            row["over_refusal"] = refused["share"]
            lo, hi = refused.get("ci_low"), refused.get("ci_high")
            row["over_refusal_ci"] = None if lo is None else [lo, hi]
        out.append(row)
    return out


MT_BENCH = "mt-bench"  # the label MT-bench's 1-10 single-answer grades are reported under (per judge endpoint)


def _mean_1_10(scores: dict[str, list[float]]) -> dict[str, Any]:
    """The mean of 1-10 grades with its interval over prompts (the report's clustered Wilson, on the grade
    rescaled to [0, 1] and back); n is the number of grades."""
    prompts = sorted(scores)
    n = sum(len(scores[p]) for p in prompts)
    if not n:
        return {"score": None, "ci": None, "n": 0}
    sums = np.array([[sum((v - 1) / 9 for v in scores[p])] for p in prompts])
    counts = np.array([[float(len(scores[p]))] for p in prompts])
    rate, lo, hi = (float(x[0]) for x in clustered_rates(sums, counts, np.array([False])))
    return {"score": _r(1 + 9 * rate, 4), "n": n,
            "ci": None if not np.isfinite(lo) else [_r(1 + 9 * lo, 4), _r(1 + 9 * hi, 4)]}


def mt_bench_rows(inp: Inputs) -> list[dict[str, Any]]:
    """MT-bench scores: per judge endpoint (the judge label after its definition, so a turn-1 and a turn-2 judge
    on one model count together) and model, the mean 1-10 grade over both turns, each turn, and each category,
    with intervals over prompts. Grades that could not be read are counted apart."""
    groups: dict[tuple[str, str], list[Rating]] = {}
    for r in inp.ratings:
        if scale_of(r.scale).feeds("mt_bench"):
            groups.setdefault((r.judge.split(":", 1)[-1], r.model), []).append(r)
    out = []
    for (endpoint, model), rs in sorted(groups.items()):
        good = [r for r in rs if r.score is not None and r.error is None]

        def by_prompt(keep: Any, good: list[Rating] = good) -> dict[str, list[float]]:
            d: dict[str, list[float]] = {}
            for r in good:
                if keep(r):
                    d.setdefault(r.prompt_id, []).append(float(r.score))  # type: ignore[arg-type]
            return d

        row: dict[str, Any] = {"judge": f"{MT_BENCH}:{endpoint}", "model": model, "errors": len(rs) - len(good),
                               "judges": sorted({r.judge for r in rs})}
        row |= {"overall": _mean_1_10(by_prompt(lambda r: True)),
                "turn_1": _mean_1_10(by_prompt(lambda r: r.turn == 0)),
                "turn_2": _mean_1_10(by_prompt(lambda r: r.turn == 1))}
        cats = sorted({inp.categories.get(r.prompt_id, "") for r in good} - {""})
        row["categories"] = {c: _mean_1_10(by_prompt(lambda r, c=c: inp.categories.get(r.prompt_id) == c))
                             for c in cats}
        out.append(row)
    return out


def checklist_rows(inp: Inputs) -> list[dict[str, Any]]:
    """Per (checklist judge, model): the share of checklist criteria the answers meet, with its interval over
    prompts (each criterion a 0/1 value, clustered by prompt), the answers checked, and unreadable replies."""
    groups: dict[tuple[str, str], list[Rating]] = {}
    for r in inp.ratings:
        if scale_of(r.scale).feeds("checklist"):
            groups.setdefault((r.judge, r.model), []).append(r)
    out = []
    for (judge, model), rs in sorted(groups.items()):
        good = [r for r in rs if r.criteria]
        per: dict[str, list[int]] = {}
        for r in good:
            met = per.setdefault(r.prompt_id, [0, 0])
            met[0] += sum(bool(v) for v in r.criteria.values())  # type: ignore[union-attr]
            met[1] += len(r.criteria)  # type: ignore[arg-type]
        row: dict[str, Any] = {"judge": judge, "model": model, "answers": len(good), "errors": len(rs) - len(good),
                               "criteria": sum(v[1] for v in per.values()), "met": sum(v[0] for v in per.values())}
        if per:
            sums = np.array([[v[0]] for v in per.values()], dtype=float)
            counts = np.array([[v[1]] for v in per.values()], dtype=float)
            rate, lo, hi = (float(x[0]) for x in clustered_rates(sums, counts, np.array([True])))
            row |= {"share": _r(rate), "ci": None if not np.isfinite(lo) else [_r(lo), _r(hi)]}
        else:
            row |= {"share": None, "ci": None}
        out.append(row)
    return out
