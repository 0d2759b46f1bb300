"""No-op rerun: how long `lima-eval run` takes when every stage's work is already on disk. Prints one JSON line.

    python perf/noop_rerun.py [--repeats 5] [--quickstart DIR]

Builds a small run (the embedded tiny model answers 10 demo prompts and judges them in both orders, SFT
included) in a temporary folder, then times `lima-eval run CONFIG` again `--repeats` times as a user would
(a new process each time). Baseline, measured in the same run: `lima-eval --version` (the interpreter and the
CLI starting, nothing else), so `rerun_over_startup` says what the rerun itself costs. With --quickstart DIR
it also times `lima-eval run` (the built-in quickstart) in DIR, which must hold a finished quickstart run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

CLI = [sys.executable, "-m", "lima_eval.cli"]


def timed(args: list[str], cwd: Path, repeats: int) -> float:
    """Median wall seconds of `args` run as a new process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return statistics.median(times)


def small_run(folder: Path) -> Path:
    tiny = {"backend": "hf", "model": "embedded:tiny-random", "sampling": {"max_new_tokens": 8}}
    config = {
        "name": "noop", "output_dir": str(folder / "results"), "benchmark": {"name": "demo", "limit": 10},
        "sft": {"name": "tuned", "base": "embedded:tiny-random", "data": "demo", "max_steps": 1, "batch_size": 2,
                "micro_batch_size": 2, "max_seq_len": 64, "keep_epochs": [], "checkpoints": False},
        "models": [{"name": "tuned", **tiny}, {"name": "base", **tiny}],
        "baselines": ["base"],
        "judge": {"name": "lima-pairwise", "backend": "hf", "model": "embedded:tiny-random", "logprobs": True,
                  "sampling": {"max_new_tokens": 2}},
    }
    path = folder / "noop.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quickstart", type=Path, default=None, help="a folder holding a finished quickstart run")
    args = ap.parse_args()
    # Byte-code for the package first: with PYTHONDONTWRITEBYTECODE set (or a fresh checkout), every process would
    # otherwise compile the modules changed since the last compile, and time that instead of lima-eval.
    import compileall

    import lima_eval
    compileall.compile_dir(Path(lima_eval.__file__).parent, quiet=1)
    folder = Path(tempfile.mkdtemp(prefix="lima-noop-"))
    env_cache = os.environ.get("LIMA_EVAL_JUDGE_CACHE")
    os.environ["LIMA_EVAL_JUDGE_CACHE"] = str(folder / "judge-cache.sqlite")  # a private cache
    try:
        config = small_run(folder)
        start = time.perf_counter()
        first = subprocess.run(CLI + ["run", str(config), "--no-progress"], cwd=folder, capture_output=True, text=True,
                               check=False)
        first_s = time.perf_counter() - start
        if first.returncode != 0:
            raise SystemExit(f"the first run failed:\n{first.stderr[-2000:]}")
        startup = timed(CLI + ["--version"], folder, args.repeats)
        rerun = timed(CLI + ["run", str(config), "--no-progress"], folder, args.repeats)
        out = {"first_run_s": round(first_s, 2), "startup_s": round(startup, 3), "rerun_s": round(rerun, 3),
               "rerun_over_startup": round(rerun / startup, 2), "repeats": args.repeats}
        if args.quickstart is not None:
            out["quickstart_rerun_s"] = round(timed(CLI + ["run"], args.quickstart, args.repeats), 3)
        print(json.dumps(out))
    finally:
        if env_cache is None:
            os.environ.pop("LIMA_EVAL_JUDGE_CACHE", None)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
