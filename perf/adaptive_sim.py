"""Adaptive judging simulated on real labels from ../shared/data: calls saved, and how often the decision differs
from judging everything. Prints one JSON line.

    python perf/adaptive_sim.py [--orders 200] [--step 16] [--min-prompts 32] [--confidence 0.95]

stop_when_decided is replayed exactly as the judge stage runs it (lima_eval.judging.adaptive: the seeded prompt
order, rounds of `step` prompts, the confidence sequence tuned to the pair's prompt count), on
  - the AlpacaEval annotations (13 model-vs-baseline files: GPT-4's verdicts, and GPT-4-turbo's logprob-weighted
    preferences, score = preference - 1; draws 1/2), and
  - PandaLM's test set, per model pair (cmp_key), with two judges: gpt-3.5-turbo's verdicts and the majority of
    the three human annotators.
"Full" is the decision on every prompt: above / below 0.5 when the fixed-n 95% interval excludes 0.5, else
undecided. Each pair is run under `orders` random prompt orders. `differs` counts runs whose decision is not the
full one; `wrong_side` those that decided the opposite side, the error the sequence bounds.

both-if-close uses the real first-order probabilities of the logprob-weighted AlpacaEval annotations (p = the
judge's probability that the model's answer is better). The data holds one order per pair, so the second order
is simulated as a draw from the same p (a judge without position bias). Calls saved are real (they depend only
on the first-order margins); the win-rate change depends on that model of the second order.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def ae_scores(path: Path) -> list[float]:
    """The model's score per prompt (preference 2 = the model's output wins); draws 1/2, unreadable left out."""
    out = []
    for row in json.loads(path.read_text()):
        p = row.get("preference")
        if p in (None, "None"):
            continue
        p = float(p)
        out.append(0.5 if p in (0.0, 1.5) else p - 1)
    return out


def pandalm_pairs() -> dict[str, dict[str, list[float]]]:
    """cmp_key -> {judge: scores of the first model}: gpt-3.5-turbo's verdicts and the human majority."""
    rows = json.loads((DATA / "pandalm" / "testset-v1.json").read_text())
    gpt = {r["idx"]: r["gpt_result"]
           for r in json.loads((DATA / "pandalm" / "gpt-3.5-turbo-testset-v1.json").read_text())}
    score = {"1": 1.0, "2": 0.0, "0": 0.5, "Tie": 0.5}
    out: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        pair = out.setdefault(r["cmp_key"], {"gpt-3.5-turbo": [], "humans": []})
        if str(gpt.get(r["idx"])) in score:
            pair["gpt-3.5-turbo"].append(score[str(gpt[r["idx"]])])
        votes = [str(r[f"annotator{k}"]) for k in (1, 2, 3)]
        top = max(set(votes), key=votes.count)
        pair["humans"].append(score[top] if votes.count(top) >= 2 else 0.5)
    return out


def full_decision(scores: list[float]) -> str | None:
    n = len(scores)
    mean = sum(scores) / n
    half = 1.96 * statistics.pstdev(scores) / math.sqrt(n)
    return "above" if mean - half > 0.5 else "below" if mean + half < 0.5 else None


def replay(scores: list[float], seed: int, step: int, min_prompts: int, confidence: float) -> tuple[int, str | None]:
    """The stage's stopping rule on one pair: (prompts judged, decision)."""
    from lima_eval.config import StopRule
    from lima_eval.judging.adaptive import judge_pair, prompt_order

    rule = StopRule(threshold=0.5, confidence=confidence, step=step, min_prompts=min_prompts)
    ids = [f"p{i}" for i in range(len(scores))]
    order = [int(pid[1:]) for pid in prompt_order(seed, ids)]
    taken = 0
    while True:
        taken = min(len(order), taken + step)
        verdict = judge_pair([scores[i] for i in order[:taken]], rule, len(scores))[3]
        if verdict or taken == len(order):
            return taken, verdict


def stopping(pairs: dict[str, list[float]], args: argparse.Namespace) -> dict:
    rows, judged, total, differs, wrong, runs = [], 0, 0, 0, 0, 0
    for name, scores in sorted(pairs.items()):
        full = full_decision(scores)
        outcomes = [replay(scores, seed, args.step, args.min_prompts, args.confidence) for seed in range(args.orders)]
        used = sum(n for n, _ in outcomes)
        d = sum(1 for _, v in outcomes if v != full)
        w = sum(1 for _, v in outcomes if v is not None and full is not None and v != full)
        rows.append({"pair": name, "prompts": len(scores), "win_rate": round(sum(scores) / len(scores), 4),
                     "full": full, "mean_judged": round(used / len(outcomes), 1),
                     "decided": round(sum(1 for _, v in outcomes if v) / len(outcomes), 3),
                     "differs": round(d / len(outcomes), 3), "wrong_side": w})
        judged, total, differs, wrong, runs = (judged + used, total + len(scores) * len(outcomes), differs + d,
                                               wrong + w, runs + len(outcomes))
    return {"pairs": len(pairs), "calls_saved": round(1 - judged / total, 4), "differs": round(differs / runs, 4),
            "wrong_side": wrong, "runs": runs, "rows": rows}


def both_if_close(files: list[Path], close_below: float, draws: int) -> dict:
    """Calls and win rates: both orders everywhere vs the second order only where the first was close."""
    rng = random.Random(0)
    calls_all = calls_adaptive = 0
    shifts, flips = [], 0
    for path in files:
        probs = [float(r["preference"]) - 1 for r in json.loads(path.read_text())
                 if r.get("preference") not in (None, "None")]
        first = [1.0 if p > 0.5 else 0.0 if p < 0.5 else 0.5 for p in probs]
        close = [abs(2 * p - 1) < close_below or f == 0.5 for p, f in zip(probs, first)]
        calls_all += 2 * len(probs)
        calls_adaptive += len(probs) + sum(close)
        for _ in range(draws):
            second = [1.0 if rng.random() < p else 0.0 for p in probs]
            both = [f if f == s else 0.5 for f, s in zip(first, second)]
            adaptive = [b if c else f for b, c, f in zip(both, close, first)]
            a, b = sum(both) / len(both), sum(adaptive) / len(adaptive)
            shifts.append(abs(a - b))
            flips += (full_decision(both) != full_decision(adaptive))
    return {"close_below": close_below, "files": len(files), "calls_saved": round(1 - calls_adaptive / calls_all, 4),
            "mean_abs_win_rate_change_pp": round(100 * statistics.mean(shifts), 3),
            "max_abs_win_rate_change_pp": round(100 * max(shifts), 3),
            "decision_differs": round(flips / (len(files) * draws), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument("--step", type=int, default=16)
    ap.add_argument("--min-prompts", type=int, default=32)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--draws", type=int, default=200)
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is not present")
    ae_files = sorted((DATA / "alpaca_eval" / "results").glob("*/*/annotations.json"))
    ae = {f"{p.parent.parent.name} ({p.parent.name})": ae_scores(p) for p in ae_files
          if p.parent.parent.name != "gpt4_1106_preview"}  # that file compares the baseline with itself
    panda = pandalm_pairs()
    weighted = [p for p in ae_files
                if p.parent.name.startswith("weighted") and p.parent.parent.name != "gpt4_1106_preview"]
    print(json.dumps({
        "step": args.step, "min_prompts": args.min_prompts, "confidence": args.confidence, "orders": args.orders,
        "stop_alpacaeval": stopping(ae, args),
        "stop_pandalm_gpt35": stopping({k: v["gpt-3.5-turbo"] for k, v in panda.items()}, args),
        "stop_pandalm_humans": stopping({k: v["humans"] for k, v in panda.items()}, args),
        "both_if_close": [both_if_close(weighted, c, args.draws) for c in (0.2, 0.5, 0.8)],
    }))


if __name__ == "__main__":
    main()
