"""Win / tie / loss per (model, baseline, judge): LIMA's Figure 1, with every rate's interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lima_eval.report.columns import CANNOT_TELL, PAIRWISE, csv_row, e, html_table, inline, markdown_table, md, shown
from lima_eval.report.gather import gather
from lima_eval.report.html import INTERVALS, img, under_test
from lima_eval.report.lc import add_difficulty_lc
from lima_eval.report.plots import winrate_figure
from lima_eval.report.sections import Context, Section
from lima_eval.report.summary import pair_table, pairwise_rows, row_keys
from lima_eval.run import Run

EXPLAINED = ("Win / tie / loss are from the model's side, as in LIMA's Figure 1; percentages are of readable "
             "verdicts (n), errors excluded. Win rate counts a tie as half a win; where the judge gave soft scores "
             "(token probabilities, AlpacaEval's weighted preferences) it is their mean, and the discrete win rate "
             "(a win 1, a tie 1/2, a loss 0) stands beside it: a soft mean can sit above equal or better, which "
             "counts discrete verdicts. Equal or better is win + tie (LIMA's abstract), with the wins and ties it "
             "counts; prefers longer is the share of decisive verdicts (wins and losses) between answers of "
             "different lengths that went to the longer answer, with the verdicts it counts. ")
class Pairwise(Section):
    key, title, rank, place, from_inputs = "rows", "Win / tie / loss", 10, 10, True

    @staticmethod
    def of_run(run: Run) -> list[dict[str, Any]]:
        """The rows of a run as `lima-eval report` computes them (Run.summary's table)."""
        inp, _ = gather(run)
        return Pairwise().compute(Context(inp=inp))

    def compute(self, ctx: Context) -> list[dict[str, Any]]:
        keys = row_keys(ctx.inp)
        table, prompt_index, errors, covered = pair_table(ctx.inp, keys)
        rows, stats = pairwise_rows(keys, table, len(prompt_index), errors, covered, ctx.inp.expected)
        add_difficulty_lc(rows, keys, table, len(prompt_index))
        ctx.shared |= {"row_keys": keys, "pair_stats": stats, "pair_table": table, "prompt_index": prompt_index}
        return rows

    def csv(self, data: list[dict[str, Any]], ctx: Context) -> dict[str, list[dict[str, Any]]]:
        return {"summary.csv": [csv_row(PAIRWISE, r) for r in data]}

    def figure(self, data: list[dict[str, Any]], ctx: Context) -> Path | None:
        return winrate_figure(data, ctx.out / "win_tie_loss.png") if data else None

    def markdown(self, data: list[dict[str, Any]], ctx: Context) -> str:
        cfg, _ = ctx.run
        figure = ctx.figures.get(self.key)
        models, baselines = under_test(cfg)
        lines = [f"# lima-eval report: {md(cfg.name)}", "",
                 f"Benchmark **{md(cfg.benchmark.name)}** ({len(ctx.prompts)} prompts). Models under test: "
                 + ", ".join(f"**{md(m)}**" for m in models) + "; baselines: "
                 + ", ".join(f"**{md(b)}**" for b in baselines) + ".", "", f"## {self.title}", ""]
        if figure is not None:
            lines += [f"![win / tie / loss]({figure.name})", ""]
        lines.append(markdown_table(shown(PAIRWISE), _marked(data, ctx), empty="(no judgments yet)"))
        lines += ["", EXPLAINED + INTERVALS, ""]
        return "\n".join(lines)

    def html(self, data: list[dict[str, Any]], ctx: Context) -> list[str]:
        return [f"<h2>{e(self.title)}</h2>", img(ctx.figures.get(self.key), "win / tie / loss per judge"),
                html_table(shown(PAIRWISE), _marked(data, ctx)), f'<p class="note">{inline(EXPLAINED + INTERVALS)}</p>']


def _marked(rows: list[dict[str, Any]], ctx: Context) -> list[dict[str, Any]]:
    """The rows as the tables show them: each row whose judge could not tell the answers apart (its card, from the
    judges section) carries why, so its win rate says it is no finding."""
    why = {c["judge"]: c.get("cannot_tell_apart") for c in ctx.data.get("judges") or []}
    return [r | {CANNOT_TELL: why[r["judge"]]} if why.get(r["judge"]) else r for r in rows]
