"""The openai-batch backend at scale, across a kill: prints one JSON line.

    python perf/batch_judge.py [--requests 10000] [--delay 8] [--kill-after 2]

The local test server runs in this process (threads) with its Files and Batches endpoints; each batch finishes
`delay` seconds after it is created. `lima-eval run` judges N/2 prompts in both orders (N requests; the two
models' answers are imported, so only judging is timed) in a child process, which is killed with SIGKILL
`kill-after` seconds after its batch was created, then started again. Figures:
  submitted_once: every request reached the server in exactly one created batch (max_submissions 1);
  lost: requests without a judgment on disk after the resume (goal 0); batches: batches created (goal 1);
  resume_wall_s: the second run's wall time, of which waiting for the batch is delay - kill-after at most;
  cpu_ms_per_request: the client processes' CPU (both runs) per request, and sync_cpu_ms_per_request the same
  for the synchronous openai backend on the same requests (same server, no latency), with their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def judge_reply(body: dict) -> str:
    return "Verdict: A"


def write_run(root: Path, name: str, n_prompts: int, judge: dict) -> Path:
    """A run config over n prompts with two imported models, and their answers on disk."""
    from lima_eval.benchmarks import load_prompts
    from lima_eval.config import load_config
    from lima_eval.records import Generation
    from lima_eval.store import RunStore

    prompts = root / "prompts.jsonl"
    if not prompts.exists():
        prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question number {i}?"}) + "\n"
                                   for i in range(n_prompts)))
    path = root / f"{name}.json"
    path.write_text(json.dumps({
        "name": name, "output_dir": str(root / "results"), "benchmark": {"name": "file", "path": str(prompts)},
        "models": [{"name": m, "backend": "imported", "model": m} for m in ("mine", "base")],
        "baselines": ["base"], "judge": {"model": "perf-judge", "order": "both", "cache": False, **judge}}))
    cfg = load_config(path)
    gens = [Generation(id=Generation.make_id(p, spec.name, cfg.generation_identity(spec)), prompt_id=p.id,
                       model=spec.name, text=f"{spec.name} answers {p.id}", backend="imported")
            for spec in cfg.models for p in load_prompts(cfg.benchmark)]
    RunStore(cfg.run_dir).append_generations(gens)
    return path


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def start(path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lima_eval.cli", "run", str(path), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--delay", type=float, default=8.0)
    ap.add_argument("--kill-after", type=float, default=2.0)
    args = ap.parse_args()
    from lima_eval.config import load_config
    from lima_eval.store import RunStore
    from lima_eval.testing.openai_server import OpenAITestServer

    n = args.requests
    with tempfile.TemporaryDirectory() as tmp, OpenAITestServer(responder=judge_reply,
                                                                batch_delay=args.delay) as server:
        root = Path(tmp)
        batch = write_run(root, "batch", n // 2, {"backend": "openai-batch", "base_url": server.base_url,
                                                  "poll_interval": 0.2, "poll_max": 1.0})
        cpu0, t0 = children_cpu(), time.perf_counter()
        first = start(batch)
        while not server.batches:
            if first.poll() is not None:
                raise SystemExit("the first run ended before submitting: "
                                 f"{first.stderr.read() if first.stderr else ''}")
            time.sleep(0.02)
        submit_s = time.perf_counter() - t0
        time.sleep(args.kill_after)
        first.send_signal(signal.SIGKILL)
        first.wait()
        t1 = time.perf_counter()
        second = start(batch)
        _, err = second.communicate()
        if second.returncode != 0:
            raise SystemExit(f"the resumed run failed: {err.strip()}")
        resume_wall = time.perf_counter() - t1
        batch_cpu = children_cpu() - cpu0
        judged = RunStore(load_config(batch).run_dir).judgments()
        with_verdict = sum(1 for j in judged.values() if j.verdict is not None)
        counts = list(server.submitted.values())

        sync = write_run(root, "sync", n // 2, {"backend": "openai", "base_url": server.base_url,
                                                "concurrency": 64})
        cpu1, t2 = children_cpu(), time.perf_counter()
        done = start(sync)
        _, err = done.communicate()
        if done.returncode != 0:
            raise SystemExit(f"the synchronous run failed: {err.strip()}")
        sync_wall, sync_cpu = time.perf_counter() - t2, children_cpu() - cpu1

    print(json.dumps({
        "requests": n, "batch_delay_s": args.delay, "kill_after_s": args.kill_after,
        "batches": len(server.batches), "submitted": len(counts), "submitted_once": set(counts) == {1},
        "max_submissions": max(counts), "judgments": len(judged), "with_verdict": with_verdict,
        "lost": n - len(judged), "submit_s": round(submit_s, 3), "resume_wall_s": round(resume_wall, 3),
        "polls": server.batch_polls, "cpu_ms_per_request": round(1000 * batch_cpu / n, 4),
        "sync_wall_s": round(sync_wall, 3), "sync_cpu_ms_per_request": round(1000 * sync_cpu / n, 4),
        "cpu_ratio_batch_over_sync": round(batch_cpu / sync_cpu, 3),
    }))


if __name__ == "__main__":
    main()
