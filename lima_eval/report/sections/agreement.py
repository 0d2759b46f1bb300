"""Judge agreement: every two judges (people included) on the items both labelled, with LIMA's
tie-discounted accuracy, Cohen's kappa and the always-pick-the-longer-answer floor."""

from __future__ import annotations

from typing import Any

from lima_eval.report.columns import inline, md, pct, percent, table
from lima_eval.report.sections import Context, Section
from lima_eval.report.summary import judge_agreement

EXPLAINED = ("Tie-discounted accuracy is LIMA's: 1 when both judges agree, 0.5 when exactly one says tie, 0 "
             "otherwise. The floor is the same figure for a judge that always picks the longer answer.")


class Agreement(Section):
    key, title, rank, place, from_inputs = "agreement", "Judge agreement", 40, 100, True

    def compute(self, ctx: Context) -> list[dict[str, Any]]:
        return judge_agreement(ctx.inp)

    def csv(self, data: list[dict[str, Any]], ctx: Context) -> dict[str, list[dict[str, Any]]]:
        return {"agreement.csv": data}

    def markdown(self, data: list[dict[str, Any]], ctx: Context) -> str:
        if not data:
            return ""
        lines = ["## Judge agreement", "",
                 ("| judge A | judge B | n | tie-discounted accuracy | agreement (with ties) | "
                  "agreement (without ties) | Cohen's kappa | longer-answer floor (vs A / vs B) |"),
                 "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in data:
            floor = "-" if r.get("longer_answer_vs_a") is None else (
                f"{percent(r['longer_answer_vs_a'])} / {percent(r['longer_answer_vs_b'])}")
            kappa = "-" if r["kappa"] is None else f"{r['kappa']:.3f}"
            lines.append(f"| {md(r['judge_a'])} | {md(r['judge_b'])} | {r['n']} | {percent(r['tie_discounted'])} | "
                         f"{percent(r['with_ties'])} | {percent(r['without_ties'])} | {kappa} | {floor} |")
        lines += ["", EXPLAINED]
        return "\n".join(lines) + "\n"

    def html(self, data: list[dict[str, Any]], ctx: Context) -> list[str]:
        if not data:
            return []
        return ["<h2>Judge agreement</h2>", table(
            ["judge A", "judge B", "n", "tie-discounted %", "with ties %", "without ties %", "Cohen's kappa",
             "longer-answer floor vs A / B %"],
            [[r["judge_a"], r["judge_b"], r["n"], pct(r["tie_discounted"]), pct(r["with_ties"]),
              pct(r["without_ties"]), "-" if r["kappa"] is None else f"{r['kappa']:.3f}",
              f"{pct(r.get('longer_answer_vs_a'))} / {pct(r.get('longer_answer_vs_b'))}"] for r in data]),
            f'<p class="note">{inline(EXPLAINED)}</p>']
