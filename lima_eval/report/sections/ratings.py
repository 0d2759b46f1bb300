"""Absolute ratings (LIMA's fail / pass / excellent, Likert and other scales): each label's share, the mean
score with its interval, per judge, model and subset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lima_eval.report.columns import md, pct, percent, table
from lima_eval.report.html import figure_rows, img, mean_ci
from lima_eval.report.plots import ratings_figure
from lima_eval.report.sections import Context, Section
from lima_eval.report.summary import rating_rows


def flat_rating(r: dict[str, Any]) -> dict[str, Any]:
    """A ratings row as one CSV row: each label's share and interval in columns of their own."""
    flat = {k: v for k, v in r.items() if k not in ("counts", "shares", "labels")}
    for label, share in r.get("shares", {}).items():
        flat[f"share_{label}"] = share["share"]
        flat[f"share_{label}_ci_low"], flat[f"share_{label}_ci_high"] = share["ci_low"], share["ci_high"]
    return flat


def _scales(rows: list[dict[str, Any]]) -> list[tuple[tuple[str, ...], list[dict[str, Any]]]]:
    out = []
    for scale in dict.fromkeys(r["scale"] for r in rows):
        mine = [r for r in rows if r["scale"] == scale]
        out.append((tuple(mine[0]["labels"]), mine))
    return out


class Ratings(Section):
    key, title, rank, place, from_inputs = "ratings", "Absolute ratings", 30, 70, True

    def compute(self, ctx: Context) -> list[dict[str, Any]]:
        return rating_rows(ctx.inp)

    def csv(self, data: list[dict[str, Any]], ctx: Context) -> dict[str, list[dict[str, Any]]]:
        return {"ratings.csv": [flat_rating(r) for r in data]}

    def figure(self, data: list[dict[str, Any]], ctx: Context) -> Path | None:
        return ratings_figure(figure_rows(data, "mean_score"), ctx.out / "ratings.png")

    def markdown(self, data: list[dict[str, Any]], ctx: Context) -> str:
        if not data:
            return ""
        lines = ["## Absolute ratings", ""]
        figure = ctx.figures.get(self.key)
        if figure is not None:
            lines += [f"![ratings]({figure.name})", ""]
        for labels, mine in _scales(data):
            lines += ["| judge | model | subset | n | " + " | ".join(md(x) for x in labels)
                      + " | mean [95%] | errors |",
                      "|---|---|---|---:|" + "---:|" * len(labels) + "---:|---:|"]
            for r in mine:
                cells = " | ".join(f"{r['counts'].get(k, 0)} ({percent(r['shares'].get(k, {}).get('share'))})"
                                   for k in labels)
                lines.append(f"| {md(r['judge'])} | {md(r['model'])} | {md(r['subset'])} | {r['n']} | {cells} | "
                             f"{mean_ci(r)} | {r['errors']} |")
            lines.append("")
        return "\n".join(lines) + "\n"

    def html(self, data: list[dict[str, Any]], ctx: Context) -> list[str]:
        if not data:
            return []
        out = ["<h2>Absolute ratings</h2>", img(ctx.figures.get(self.key), "rating shares")]
        for labels, mine in _scales(data):
            out.append(table(["judge", "model", "subset", "n"] + [f"{k} %" for k in labels] + ["mean [95%]", "errors"],
                             [[r["judge"], r["model"], r["subset"], r["n"]]
                              + [pct(r["shares"].get(k, {}).get("share")) for k in labels]
                              + [mean_ci(r), r["errors"]] for r in mine]))
        return out
