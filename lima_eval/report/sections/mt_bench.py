"""MT-bench's score (Zheng et al. 2023): the mean 1-10 grade of single-answer grading over both turns."""

from __future__ import annotations

from typing import Any

from lima_eval.report.sections import Context, Section, table_html, table_markdown
from lima_eval.report.summary import mt_bench_rows

EXPLAINED = ("MT-bench's score (Zheng et al. 2023): the mean 1-10 grade of single-answer grading over both "
             "turns (mt-bench-single for turn 1, mt-bench-single-multiturn for turn 2, or their reference-guided "
             "versions), per judge model; intervals over prompts as above. Per-category columns are means.")


class MTBench(Section):
    key, title, rank, place, from_inputs = "mt_bench", "MT-bench score", 50, 30, True

    def compute(self, ctx: Context) -> list[dict[str, Any]]:
        return mt_bench_rows(ctx.inp)

    def markdown(self, data: list[dict[str, Any]], ctx: Context) -> str:
        return mt_bench_markdown(data)

    def html(self, data: list[dict[str, Any]], ctx: Context) -> list[str]:
        if not data:
            return []
        return table_html(self.title, *mt_bench_table(data), EXPLAINED)


def _cell(m: dict[str, Any]) -> str:
    if m["score"] is None:
        return "-"
    return f"{m['score']:.2f}" + (f" [{m['ci'][0]:.2f}, {m['ci'][1]:.2f}]" if m.get("ci") else "")


def mt_bench_table(rows: list[dict[str, Any]], with_run: bool = False) -> tuple[list[str], list[list[str]]]:
    """(header, cells) of the score table: the report's and the leaderboard's, in Markdown and HTML alike."""
    cats = sorted({c for r in rows for c in r["categories"]})
    head = ["judge", "model"] + (["run"] if with_run else []) + ["score [95%]", "turn 1", "turn 2", "grades"] + cats
    cells = [[r["judge"], r["model"]] + ([r.get("run", "")] if with_run else [])
             + [_cell(r["overall"]), _cell(r["turn_1"]), _cell(r["turn_2"]), str(r["overall"]["n"])]
             + [f"{r['categories'][c]['score']:.2f}" if c in r["categories"]
                and r["categories"][c]["score"] is not None else "-" for c in cats] for r in rows]
    return head, cells


def mt_bench_markdown(rows: list[dict[str, Any]], with_run: bool = False) -> str:
    """The MT-bench score table (the report's and the leaderboard's)."""
    if not rows:
        return ""
    head, cells = mt_bench_table(rows, with_run)
    return table_markdown("MT-bench score", head, cells, EXPLAINED, named=3 if with_run else 2)
