"""What the labelling app's admin page shows: progress, agreement between people, gold accuracy, the run's judges
against people, and the labels as an import-human CSV."""

from __future__ import annotations

import csv
import io
from collections import Counter
from itertools import combinations
from typing import Any

import numpy as np

from lima_eval.annotate.session import SKIP_REASONS, Session
from lima_eval.errors import LimaEvalError
from lima_eval.judge_card import fleiss_kappa
from lima_eval.records import HUMAN
from lima_eval.report.build import gather
from lima_eval.report.columns import csv_safe
from lima_eval.report.stats import agreement
from lima_eval.report.summary import judge_agreement
from lima_eval.run import Run

_CODE = {"a": 1, "tie": 0, "b": -1, "fail": -1, "pass": 0, "excellent": 1}


def _r(x: Any) -> Any:
    return None if x is None else round(float(x), 4)


def status(session: Session) -> dict[str, Any]:
    gold = {k for k, i in session.items.items() if i.gold is not None}
    people = []
    for name, queue in session.queues.items():
        live = [a for a in session.actions if a.annotator == name and a.action != "undo" and not a.undone]
        answered = [a for a in live if a.action == "gold"]
        skips = Counter(a.value for a in live if a.action == "skip")
        people.append({"annotator": name, "assigned": len(queue), "done": len(live),
                       "labels": sum(1 for a in live if a.action == "label"),
                       "skipped": {r: skips.get(r, 0) for r in SKIP_REASONS},
                       "gold_answered": len(answered),
                       "gold_correct": sum(1 for a in answered if a.value == session.items[a.key].gold),
                       "gold_accuracy": _r(np.mean([a.value == session.items[a.key].gold for a in answered]))
                       if answered else None})
    by_item: dict[str, dict[str, str]] = {}
    for a in session.labels():
        by_item.setdefault(a.key, {})[a.annotator] = a.value or ""
    pairs = []
    names = list(session.queues)
    for x, y in combinations(names, 2):
        both = [k for k, v in by_item.items() if x in v and y in v]
        if not both:
            continue
        ag = agreement(np.array([_CODE[by_item[k][x]] for k in both]), np.array([_CODE[by_item[k][y]] for k in both]))
        pairs.append({"a": x, "b": y, "n": len(both), "kappa": _r(ag["kappa"]), "with_ties": _r(ag["with_ties"]),
                      "tie_discounted": _r(ag["tie_discounted"]) if session.task == "pairwise" else None})
    full = [v for v in by_item.values() if len(v) == session.overlap >= 2]
    cats = (1, 0, -1)
    table = np.array([[sum(1 for lab in v.values() if _CODE[lab] == c) for c in cats] for v in full], dtype=float)
    items = len(session.items) - len(gold)
    return {"task": session.task, "source": session.source, "overlap": session.overlap, "items": items,
            "gold_items": len(gold), "labels": sum(len(v) for v in by_item.values()),
            "items_complete": sum(1 for v in by_item.values() if len(v) >= session.overlap),
            "annotators": people,
            "agreement": {"pairs": pairs, "fleiss_kappa": fleiss_kappa(table) if len(full) else None,
                          "fleiss_items": len(full),
                          "mean_pairwise_kappa": _r(np.mean([p["kappa"] for p in pairs if p["kappa"] is not None]))
                          if any(p["kappa"] is not None for p in pairs) else None},
            "judges": _judges_vs_people(session)}


def _judges_vs_people(session: Session) -> list[dict[str, Any]]:
    """The report's agreement rows between the run's model judges and people (empty for ratings)."""
    if session.task != "pairwise":
        return []
    try:
        inp, _ = gather(Run(session.run_dir))
    except LimaEvalError:
        return []
    rows = judge_agreement(inp)
    return [r for r in rows if (r["judge_a"].startswith(HUMAN)) != (r["judge_b"].startswith(HUMAN))]


def export_csv(session: Session) -> str:
    """Every live label in import-human's format (formula-safe cells)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    pairwise = session.task == "pairwise"
    w.writerow(["prompt_id", "model_a", "model_b", "label", "annotator", "comment"] if pairwise
               else ["prompt_id", "model", "label", "annotator", "comment"])
    for a in session.labels():
        item = session.items[a.key]
        w.writerow([csv_safe(x) for x in (item.prompt_id, *item.models, a.value, a.annotator, "labelling app")])
    return buf.getvalue()
