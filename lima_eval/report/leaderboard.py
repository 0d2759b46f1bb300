"""`lima-eval leaderboard RESULTS`: every run under RESULTS merged into one table per (judge, benchmark).

Each run's numbers are recomputed from its files (the same code as its report), so a leaderboard never shows
a stale summary. Rows are (model, baseline) with the run they come from, n, the win rate with its interval,
equal-or-better, the length-controlled win rate with its interval (or n/a and why), errors, and the judge's
cost in that run.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from lima_eval.errors import LimaEvalError

COLUMNS = ("judge", "benchmark", "model", "baseline", "run", "n", "errors", "win_rate", "win_rate_ci_low",
           "win_rate_ci_high", "win_rate_na", "standard_error", "discrete_win_rate", "equal_or_better",
           "length_controlled_win_rate", "length_controlled_win_rate_ci_low", "length_controlled_win_rate_ci_high",
           "length_controlled_win_rate_na", "cost_usd")


def run_dirs(root: Path) -> list[Path]:
    """Run directories directly under root (or root itself), recognised by their config.yaml."""
    if (root / "config.yaml").exists():
        return [root]
    return sorted(p.parent for p in root.glob("*/config.yaml"))


def collect(root: Path) -> list[dict[str, Any]]:
    from lima_eval.report.build import gather, judge_cards, summarize
    from lima_eval.run import Run

    runs = run_dirs(Path(root))
    if not runs:
        raise LimaEvalError(f"{root}: no run directories (folders with a config.yaml) found")
    out = []
    for run in runs:
        opened = Run(run)
        cfg = opened.config
        inp, groups = gather(opened)
        cost = {c["judge"]: c["cost_usd"] for c in judge_cards(groups)}
        for r in summarize(inp)["rows"]:
            out.append({"judge": r["judge"], "benchmark": cfg.benchmark.name, "model": r["model"],
                        "baseline": r["baseline"], "run": run.name} | {k: r.get(k) for k in COLUMNS[5:-1]}
                       | {"cost_usd": cost.get(r["judge"])})
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def write_leaderboard(root: Path, out: Path | None = None) -> Path:
    from lima_eval.report.html import INTERVALS, ci, e, figure_rows, img, page, pct, table
    from lima_eval.report.plots import leaderboard_figure

    rows = collect(Path(root))
    out = Path(out) if out is not None else Path(root) / "leaderboard"
    out.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["judge"], r["benchmark"]), []).append(r)
    for g in groups.values():
        g.sort(key=lambda r: -(r["win_rate"] or 0))
    with (out / "leaderboard.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        for g in groups.values():
            w.writerows(g)

    md = ["# lima-eval leaderboard", "", (f"{len(rows)} rows from {len(run_dirs(Path(root)))} run(s) under "
          f"`{root}`. Win rate counts ties as half. {INTERVALS}"), ""]
    html = ["<h1>lima-eval leaderboard</h1>"]
    headers = ["#", "model", "baseline", "run", "n", "win rate % [95%]", "equal or better %", "LC % [95%]", "errors",
               "cost (USD)"]
    for (judge, bench), g in groups.items():
        title = f"{judge} on {bench}"
        png = leaderboard_figure(figure_rows(g, "win_rate"), out / f"leaderboard_{_slug(judge)}_{_slug(bench)}.png",
                                 title)
        cells = [[str(i), r["model"], r["baseline"], r["run"], str(r["n"]), ci(r, "win_rate"),
                  pct(r["equal_or_better"]), ci(r, "length_controlled_win_rate"), str(r["errors"]),
                  "-" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}"] for i, r in enumerate(g, 1)]
        md += [f"## {title}", "", f"![{title}]({png.name})", "", "| " + " | ".join(headers) + " |",
               "|---:|---|---|---|" + "---:|" * 6] + ["| " + " | ".join(row) + " |" for row in cells] + [""]
        html += [f"<h2>{e(title)}</h2>", img(png, title), table(headers, cells)]
    (out / "leaderboard.md").write_text("\n".join(md), encoding="utf-8")
    (out / "leaderboard.html").write_text(page("lima-eval leaderboard", html), encoding="utf-8")
    return out
