"""Report scale: a million synthetic pairwise judgments over 20 models, summarised. Prints one JSON line.

    python perf/report_scale.py [--models 20] [--judgments 1000000] [--from-disk] [--sweep 500,5000,20000]

Every pair of models (round robin) is judged on the same prompts, with verdicts drawn from a Bradley-Terry
model with known strengths (ties included). Timed: the full summary from Judgment records in memory, i.e.
the report's own code path (records -> columns -> win rates, standard errors, 1,000-resample bootstrap
intervals, length control with its intervals (every answer has a length), Bradley-Terry with bootstrap
intervals, agreement). Not timed: making the records.
Also printed: how well the fitted ratings recover the true strengths (Spearman), as a check on the numbers.
With --from-disk the same records are also written as a run folder (config, generations, judgments; not
timed) and `lima-eval report RUN` is timed on it as a user meets it: a new process, JSONL parsing, numbers,
figures, HTML.
The sweep (`sweep`, `sweep_ratios`) times the same summary, and the instruction-difficulty LC fit alone
(`lc_seconds`), at several prompts per pair over --sweep-models models in round robin (8: groups of up to seven
models against one baseline, as AlpacaEval 2's seven): both should grow as the prompts do (ratios 10 and 4 for
500 -> 5,000 -> 20,000), where a dense fit grew with their cube.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def synthetic(n_models: int, n_judgments: int, seed: int = 0):  # type: ignore[no-untyped-def]
    from lima_eval.records import Generation, Judgment

    rng = np.random.default_rng(seed)
    models = [f"model-{i:02d}" for i in range(n_models)]
    strength = np.linspace(-1.5, 1.5, n_models)  # log strengths
    pairs = [(a, b) for a in range(n_models) for b in range(a + 1, n_models)]
    n_prompts = -(-n_judgments // len(pairs))
    # Every model answers every prompt; answer lengths feed the length-controlled win rate.
    gens = {f"g{m}-{k}": Generation(id=f"g{m}-{k}", prompt_id=f"p{k}", model=models[m], text="x" * int(length))
            for m in range(n_models) for k, length in enumerate(rng.integers(50, 1500, n_prompts))}
    out = []
    for a, b in pairs:
        p_a = 1 / (1 + np.exp(strength[b] - strength[a]))
        draw = rng.random(n_prompts)
        tie = draw < 0.1
        a_wins = (~tie) & (rng.random(n_prompts) < p_a)
        for k in range(n_prompts):
            verdict = "tie" if tie[k] else ("a" if a_wins[k] else "b")
            out.append(Judgment(id=f"{a}-{b}-{k}", prompt_id=f"p{k}", model_a=models[a], model_b=models[b],
                                judge="synthetic", verdict=verdict, generation_a=f"g{a}-{k}",  # type: ignore[arg-type]
                                generation_b=f"g{b}-{k}", shown_first="a" if k % 2 else "b"))
            if len(out) == n_judgments:
                return models, strength, out, gens
    return models, strength, out, gens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--judgments", type=int, default=1_000_000)
    ap.add_argument("--resamples", type=int, default=1000,
                    help="unused since intervals are analytic (kept for scripts)")
    ap.add_argument("--from-disk", action="store_true", help="also time `lima-eval report` on a run folder")
    ap.add_argument("--sweep", default="500,5000,20000", metavar="N,N,...",
                    help="prompts per pair to time the summary and the LC fit at ('' for none)")
    ap.add_argument("--sweep-models", type=int, default=8)
    args = ap.parse_args()

    from lima_eval.report.build import summarize
    from lima_eval.report.summary import Inputs

    models, strength, judgments, gens = synthetic(args.models, args.judgments)
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    inp = Inputs(judgments=judgments, ratings=[], generations=gens, pairs=pairs, baselines=[models[0]],
                 resamples=args.resamples)
    start = time.perf_counter()
    summary = summarize(inp)
    seconds = time.perf_counter() - start

    fitted = {r["model"]: r["rating"] for r in summary["bradley_terry"]}
    order_true = np.argsort(np.argsort(strength))
    order_fit = np.argsort(np.argsort([fitted[m] for m in models]))
    spearman = float(np.corrcoef(order_true, order_fit)[0, 1])
    # Elo difference implied by the true strengths between the strongest and the anchor (model-00).
    true_top = 400 / np.log(10) * (strength[-1] - strength[0])
    disk = from_disk(models, judgments, gens) if args.from_disk else {}
    n_judgments, n_rows = len(judgments), len(summary["rows"])
    del judgments, gens, inp, summary  # the sweep's records take their place
    points = [int(n) for n in args.sweep.split(",") if n.strip()]
    sweep = [sweep_point(args.sweep_models, n, args.resamples) for n in points]
    print(json.dumps({
        "n_judgments": n_judgments, "models": args.models, "rows": n_rows,
        "seconds": round(seconds, 3), **disk,
        "sweep": sweep, "sweep_ratios": ratios(sweep),
        "bt_spearman_vs_truth": round(spearman, 4),
        "bt_top_minus_anchor": round(fitted[models[-1]] - 1000, 1), "true_top_minus_anchor": round(true_top, 1),
    }))


def sweep_point(n_models: int, prompts_per_pair: int, resamples: int) -> dict[str, float]:
    """The summary's time, and the instruction-difficulty LC fit's alone, at `prompts_per_pair`."""
    from lima_eval.report.build import summarize
    from lima_eval.report.lc import add_difficulty_lc
    from lima_eval.report.summary import Inputs, pair_table, row_keys

    pairs_count = n_models * (n_models - 1) // 2
    models, _, judgments, gens = synthetic(n_models, prompts_per_pair * pairs_count)
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    inp = Inputs(judgments=judgments, ratings=[], generations=gens, pairs=pairs, baselines=[models[0]],
                 resamples=resamples)
    start = time.perf_counter()
    summary = summarize(inp)
    seconds = time.perf_counter() - start
    keys = row_keys(inp)
    table, index, _, _ = pair_table(inp, keys)
    rows: list[dict] = [{} for _ in keys]  # type: ignore[type-arg]
    start = time.perf_counter()
    add_difficulty_lc(rows, keys, table, len(index))
    lc_seconds = time.perf_counter() - start
    fitted = sum(r.get("length_controlled_difficulty_win_rate") is not None for r in summary["rows"])
    return {"prompts_per_pair": prompts_per_pair, "judgments": len(judgments), "seconds": round(seconds, 3),
            "lc_seconds": round(lc_seconds, 3), "lc_rows": fitted}


def ratios(sweep: list[dict[str, float]]) -> list[dict[str, float]]:
    """Between consecutive sweep points: how many times the prompts, the summary's and the LC fit's time grew."""
    return [{"prompts": round(b["prompts_per_pair"] / a["prompts_per_pair"], 2),
             "seconds": round(b["seconds"] / max(a["seconds"], 1e-3), 2),
             "lc_seconds": round(b["lc_seconds"] / max(a["lc_seconds"], 1e-3), 2)}
            for a, b in itertools.pairwise(sweep)]


def from_disk(models: list[str], judgments: list, gens: dict) -> dict[str, float]:  # type: ignore[type-arg]
    """Write the records as a run folder of imported models and time `lima-eval report` on it."""
    import shutil
    import subprocess
    import tempfile

    import yaml

    from lima_eval.store import RunStore

    folder = Path(tempfile.mkdtemp(prefix="lima-report-scale-")) / "scale"
    try:
        folder.mkdir(parents=True)
        store = RunStore(folder)
        prompts = sorted({j.prompt_id for j in judgments}, key=lambda p: int(p[1:]))
        (folder / "prompts.jsonl").write_text("".join(json.dumps({"id": p, "prompt": f"prompt {p}"}) + "\n"
                                                      for p in prompts))
        config = {"name": "scale", "output_dir": str(folder.parent), "round_robin": True,
                  "benchmark": {"name": "imported", "path": str(folder / "prompts.jsonl")},
                  "models": [{"name": m, "backend": "imported", "model": f"imported:{m}"} for m in models],
                  "baselines": [models[0]]}
        (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        store.append_generations(gens.values())
        store.append_imported(judgments)
        size = sum(p.stat().st_size for p in folder.glob("*.jsonl"))
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "lima_eval.cli", "report", str(folder)], capture_output=True,
                              text=True, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"lima-eval report failed:\n{proc.stderr[-2000:]}")
        return {"from_disk_report_s": round(wall, 3), "from_disk_jsonl_mb": round(size / 2**20, 1)}
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
