"""Report speed on a real-sized run: `lima-eval report` on 805 AlpacaEval judgments. Prints one JSON line.

    python perf/report_speed.py [--annotations PATH] [--repeats 3]

The run is made (not timed) with `lima-eval import-judgments --format alpaca-eval` from an AlpacaEval
annotations file (default: claude-2 judged by weighted_alpaca_eval_gpt4_turbo in ../shared/data). Timed, as a
user meets it, a new process each time (best of --repeats, process start included):
  report_s        `lima-eval report RUN` rebuilding a report whose figures' data did not change (they are kept:
                  JSONL parsing, numbers, summary.json, CSVs, Markdown, HTML);
  report_drawn_s  the same with the PNGs deleted before each run, so every figure is drawn (a first report, or
                  one whose numbers moved).
Baseline in the same run: `lima-eval --version` (the interpreter and the CLI starting). Also printed: where the
report's time goes inside one process: import_s (the report code, without matplotlib), read_s (JSONL to records),
numbers_s (every section computed), matplotlib_import_s (paid only when a figure is drawn), figures_drawn_s,
figures_unchanged_s (each figure found already drawn from the same data), writing_s (summary.json, CSVs,
report.md, report.html, with their Markdown and HTML rendered), and whole_report_in_process_s (build_report once
more in that process, imports already paid, figures unchanged: a check on the sum of the parts).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO.parent / "shared/data/alpaca_eval/results/claude-2/weighted_alpaca_eval_gpt4_turbo/annotations.json"
CLI = [sys.executable, "-m", "lima_eval.cli"]


def cli(args: list[str]) -> subprocess.CompletedProcess:
    """`lima-eval ARGS` in a new process. `python -m` puts the working directory first on sys.path: started in a
    checkout, it would import that checkout's lima_eval whatever PYTHONPATH says, so it starts in the temp folder."""
    return subprocess.run(CLI + args, capture_output=True, text=True, check=False, cwd=tempfile.gettempdir())


def timed(args: list[str], repeats: int, before: Callable[[], object] = lambda: None) -> float:
    """The best of `repeats` runs of `lima-eval ARGS` (`before` runs untimed ahead of each)."""
    times = []
    for _ in range(repeats):
        before()
        start = time.perf_counter()
        proc = cli(args)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return min(times)


def drop_figures(run_dir: Path) -> None:
    for png in (run_dir / "report").glob("*.png"):
        png.unlink()


def write_files(ctx: Any) -> None:
    """What build_report writes besides the figures, as it writes them: summary.json, CSVs, report.md and
    report.html (its Notes included)."""
    from lima_eval.report import build
    from lima_eval.report.html import write_html
    from lima_eval.report.stats import LEVEL
    from lima_eval.store import write_atomic

    out, parts = ctx.out, ctx.shared["sections"]
    summary = {"run": ctx.cfg.name, "benchmark": ctx.cfg.benchmark.name, "n_prompts": len(ctx.prompts),
               "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
               "intervals": {"level": LEVEL, "over": "prompts", "methods": "docs/report.md"}, **ctx.data}
    write_atomic(out / "summary.json",
                 json.dumps(build.finite(summary), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    for section in parts:
        for name, rows in section.csv(ctx.data[section.key], ctx).items():
            build._csv(out / name, rows)
    shown = sorted(parts, key=lambda s: s.place)
    blocks = [s.markdown(ctx.data[s.key], ctx) for s in shown]
    write_atomic(out / "report.md", "\n".join(b.strip("\n") + "\n" for b in blocks if b))
    write_html(out / "report.html", ctx.cfg, summary, [h for s in shown for h in s.html(ctx.data[s.key], ctx)],
               ctx.inp, ctx.prompts, frozenset())


def stages(run_dir: Path) -> dict[str, float]:
    """Where one report's time goes, in this process (the imports counted once)."""
    out = {}
    start = time.perf_counter()
    from lima_eval.report import build

    out["import_s"] = time.perf_counter() - start
    from lima_eval.report.sections import Context, sections
    from lima_eval.run import Run

    start = time.perf_counter()
    run = Run(run_dir)
    inp, groups = build.gather(run)
    out["read_s"] = time.perf_counter() - start
    start = time.perf_counter()
    parts = sections()  # as build_report computes them
    ctx = Context(inp=inp, cfg=run.config, store=run.store, prompts=run.prompts, groups=groups,
                  shared={"sections": parts})
    for section in parts:
        ctx.data[section.key] = section.compute(ctx)
    out["numbers_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for name in ("matplotlib.figure", "matplotlib.backends.backend_agg"):  # what drawing a figure imports
        importlib.import_module(name)
    out["matplotlib_import_s"] = time.perf_counter() - start
    drop_figures(run_dir)
    for kind in ("figures_drawn_s", "figures_unchanged_s"):
        start = time.perf_counter()
        for section in parts:
            ctx.figures[section.key] = section.figure(ctx.data[section.key], ctx)
        out[kind] = time.perf_counter() - start
    start = time.perf_counter()
    write_files(ctx)
    out["writing_s"] = time.perf_counter() - start
    start = time.perf_counter()
    build.build_report(run_dir)
    out["whole_report_in_process_s"] = time.perf_counter() - start
    return {k: round(v, 3) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--annotations", type=Path, default=DEFAULT)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    # Byte-code for the package first: with PYTHONDONTWRITEBYTECODE set (or a fresh checkout), every process would
    # otherwise compile the modules changed since the last compile, and time that instead of lima-eval.
    import compileall

    import lima_eval
    compileall.compile_dir(Path(lima_eval.__file__).parent, quiet=1)
    if not args.annotations.exists():
        raise SystemExit(f"{args.annotations}: not found (pass --annotations PATH)")
    folder = Path(tempfile.mkdtemp(prefix="lima-report-speed-"))
    try:
        run_dir = folder / "ae"
        made = cli(["import-judgments", str(run_dir), str(args.annotations), "--format", "alpaca-eval"])
        if made.returncode != 0:
            raise SystemExit(f"import failed:\n{made.stderr[-2000:]}")
        n = sum(1 for _ in (run_dir / "imported_judgments.jsonl").open())
        startup = timed(["--version"], args.repeats)
        drawn = timed(["report", str(run_dir)], args.repeats, lambda: drop_figures(run_dir))
        report = timed(["report", str(run_dir)], args.repeats)
        print(json.dumps({"judgments": n, "startup_s": round(startup, 3), "report_s": round(report, 3),
                          "report_drawn_s": round(drawn, 3), "report_over_startup": round(report / startup, 2),
                          **stages(run_dir), "repeats": args.repeats}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
