"""`lima-eval leaderboard RESULTS`: every run under RESULTS merged into one table per (judge, benchmark).

Each run's numbers are recomputed from its files (the same code as its report), so a leaderboard never shows
a stale summary. Rows are (model, baseline) with the report's leaderboard columns (report.columns), the run
they come from and the judge's cost in that run.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Any

from lima_eval.errors import LimaEvalError
from lima_eval.report.columns import LEADERBOARD, csv_fields, csv_row, html_table, markdown_table, shown
from lima_eval.report.columns import md as esc

log = logging.getLogger(__name__)


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
    broken = []
    for run in runs:
        try:
            opened = Run(run)
            cfg = opened.config
            inp, groups = gather(opened)
        except LimaEvalError as exc:  # one broken run folder does not hide the others; it is named
            log.warning("leaderboard: skipping %s: %s", run, exc)
            broken.append(run)
            continue
        cost = {c["judge"]: c["cost_usd"] for c in judge_cards(groups)}
        out += [r | {"benchmark": cfg.benchmark.name, "run": run.name, "cost_usd": cost.get(r["judge"])}
                for r in summarize(inp)["rows"]]
    if broken and len(broken) == len(runs):
        raise LimaEvalError(f"{root}: every run folder is broken ({', '.join(str(b) for b in broken)}); see the "
                            "warnings above")
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def write_leaderboard(root: Path, out: Path | None = None) -> Path:
    from lima_eval.report.html import INTERVALS, e, figure_rows, img, page
    from lima_eval.report.plots import leaderboard_figure

    rows = collect(Path(root))
    out = Path(out) if out is not None else Path(root) / "leaderboard"
    out.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["judge"], r["benchmark"]), []).append(r)
    for g in groups.values():
        g.sort(key=lambda r: -(r["win_rate"] or 0))
        for i, r in enumerate(g, 1):
            r["rank"] = i
    with (out / "leaderboard.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=csv_fields(LEADERBOARD))
        w.writeheader()
        for g in groups.values():
            w.writerows(csv_row(LEADERBOARD, r) for r in g)

    md = ["# lima-eval leaderboard", "", (f"{len(rows)} rows from {len(run_dirs(Path(root)))} run(s) under "
          f"`{root}`. Win rate counts ties as half. {INTERVALS}"), ""]
    html = ["<h1>lima-eval leaderboard</h1>", f'<p class="note">Win rate counts ties as half. {e(INTERVALS)}</p>']
    columns = [c for c in shown(LEADERBOARD) if c.key != "judge"]  # the judge is in each table's title
    for (judge, bench), g in groups.items():
        title = f"{judge} on {bench}"
        png = leaderboard_figure(figure_rows(g, "win_rate"), out / f"leaderboard_{_slug(judge)}_{_slug(bench)}.png",
                                 title)
        md += [f"## {esc(title)}", "", f"![{esc(title).replace(']', '')}]({png.name})", "", markdown_table(columns, g), ""]
        html += [f"<h2>{e(title)}</h2>", img(png, title), html_table(columns, g)]
    (out / "leaderboard.md").write_text("\n".join(md), encoding="utf-8")
    (out / "leaderboard.html").write_text(page("lima-eval leaderboard", html), encoding="utf-8")
    return out
