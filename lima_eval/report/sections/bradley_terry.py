"""Bradley-Terry ratings per judge: every model on one Elo-like scale, anchored at a baseline = 1000."""

from __future__ import annotations

from typing import Any

from lima_eval.report.columns import inline, md, table
from lima_eval.report.html import rating_ci
from lima_eval.report.sections import Context, Section
from lima_eval.report.summary import bt_ratings

EXPLAINED = ("Fitted on every pairwise judgment of the judge (ties half a win each); Elo scale with the anchor at "
             "1000; intervals: Wald on the log strength with the larger of the model-based and the "
             "prompt-clustered variance.")


class BradleyTerry(Section):
    key, title, rank, place, from_inputs = "bradley_terry", "Bradley-Terry ratings", 20, 20, True

    def compute(self, ctx: Context) -> list[dict[str, Any]]:
        keys = ctx.shared.get("row_keys") or []
        if not keys:
            return []
        return bt_ratings(keys, ctx.shared["pair_stats"], ([ctx.anchor] if ctx.anchor else []) + ctx.inp.baselines)

    def csv(self, data: list[dict[str, Any]], ctx: Context) -> dict[str, list[dict[str, Any]]]:
        return {"bradley_terry.csv": data}

    def markdown(self, data: list[dict[str, Any]], ctx: Context) -> str:
        if not data:
            return ""
        lines = ["## Bradley-Terry ratings", "", "| judge | model | rating | 95% interval | P(beats anchor) |",
                 "|---|---|---:|---:|---:|"]
        for r in sorted(data, key=lambda r: (r["judge"], -(r["rating"] if r["rating"] is not None else -1e9))):
            rating, interval = rating_ci(r)
            beats = "-" if r["p_beats_anchor"] is None else f"{r['p_beats_anchor']:.2f}"
            lines.append(f"| {md(r['judge'])} | {md(r['model'])}{' (anchor)' if r['model'] == r['anchor'] else ''} | "
                         f"{rating} | {interval} | {beats} |")
        lines += ["", EXPLAINED]
        return "\n".join(lines) + "\n"

    def html(self, data: list[dict[str, Any]], ctx: Context) -> list[str]:
        if not data:
            return []
        return ["<h2>Bradley-Terry ratings</h2>",
                table(["judge", "model", "rating", "95% interval", "P(beats anchor)"],
                      [[r["judge"], r["model"] + (" (anchor)" if r["model"] == r["anchor"] else ""),
                        *rating_ci(r), "-" if r["p_beats_anchor"] is None else f"{r['p_beats_anchor']:.2f}"]
                       for r in data]),
                f'<p class="note">{inline(EXPLAINED)}</p>']
