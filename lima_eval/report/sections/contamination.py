"""Contamination: benchmark prompts that appear in the training data, and every rate again without them."""

from __future__ import annotations

import dataclasses
from typing import Any

from lima_eval.contamination import check_run
from lima_eval.errors import LimaEvalError
from lima_eval.report.columns import e, md, pct, table
from lima_eval.report.sections import Context, Section, summarize

HEAD = ["judge", "model", "baseline", "n", "win rate % [95%]"]


def _rate(r: dict[str, Any]) -> str:
    ci = "" if r.get("win_rate_ci_low") is None else f" [{pct(r['win_rate_ci_low'])}, {pct(r['win_rate_ci_high'])}]"
    return "n/a" if r.get("win_rate") is None else f"{pct(r['win_rate'])}{ci}"


def _found(c: dict[str, Any]) -> str:
    return (f"{c['contaminated']} of {c['prompts']} prompts share a {c['ngram']}-word run with the training data "
            f"({', '.join(c['sources'])}, {c['training_texts']} texts)")


class Contamination(Section):
    key, title, rank, place = "contamination", "Contamination", 100, 60

    def compute(self, ctx: Context) -> dict[str, Any] | None:
        cfg, _ = ctx.run
        try:
            found = check_run(cfg, ctx.prompts)
        except LimaEvalError as exc:  # the training data is gone or unreachable (a hub dataset offline): say so
            ctx.shared["contamination_error"] = str(exc)
            return None
        if not found or not found["contaminated"]:
            return found
        bad = {h["prompt_id"] for h in found["hits"]}
        inp = ctx.inp
        clean = dataclasses.replace(
            inp, judgments=[j for j in inp.judgments if j.prompt_id not in bad],
            ratings=[r for r in inp.ratings if r.prompt_id not in bad],
            expected={k: max(0, v - len(bad)) for k, v in inp.expected.items()})
        numbers = summarize(clean)
        return found | {"clean_rows": numbers["rows"], "clean_ratings": [r for r in numbers["ratings"]
                                                                         if r["subset"] == "all"]}

    def notes(self, data: dict[str, Any] | None, ctx: Context) -> list[tuple[int, str]]:
        if "contamination_error" in ctx.shared:
            return [(60, f"Contamination was not checked: {ctx.shared['contamination_error']}")]
        if data and data["contaminated"]:
            return [(60, (f"Contamination: {data['contaminated']} of {data['prompts']} prompts "
                         f"({data['share']:.0%}) appear in the training data ({data['ngram']}-word overlap with "
                         f"{', '.join(data['sources'])}); the Contamination section gives every rate without them."))]
        return []

    def markdown(self, c: dict[str, Any] | None, ctx: Context) -> str:
        if not c or not c["contaminated"]:
            return ""
        lines = ["## Contamination", "", md(_found(c)) + ":", ""]
        lines += [f"- `{md(h['prompt_id'])}`: \"{md(h['matched'][:120])}\"" for h in c["hits"][:50]]
        if c["contaminated"] > 50:
            lines.append(f"- ... and {c['contaminated'] - 50} more (summary.json)")
        lines += ["", "Without them:", "", "| " + " | ".join(HEAD) + " |", "|---|---|---|---:|---:|"]
        for r in c["clean_rows"]:
            lines.append(f"| {md(r['judge'])} | {md(r['model'])} | {md(r['baseline'])} | {r['n']} | {_rate(r)} |")
        return "\n".join(lines) + "\n"

    def html(self, c: dict[str, Any] | None, ctx: Context) -> list[str]:
        if not c or not c["contaminated"]:
            return []
        more = f"<li>... and {c['contaminated'] - 50} more (summary.json)</li>" if c["contaminated"] > 50 else ""
        return ["<h2>Contamination</h2>", f"<p>{e(_found(c))}:</p>",
                "<ul>" + "".join(f"<li><code>{e(h['prompt_id'])}</code>: &quot;{e(h['matched'][:120])}&quot;</li>"
                                 for h in c["hits"][:50]) + more + "</ul>",
                "<p>Without them:</p>",
                table(HEAD, [[r["judge"], r["model"], r["baseline"], r["n"], _rate(r)] for r in c["clean_rows"]])]
