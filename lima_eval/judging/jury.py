"""Juries: several judges give a verdict on every item and one verdict comes out (docs/juries.md).

A jury is a `judge:` section with `jury: [juror, juror, ...]`. Each juror is an ordinary judge (its own
definition and endpoint) and runs through the ordinary stage, so its replies are cached and its records kept under
its own label. The jury's verdict on an item is derived from its jurors' verdicts on the same item (same prompt,
answers and order shown), recorded as a Judgment of the jury's label with each juror's vote:
- majority: the verdict more than half of the readable votes give; none: a tie (a split jury);
- mean-probability: the verdict with the highest mean probability, where a juror's probabilities are its logprob
  verdict's, or all on its verdict when it has none.
With `abstain: true` the jury gives no verdict when the winner's share of the votes (or its mean probability) is
`abstain_below` or less, or shared with another verdict; such items are written to RUN/human-queue/JURY.csv in
`lima-eval import-human`'s format with an empty label, for people to settle.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima_eval.config import JudgeSpec, RunConfig
from lima_eval.errors import ConfigError
from lima_eval.judging.asking import answers_on_disk, one_judge_stage, plan
from lima_eval.judging.counting import records_cost
from lima_eval.judging.definitions import judge_price, load_definition
from lima_eval.judging.items import PairItem, judge_label
from lima_eval.judging.kinds import Answers
from lima_eval.progress import StageCounts, header
from lima_eval.records import VERDICTS, Judgment, Prompt
from lima_eval.store import RunStore, csv_safe

RULES = ("majority", "mean-probability")
QUEUE_DIR = "human-queue"
QUEUE_COLUMNS = ("prompt_id", "model_a", "model_b", "label", "annotator", "comment")


@dataclass(frozen=True)
class Decision:
    """What a jury makes of its votes: a verdict (None when it abstains or no vote was readable), the mean
    probabilities (mean-probability), the winner's support and how it came about."""

    verdict: str | None
    probs: dict[str, float] | None
    support: float
    outcome: str  # unanimous | majority | split (no clear winner: tie) | abstained | unreadable


def decide(votes: Sequence[tuple[str | None, dict[str, float] | None]], rule: str = "majority",
           abstain: bool = False, abstain_below: float = 0.5) -> Decision:
    """Combine jurors' (verdict, probabilities) in model terms ('a', 'b', 'tie'); unreadable votes are None."""
    valid = [(v, p) for v, p in votes if v is not None]
    if not valid:
        return Decision(None, None, 0.0, "unreadable")
    probs: dict[str, float] | None = None
    if rule == "majority":
        ranked = Counter(v for v, _ in valid).most_common()
        winner, top = ranked[0]
        shared = len(ranked) > 1 and ranked[1][1] == top
        support = top / len(valid)
        clear = not shared and support > 0.5
    elif rule == "mean-probability":
        sums = dict.fromkeys(VERDICTS, 0.0)
        for v, p in valid:
            for k in VERDICTS:
                sums[k] += float(p.get(k, 0.0)) if p else float(k == v)
        probs = {k: round(sums[k] / len(valid), 6) for k in VERDICTS}
        order = sorted(VERDICTS, key=lambda k: -probs[k])
        winner, support = order[0], probs[order[0]]
        shared = abs(probs[order[1]] - support) < 1e-9
        clear = not shared
    else:
        raise ConfigError(f"jury combine '{rule}' is not one of {', '.join(RULES)}")
    if abstain and (shared or support <= abstain_below):
        return Decision(None, probs, support, "abstained")
    if not clear:
        return Decision("tie", probs, support, "split")
    unanimous = all(v == winner for v, _ in valid) and len(valid) == len(votes)
    return Decision(winner, probs, support, "unanimous" if unanimous else "majority")


def jurors(spec: JudgeSpec) -> list[JudgeSpec]:
    """The jury's judges, each seeing the pairs in the jury's order setting."""
    return [dataclasses.replace(m, order=spec.order) for m in spec.jury]


def _names(spec: JudgeSpec) -> list[str]:
    """Each juror's label, made unique (two jurors may share a definition and a model)."""
    out: list[str] = []
    for m in spec.jury:
        label = judge_label(m)
        out.append(label if label not in out else f"{label}#{len(out) + 1}")
    return out


def check_jurors(spec: JudgeSpec, where: str = "judge") -> None:
    """Every juror's definition is of one pairwise kind (their verdicts must be about the same items)."""
    kinds = [load_definition(m.name).kind for m in spec.jury]
    for k, m in enumerate(spec.jury):
        if load_definition(m.name).is_rating:
            raise ConfigError(f"config key '{where}.jury.{k}.name': judge '{m.name}' rates single answers; a jury "
                              "combines pairwise verdicts")
        if kinds[k] != kinds[0]:
            raise ConfigError(f"config key '{where}.jury.{k}.name': judge '{m.name}' is of kind '{kinds[k]}', the "
                              f"first juror's is '{kinds[0]}'; every juror must judge the same items")


def _key(item: PairItem) -> tuple:
    return (item.prompt.id, tuple(g.id for g in item.a), tuple(g.id for g in item.b), item.first)


def jury_stage(cfg: RunConfig, spec: JudgeSpec, prompts: list[Prompt], store: RunStore, show: bool = True,
               use_cache: bool = True, answers: Answers | None = None) -> tuple[StageCounts, int]:
    """Run every juror (each through the ordinary judge stage), then derive the jury's verdicts that are not on
    disk yet, and add the items it abstained on to its human queue."""
    check_jurors(spec)
    if answers is None:
        answers = answers_on_disk(cfg, prompts, store.generations())
    total = StageCounts()
    for m in jurors(spec):
        counts, _ = one_judge_stage(cfg, m, prompts, store, show, use_cache, answers)  # a juror is no jury
        total.add(counts)
    p = plan(cfg, spec, prompts, store, answers)
    label, names = judge_label(spec), _names(spec)
    done = store.judgments()
    todo = [i for i in p.items if i.id not in done or done[i.id].error_kind == "call"]
    total.cached += len(p.items) - len(todo)
    prices = [judge_price(m) for m in spec.jury]
    per_juror = []
    for m in jurors(spec):
        mine = plan(cfg, m, prompts, store, answers).items
        per_juror.append({_key(i): done.get(i.id) for i in mine})  # type: ignore[arg-type]
    records = [verdict(i, spec, label, [(n, votes.get(_key(i))) for n, votes in zip(names, per_juror)],  # type: ignore[arg-type]
                       prices) for i in todo]
    store.append_judgments(records)
    total.new += len(records)
    total.errors += sum(1 for r in records if r.error and r.error_kind != "abstain")
    mine_all = [(done | {r.id: r for r in records}).get(i.id) for i in p.items]
    abstained = [j for j in mine_all if j is not None and j.error_kind == "abstain"]
    queued = write_queue(store, spec, abstained)
    header(f"jury: {label} ({spec.jury_rule}{', abstaining' if spec.abstain else ''}): {len(p.items)} verdicts from "
           f"{len(names)} jurors, {len(records)} new, {len(abstained)} abstained"
           + (f" ({queued} new in the human queue {queue_path(store.root, spec)})" if queued else ""), show)
    return total, p.skipped


def verdict(item: PairItem, spec: JudgeSpec, label: str, votes: list[tuple[str, Judgment | None]],
            prices: Sequence[dict[str, float] | None] = ()) -> Judgment:
    """The jury's Judgment of one item from its jurors' Judgments of it (None: not asked yet). Its usage is the
    jurors' together, with their cost in USD where every juror's price is known."""
    usage: dict[str, Any] = {}
    for _, j in votes:
        for k, v in (j.usage if j else {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                usage[k] = usage.get(k, 0) + v
    costs = [records_cost([j], p) for (_, j), p in zip(votes, prices) if j is not None]
    if prices and len(costs) == len(votes) and all(c is not None for c in costs):
        usage["cost_usd"] = round(sum(costs), 6)  # type: ignore[arg-type]
    base: dict[str, Any] = {
        "id": item.id, "prompt_id": item.prompt.id, "model_a": item.gen_a.model, "model_b": item.gen_b.model,
        "judge": label, "shown_first": item.first, "generation_a": item.gen_a.id, "generation_b": item.gen_b.id,
        "usage": usage, "turn": item.gen_a.turn, "cached": all(j is not None and j.cached for _, j in votes),
        "votes": {n: (j.verdict if j is not None else None) for n, j in votes}}
    waiting = [n for n, j in votes if j is None or j.error_kind == "call"]
    if waiting:
        return Judgment(verdict=None, error=f"juror {waiting[0]} has no verdict (its call failed); asked again on a "
                        "rerun", error_kind="call", raw="", **base)
    d = decide([(j.verdict, j.probs) for _, j in votes if j is not None], spec.jury_rule, spec.abstain,
               spec.abstain_below)
    said = ", ".join(f"{n}: {j.verdict or 'unreadable'}" for n, j in votes if j is not None)
    raw = f"{said} -> {d.verdict or 'no verdict'} ({d.outcome}, support {d.support:.2f})"
    if d.outcome == "unreadable":
        return Judgment(verdict=None, error="no juror gave a readable verdict", error_kind="parse", raw=raw, **base)
    if d.outcome == "abstained":
        return Judgment(verdict=None, error=f"the jury abstained ({said}); for people to settle",
                        error_kind="abstain", raw=raw, probs=d.probs, **base)
    return Judgment(verdict=d.verdict, probs=d.probs, raw=raw, **base)  # type: ignore[arg-type]


def queue_path(run_dir: Path, spec: JudgeSpec) -> Path:
    """RUN/human-queue/<jury label>.csv (the label made a plain file name)."""
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "_", judge_label(spec)).strip("._") or "jury"
    return Path(run_dir) / QUEUE_DIR / f"{slug[:150]}.csv"


def write_queue(store: RunStore, spec: JudgeSpec, abstained: list[Judgment]) -> int:
    """Add the pairs the jury abstained on to its human queue, one row per pair with an empty label and
    annotator, leaving every row already in the file as it is (people may be filling it in); pairs people have
    labelled already are left out. Returns how many rows were added."""
    if not abstained:
        return 0
    path = queue_path(store.root, spec)
    listed: set[tuple[str, str, str]] = set()
    if path.exists():
        try:
            with path.open(encoding="utf-8-sig", newline="") as f:
                for row in csv.DictReader(f):
                    listed.add((row.get("prompt_id") or "", row.get("model_a") or "", row.get("model_b") or ""))
        except (OSError, UnicodeDecodeError, csv.Error):
            header(f"jury: {path} could not be read; left as it is (no new rows added)")
            return 0
    settled = {(j.prompt_id, *sorted((j.model_a, j.model_b))) for j in store.judgments(human=True).values()}
    rows = []
    for j in sorted(abstained, key=lambda j: (j.prompt_id, j.model_a, j.model_b)):
        key = (j.prompt_id, j.model_a, j.model_b)
        if key in listed or (j.prompt_id, *sorted((j.model_a, j.model_b))) in settled:
            continue
        listed.add(key)
        rows.append([csv_safe(x) for x in (j.prompt_id, j.model_a, j.model_b)] + ["", "", ""])
    if not rows:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if not path.exists() or path.stat().st_size == 0:
        w.writerow(QUEUE_COLUMNS)
    w.writerows(rows)
    with path.open("a", encoding="utf-8", newline="") as f:
        if path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            f.write("\n")
        f.write(buf.getvalue())
    return len(rows)
