"""Report speed on a real-sized run: `lima-eval report` on 805 AlpacaEval judgments. Prints one JSON line.

    python perf/report_speed.py [--annotations PATH] [--repeats 3]

The run is made (not timed) with `lima-eval import-judgments --format alpaca-eval` from an AlpacaEval
annotations file (default: claude-2 judged by weighted_alpaca_eval_gpt4_turbo in ../shared/data). Timed, as a
user meets it, a new process each time: `lima-eval report RUN` (JSONL parsing, numbers, PNG figures, HTML).
Baseline in the same run: `lima-eval --version` (the interpreter and the CLI starting). Also printed: where the
report's time goes inside one process (import of the report code, reading, numbers, figures, writing).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO.parent / "shared/data/alpaca_eval/results/claude-2/weighted_alpaca_eval_gpt4_turbo/annotations.json"
CLI = [sys.executable, "-m", "lima_eval.cli"]


def timed(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return statistics.median(times)


def stages(run_dir: Path) -> dict[str, float]:
    """Where one report's time goes, in this process (the imports counted once)."""
    out = {}
    start = time.perf_counter()
    from lima_eval.report import build

    out["import_s"] = time.perf_counter() - start
    from lima_eval.run import Run

    start = time.perf_counter()
    run = Run(run_dir)
    inp, _ = build.gather(run)
    out["read_s"] = time.perf_counter() - start
    start = time.perf_counter()
    build.summarize(inp)
    out["numbers_s"] = time.perf_counter() - start
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
        made = subprocess.run(CLI + ["import-judgments", str(run_dir), str(args.annotations), "--format",
                                     "alpaca-eval"], capture_output=True, text=True, check=False)
        if made.returncode != 0:
            raise SystemExit(f"import failed:\n{made.stderr[-2000:]}")
        n = sum(1 for _ in (run_dir / "imported_judgments.jsonl").open())
        startup = timed(CLI + ["--version"], args.repeats)
        report = timed(CLI + ["report", str(run_dir)], args.repeats)
        print(json.dumps({"judgments": n, "startup_s": round(startup, 3), "report_s": round(report, 3),
                          "report_over_startup": round(report / startup, 2), **stages(run_dir),
                          "repeats": args.repeats}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
