"""`lima-eval leaderboard RESULTS`: every run under RESULTS merged into one table per (judge, benchmark).

Each run's numbers are recomputed from its files (the same code as its report), so a leaderboard never shows
a stale summary. Rows are (model, baseline) with the report's leaderboard columns (report.columns), the run
they come from and the judge's cost in that run. A run made by imports is filed under the benchmark its labels
come from (alpaca-eval for AlpacaEval's annotations), not under `imported`; a figure's n/a reason is a note
under its table.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from lima_eval.config import IMPORTED
from lima_eval.errors import LimaEvalError
from lima_eval.judging.cards import CARD
from lima_eval.judging.foreign import text_key
from lima_eval.report.build import gather, judge_cards, mt_bench_markdown, summarize_with_table
from lima_eval.report.columns import (
    COUNT,
    LEADERBOARD,
    NUMBER,
    TEXT,
    Column,
    Kind,
    csv_fields,
    csv_row,
    csv_safe,
    html_table,
    markdown_table,
    shown,
)
from lima_eval.report.columns import md as esc
from lima_eval.report.html import INTERVALS, e, figure_rows, img, page
from lima_eval.report.lc import KEY as LC_DIFFICULTY
from lima_eval.report.lc import ModelData, fill, row_data
from lima_eval.report.plots import judges_figure, leaderboard_figure
from lima_eval.run import Run

log = logging.getLogger(__name__)

# The benchmark behind imported labels, by the prefix the import gives their judge (lima_eval.judging.foreign).
IMPORTED_SOURCES = (("alpaca-eval:", "alpaca-eval"), ("mt-bench-single:", "mt-bench"), ("mt-bench:", "mt-bench"),
                    ("pandalm:", "PandaLM's test set"))

# Next to a table with the instruction-difficulty LC: what the column is not (docs/report.md, checked on
# ../shared/data's AlpacaEval 2 annotation files by tests/test_report_reproduce.py).
LC_DIFFICULTY_NOTE = (
    "** The length-controlled win rate with difficulty is lima-eval's own fit, not AlpacaEval's published LC: on "
    "AlpacaEval 2's own annotation files (7 models, and sets of 4 of them) its values read from 1 point lower to 6 "
    "points higher than the published LC, while the ranking matched the published one on every set tried.")


def run_dirs(root: Path) -> list[Path]:
    """Run directories directly under root (or root itself), recognised by their config.yaml."""
    if (root / "config.yaml").exists():
        return [root]
    return sorted(p.parent for p in root.glob("*/config.yaml"))


def collect(root: Path, mt_bench: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every run's pairwise rows (and, into `mt_bench` when given, its MT-bench score rows)."""
    runs = run_dirs(Path(root))
    if not runs:
        raise LimaEvalError(f"{root}: no run directories (folders with a config.yaml) found")
    out: list[dict[str, Any]] = []
    broken = []
    # The instruction-difficulty LC is fitted again over every run of a (benchmark, judge, baseline): prompts are
    # matched across runs by their text.
    prompt_ids: dict[str, int] = {}
    verdicts: dict[tuple[str, str, str], dict[int, ModelData]] = {}
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
        numbers, table, index = summarize_with_table(inp)
        bench = cfg.benchmark.name if cfg.benchmark.name != IMPORTED else imported_benchmark(inp, len(index))
        texts = {p.id: p.text for p in opened.prompts}
        shared = np.array([prompt_ids.setdefault(text_key(texts.get(pid, pid)), len(prompt_ids))
                           for pid in sorted(index, key=index.__getitem__)], dtype=np.int64)
        if mt_bench is not None:
            mt_bench += [r | {"benchmark": bench, "run": run.name} for r in numbers["mt_bench"]]
        for r, row in enumerate(numbers["rows"]):
            out.append(row | {"benchmark": bench, "run": run.name, "cost_usd": cost.get(row["judge"])})
            d = row_data(table, r, shared) if len(shared) else None
            if d is not None:
                verdicts.setdefault((bench, row["judge"], row["baseline"]), {})[len(out) - 1] = d
    for data in verdicts.values():
        fill(out, data, len(prompt_ids))
    if broken and len(broken) == len(runs):
        raise LimaEvalError(f"{root}: every run folder is broken ({', '.join(str(b) for b in broken)}); see the "
                            "warnings above")
    return out


def imported_benchmark(inp: Any, prompts: int) -> str:
    """The benchmark a run made by imports used: the one its labels' source names ('alpaca-eval (imported)'),
    else its prompt count ('12 imported prompts')."""
    judges = {j.judge for j in inp.imported} | {r.judge for r in inp.ratings}
    found = {bench for judge in judges for prefix, bench in IMPORTED_SOURCES if judge.startswith(prefix)}
    return f"{found.pop()} (imported)" if len(found) == 1 else f"{prompts} imported prompts"


def with_notes(columns: list[Column], rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows with each n/a reason of a shown column replaced by 'note N', and the notes in order (a reason
    several cells share is one note): a reason in the cell made it five lines tall."""
    notes: list[str] = []
    out = []
    for r in rows:
        r = dict(r)
        for c in columns:
            key = c.key + "_na"
            if key in c.fields and r.get(key):
                if r[key] not in notes:
                    notes.append(r[key])
                r[key] = f"note {notes.index(r[key]) + 1}"
        out.append(r)
    return out, [f"note {i}: {reason}" for i, reason in enumerate(notes, 1)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def write_leaderboard(root: Path, out: Path | None = None) -> Path:
    scores: list[dict[str, Any]] = []
    rows = collect(Path(root), scores)
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
        cells, notes = with_notes(columns, g)
        if any(r.get(LC_DIFFICULTY) is not None for r in g) and any(c.key == LC_DIFFICULTY for c in columns):
            notes.append(LC_DIFFICULTY_NOTE)
        md += [f"## {esc(title)}", "", f"![{esc(title).replace(']', '')}]({png.name})", "",
               markdown_table(columns, cells), ""] + [f"{esc(n)}  " for n in notes] + ([""] if notes else [])
        html += [f"<h2>{e(title)}</h2>", img(png, title), html_table(columns, cells)]
        html += [f'<p class="note">{e(n)}</p>' for n in notes]
    if scores:
        scores.sort(key=lambda r: (r["judge"], -(r["overall"]["score"] or 0)))
        section = mt_bench_markdown(scores, with_run=True)
        md += [section]
        html += [f"<pre class=\"note\">{e(section)}</pre>"]
        with (out / "mt_bench.csv").open("w", newline="", encoding="utf-8") as f:
            plain = csv.writer(f)
            plain.writerow(["judge", "model", "run", "benchmark", "score", "score_ci_low", "score_ci_high", "turn_1",
                        "turn_2", "grades"])
            for r in scores:
                ci = r["overall"]["ci"] or [None, None]
                plain.writerow([csv_safe(x) for x in (r["judge"], r["model"], r["run"], r["benchmark"],
                                                   r["overall"]["score"], ci[0], ci[1], r["turn_1"]["score"],
                                                   r["turn_2"]["score"], r["overall"]["n"])])
    (out / "leaderboard.md").write_text("\n".join(md), encoding="utf-8")
    (out / "leaderboard.html").write_text(page("lima-eval leaderboard", html), encoding="utf-8")
    return out


def judge_rows(root: Path) -> list[dict[str, Any]]:
    """One flat row per judge card under ROOT/judge-cards/ (lima-eval judge-card), best kappa first."""
    rows = []
    for path in sorted((Path(root) / "judge-cards").glob(f"*/{CARD}")):
        try:
            c = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("judges leaderboard: skipping %s: %s", path, exc)
            continue
        vs, ceiling, pos, length = (c.get(k) or {}
                                    for k in ("vs_human_majority", "human_ceiling", "position", "length"))
        stability = c.get("stability") or {}
        share = lambda d: (d or {}).get("share")
        rows.append({
            "judge": c.get("judge"), "gold": c.get("gold"), "judged": c.get("judged"), "kappa": vs.get("kappa"),
            "kappa_ci_low": (vs.get("kappa_ci") or [None, None])[0],
            "kappa_ci_high": (vs.get("kappa_ci") or [None, None])[1],
            "tie_discounted": vs.get("tie_discounted"), "ceiling_kappa": ceiling.get("kappa"),
            "position_consistency": share(pos.get("consistency")),
            "first_shown_wins": share(pos.get("first_shown_wins")),
            "prefers_longer": share(length.get("judge_prefers_longer")),
            "humans_prefer_longer": share(length.get("humans_prefer_longer")),
            "flip_rate": share(stability.get("flip_rate")), "fleiss_kappa": stability.get("fleiss_kappa"),
            "repeats": c.get("repeats"), "parse_errors": c.get("parse_errors"), "records": c.get("records"),
            "cost_usd_per_1000": c.get("cost_usd_per_1000"), "wall_s_per_1000": c.get("wall_s_per_1000"),
            "card": str(path.parent.name)})
    return sorted(rows, key=lambda r: -(r["kappa"] if r["kappa"] is not None else -9))


def write_judges_board(root: Path, out: Path | None = None) -> Path:
    """`lima-eval leaderboard --judges RESULTS`: every judge card side by side (CSV, Markdown, HTML, PNG)."""
    rows = judge_rows(Path(root))
    if not rows:
        raise LimaEvalError(f"{root}: no judge cards in {Path(root) / 'judge-cards'} (make one with lima-eval "
                            "judge-card JUDGE --gold GOLD)")
    pct = lambda key: (lambda r, k: "-" if r.get(key) is None else f"{100 * r[key]:.1f}")
    columns = (Column("judge", "judge", TEXT), Column("gold", "gold set", TEXT), Column("judged", "items", COUNT),
               Column("kappa", "kappa vs humans", NUMBER), Column("ceiling_kappa", "human ceiling", NUMBER),
               Column("tie_discounted", "tie-discounted %", _kind(pct("tie_discounted"))),
               Column("position_consistency", "position consistency %", _kind(pct("position_consistency"))),
               Column("first_shown_wins", "first shown wins %", _kind(pct("first_shown_wins"))),
               Column("prefers_longer", "longer wins % (humans)", _kind(
                   lambda r, k: ("-" if r.get("prefers_longer") is None else f"{100 * r['prefers_longer']:.1f}")
                   + ("" if r.get("humans_prefer_longer") is None else f" ({100 * r['humans_prefer_longer']:.1f})"))),
               Column("flip_rate", "flip rate %", _kind(pct("flip_rate"))),
               Column("fleiss_kappa", "Fleiss kappa", NUMBER),
               Column("parse_errors", "parse errors", COUNT),
               Column("cost_usd_per_1000", "USD per 1,000", NUMBER), Column("wall_s_per_1000", "s per 1,000", NUMBER))
    out = Path(out) if out is not None else Path(root) / "leaderboard"
    out.mkdir(parents=True, exist_ok=True)
    with (out / "judges.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({k: csv_safe(v) for k, v in r.items()} for r in rows)
    png = judges_figure(rows, out / "judges.png")
    note = ("Each judge against the human majority of its gold set (Cohen's kappa, 95% bootstrap interval in "
            "judges.csv), next to people's own agreement (the ceiling); biases and stability from `lima-eval "
            "judge-card`.")
    (out / "judges.md").write_text("\n".join(["# lima-eval judges", "", note, "", f"![judges]({png.name})", "",
                                              markdown_table(columns, rows), ""]), encoding="utf-8")
    (out / "judges.html").write_text(page("lima-eval judges", ["<h1>lima-eval judges</h1>", f"<p>{e(note)}</p>",
                                                               img(png, "judges"), html_table(columns, rows)]),
                                     encoding="utf-8")
    return out


def _kind(cell: Any) -> Any:
    return Kind("custom", cell)
