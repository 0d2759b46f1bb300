"""Hostile files refused fast and small: time and peak memory of `lima-eval` refusing each hostile input of issue
25 (a 1 KB YAML alias bomb as a config value, a --set value and a judge.yaml label list; JSON nested 100,000 deep
in a prompt file; a config 5 MB large). Prints one JSON line.

    python perf/hostile_inputs.py [--repeats 3]

Each case runs `lima-eval run` (or `check`) as a user would, in a new process, and is timed whole; peak memory is
the process's maximum resident set size. Baseline, measured in the same run: `lima-eval run --dry-run` of the good
config (the same start-up, config reading and preflight, nothing hostile), so `*_over_good` says what refusing the
hostile file costs beyond reading a good one. The issue's budget: under 2 s and 200 MB each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

CLI = [sys.executable, "-m", "lima_eval.cli"]


def bomb(levels: int = 9, fan: int = 9) -> str:
    parts = ["&l0 [" + ",".join(["lol"] * fan) + "]"]
    parts += [f"&l{i} [" + ",".join([f"*l{i - 1}"] * fan) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


def measure(args: list[str], repeats: int) -> tuple[float, float, int]:
    """(median seconds, peak MB, exit code) of a command run `repeats` times, each in a new process."""
    times, peak, code = [], 0.0, 0
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)  # ru_maxrss: KiB on Linux
        times.append(time.perf_counter() - start)
        peak = max(peak, usage.ru_maxrss / 1024)
        code = status >> 8
    return statistics.median(times), peak, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lima-hostile-"))
    (tmp / "prompts.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Q{i}?"}) + "\n"
                                               for i in range(4)))
    good = {"name": "good", "output_dir": str(tmp / "results"),
            "benchmark": {"name": "file", "path": str(tmp / "prompts.jsonl")},
            "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                       {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
            "baselines": ["base"], "judge": {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B"}}
    (tmp / "good.yaml").write_text(yaml.safe_dump(good))
    text = yaml.safe_dump(good)
    (tmp / "bomb.yaml").write_text(text.replace("name: good", f"name: {bomb()}"))
    (tmp / "large.yaml").write_text(text + "x:\n" + "  - {a: 1, b: 2}\n" * 350_000)
    (tmp / "deep.jsonl").write_text('{"id": "p1", "prompt": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    (tmp / "deep.yaml").write_text(yaml.safe_dump(good | {"benchmark": {"name": "file",
                                                                        "path": str(tmp / "deep.jsonl")}}))
    judge = tmp / "judges" / "bomb"
    judge.mkdir(parents=True)
    (judge / "judge.yaml").write_text(f"kind: rating\nparser: lima-absolute\nlabels: {bomb()}\n")
    (judge / "prompt.txt").write_text("{prompt} {answer}")
    (tmp / "judge.yaml").write_text(yaml.safe_dump(good | {"judge": good["judge"] | {"name": str(judge)}}))
    (tmp / "rules.yaml").write_text(f"rules: {bomb()}\n")
    cases = {
        "config_alias_bomb": [*CLI, "run", str(tmp / "bomb.yaml")],
        "set_alias_bomb": [*CLI, "run", str(tmp / "good.yaml"), "--set", f"name={bomb()}"],
        "judge_labels_alias_bomb": [*CLI, "run", str(tmp / "judge.yaml")],
        "config_5mb": [*CLI, "run", str(tmp / "large.yaml")],
        "prompts_deep_json": [*CLI, "run", str(tmp / "deep.yaml")],
        "rules_alias_bomb": [*CLI, "check", str(tmp / "results" / "good"), "--rules", str(tmp / "rules.yaml")],
    }
    base_s, base_mb, code = measure([*CLI, "run", str(tmp / "good.yaml"), "--dry-run"], args.repeats)
    assert code == 0, "the good config failed"
    subprocess.run([*CLI, "run", str(tmp / "good.yaml"), "--no-progress"], capture_output=True, check=True)
    out: dict[str, float | int] = {"good_dry_run_s": round(base_s, 3), "good_dry_run_peak_mb": round(base_mb, 1)}
    for name, cmd in cases.items():
        s, mb, code = measure(cmd, args.repeats)
        assert code != 0, f"{name}: accepted"
        out |= {f"{name}_s": round(s, 3), f"{name}_peak_mb": round(mb, 1), f"{name}_over_good": round(s / base_s, 2)}
    out["max_s"] = max(v for k, v in out.items() if k.endswith("_s") and not k.startswith("good"))
    out["max_peak_mb"] = max(v for k, v in out.items() if k.endswith("_peak_mb") and not k.startswith("good"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
