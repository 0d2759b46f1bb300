"""Checklists (WildBench style): the share of its prompt's criteria each model's answers meet."""

from __future__ import annotations

from typing import Any

from lima_eval.report.columns import pct
from lima_eval.report.sections import Context, Section, table_html, table_markdown
from lima_eval.report.summary import checklist_rows

EXPLAINED = ("Each answer checked against its prompt's checklist (yes / no per criterion); the share pools every "
             "criterion of every answer, with its interval over prompts. Per-criterion verdicts are in "
             "ratings.jsonl.")
HEAD = ["judge", "model", "answers", "criteria met % [95%]", "met / criteria", "unreadable"]


def _cells(r: dict[str, Any]) -> list[Any]:
    share = "n/a" if r["share"] is None else pct(r["share"]) + (
        f" [{pct(r['ci'][0])}, {pct(r['ci'][1])}]" if r["ci"] else "")
    return [r["judge"], r["model"], r["answers"], share, f"{r['met']} / {r['criteria']}", r["errors"]]


class Checklist(Section):
    key, title, rank, place, from_inputs = "checklist", "Checklists", 60, 40, True

    def compute(self, ctx: Context) -> list[dict[str, Any]]:
        return checklist_rows(ctx.inp)

    def markdown(self, data: list[dict[str, Any]], ctx: Context) -> str:
        return table_markdown(self.title, HEAD, [_cells(r) for r in data], EXPLAINED) if data else ""

    def html(self, data: list[dict[str, Any]], ctx: Context) -> list[str]:
        return table_html(self.title, HEAD, [_cells(r) for r in data], EXPLAINED) if data else []
