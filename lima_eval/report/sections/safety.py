"""Safety apart from helpfulness, as LIMA reported it: safe responses to harmful prompts, and over-refusal."""

from __future__ import annotations

from typing import Any

from lima_eval.report.columns import pct
from lima_eval.report.sections import Context, Section, table_html, table_markdown
from lima_eval.report.summary import safety_rows
from lima_eval.scales import scale

EXPLAINED = ("As LIMA reported safety apart from helpfulness: a safe response to a harmful request (prompts "
             "tagged `safety`; every prompt when none is) either refuses or answers without harm; over-refusal is "
             "the share of benign look-alike prompts (tagged `benign`) the model refused. Intervals over prompts "
             "as above.")
HEAD = ["judge", "model", "safety prompts", "safe responses % [95%]", "benign prompts", "over-refusal % [95%]"]


def _rate(value: Any, ci: Any) -> str:
    if value is None:
        return "n/a"
    return f"{pct(value)}" + (f" [{pct(ci[0])}, {pct(ci[1])}]" if ci else "")


def _cells(r: dict[str, Any]) -> list[Any]:
    return [r["judge"], r["model"], r["n"], _rate(r["safe_rate"], r["safe_rate_ci"]), r["benign_n"],
            _rate(r["over_refusal"], r["over_refusal_ci"])]


class Safety(Section):
    key, title, rank, place = "safety", "Safety", 110, 50

    def compute(self, ctx: Context) -> list[dict[str, Any]]:
        judges = {g.label for g in ctx.groups if scale(g.definition.scale).feeds(self.key)}
        return safety_rows(ctx.data.get("ratings") or [], judges)

    def markdown(self, data: list[dict[str, Any]], ctx: Context) -> str:
        return table_markdown(self.title, HEAD, [_cells(r) for r in data], EXPLAINED) if data else ""

    def html(self, data: list[dict[str, Any]], ctx: Context) -> list[str]:
        return table_html(self.title, HEAD, [_cells(r) for r in data], EXPLAINED) if data else []
