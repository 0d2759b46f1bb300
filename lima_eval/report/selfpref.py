"""Self-preference: a judge of the same family as a model it judges (docs/families.md).

For every model judge (a jury: any of its jurors) whose family is that of one side of a pair it judges, and not
the other's, the report gives the judge's win rate for its own family's model, and next to it the rate every
other judge of the same pair (another model judge, people, an imported judge) gives on the prompts both labelled.
A rate is the mean of the own-family model's share of each verdict (ties half), with the report's interval over
prompts. A gap between the two is the self-preference to look at; no other judge means nothing to compare with,
and the note says how to get one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lima_eval.config import RunConfig, family_of
from lima_eval.judging.items import judge_label
from lima_eval.records import Judgment
from lima_eval.report.stats import clustered_rates


def _shares(judgments: Sequence[Judgment], judge: str, own: str, other: str) -> dict[str, list[float]]:
    """prompt id -> the own-family model's shares in this judge's readable verdicts on the pair."""
    out: dict[str, list[float]] = {}
    for j in judgments:
        if j.judge == judge and {j.model_a, j.model_b} == {own, other} and own != other:
            share = j.share(own)
            if share is not None:
                out.setdefault(j.prompt_id, []).append(share)
    return out


def _rate(shares: dict[str, list[float]], prompts: Sequence[str]) -> dict[str, Any]:
    """The mean share over the given prompts' verdicts, with the report's interval over prompts."""
    sums = np.array([[sum(shares[p])] for p in prompts], dtype=np.float64).reshape(-1, 1)
    counts = np.array([[len(shares[p])] for p in prompts], dtype=np.float64).reshape(-1, 1)
    values = [v for p in prompts for v in shares[p]]
    binary = np.array([all(v in (0.0, 1.0) for v in values)])
    rate, lo, hi = (float(x[0]) for x in clustered_rates(sums, counts, binary))
    return {"win_rate": None if np.isnan(rate) else round(rate, 4),
            "ci": None if np.isnan(lo) else [round(lo, 4), round(hi, 4)], "n": len(values), "prompts": len(prompts)}


def self_preference(cfg: RunConfig, judgments: Sequence[Judgment], labels: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (model judge, pair) where the judge shares one side's family: its rate for that side, and other
    judges' rates on the prompts they share with it. `labels`: judge label -> its JudgeSpec; `judgments` as the
    report counts them (orders combined)."""
    model_family = {m.name: family_of(m) for m in cfg.models}
    judges_of_pair: dict[frozenset[str], set[str]] = {}
    for j in judgments:
        judges_of_pair.setdefault(frozenset((j.model_a, j.model_b)), set()).add(j.judge)
    out = []
    for label, spec in labels.items():
        members = spec.jury or [spec]
        families = {family_of(m): m for m in members if family_of(m)}
        for model, baseline in cfg.pairs():
            fm, fb = model_family.get(model, ""), model_family.get(baseline, "")
            if fm == fb:
                continue  # both sides (or neither) of the judge's family: nothing to prefer
            own, other, family = (model, baseline, fm) if fm in families else (baseline, model, fb)
            if family not in families or label not in judges_of_pair.get(frozenset((model, baseline)), set()):
                continue
            mine = _shares(judgments, label, own, other)
            if not mine:
                continue
            entry: dict[str, Any] = {
                "judge": label, "family": family, "via": None if not spec.jury else _label(families[family]),
                "own_model": own, "other_model": other, "judge_rate": _rate(mine, sorted(mine)), "others": []}
            for k in sorted(judges_of_pair[frozenset((model, baseline))] - {label}):
                theirs = _shares(judgments, k, own, other)
                shared = sorted(set(mine) & set(theirs))
                if len(shared) >= 2:
                    entry["others"].append({"judge": k, "same_prompts": _rate(mine, shared),
                                            "their_rate": _rate(theirs, shared)})
            out.append(entry)
    return out


def _label(spec: Any) -> str:
    return judge_label(spec)


def _pct(r: dict[str, Any]) -> str:
    if r["win_rate"] is None:
        return "n/a"
    ci = f" [{100 * r['ci'][0]:.1f}, {100 * r['ci'][1]:.1f}]" if r["ci"] else ""
    return f"{100 * r['win_rate']:.1f}%{ci}"


def note(entry: dict[str, Any]) -> str:
    """One report note for a self-preference entry."""
    via = f" (through its juror `{entry['via']}`)" if entry["via"] else ""
    text = (f"Self-preference risk: `{entry['judge']}`{via} is of the {entry['family']} family, as is "
            f"`{entry['own_model']}`, which it judges against `{entry['other_model']}`. It gives "
            f"`{entry['own_model']}` a win rate of {_pct(entry['judge_rate'])} on {entry['judge_rate']['prompts']} "
            "prompts")
    if not entry["others"]:
        return text + ("; no other judge labelled this pair to compare with: add a judge of another family (or a "
                       "jury) to `judges:`, or human labels (`lima-eval import-human`).")
    said = "; ".join(
        f"`{o['judge']}` gives {_pct(o['their_rate'])} on the {o['their_rate']['prompts']} prompts both labelled"
        + ("" if o["same_prompts"]["prompts"] == entry["judge_rate"]["prompts"]
           else f" (where `{entry['judge']}` gives {_pct(o['same_prompts'])})") for o in entry["others"])
    return text + f". Other judges: {said}."
