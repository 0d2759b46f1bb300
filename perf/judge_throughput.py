"""Judge throughput against the local OpenAI-compatible test server. Prints one JSON line.

    python perf/judge_throughput.py [--items 3000] [--latency 0.2] [--concurrency 64]

The server runs in its own process, as a real judge endpoint would (in this process it would compete with
the client for the GIL). `import openai` (about 0.8 s here) is done before timing and reported as import_s:
it is paid once per process, not per item. The N prompts give 2N pairwise requests (judges ask about each pair
in both orders, `order: both`, the default). Three runs of the judging stage over them (answers written
straight into the run, so only judging is timed):
  1. every request answered after `latency` seconds: wall_over_limit = wall / (requests x latency /
     concurrency), where the denominator is the best any client could do with that many requests in flight,
     and client_cpu_ms_per_request = this process's CPU time (user + system, all threads) during the run /
     requests: the server is another process, so this is the client's cost alone, and it moves less between
     machines (and with other load on them) than wall time does;
  2. the same items in a new results directory: rerun_requests = requests the server saw (the cache answers);
  3. a fresh cache, a third of the requests answered 429 with Retry-After: 1: completed_under_429 = judgments
     with a verdict (of 2N), and how long it took. Which third is a coin seeded by the request's arrival number:
     with "every third arrival" (k % 3 == 0) a lean client's retries come back in lockstep, in the same order
     each second, and the same few requests can land on a multiple of 3 eleven times running, which no real
     rate limiter does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def judge_reply(body: dict) -> str:
    return "Verdict: A"


def setup(root: Path, name: str, n: int, base_url: str, concurrency: int, cache: Path):  # type: ignore[no-untyped-def]
    """A run config with n prompts and two imported models whose answers are already on disk."""
    from lima_eval.config import load_config
    from lima_eval.records import Generation
    from lima_eval.store import RunStore

    prompts = root / "prompts.jsonl"
    if not prompts.exists():
        prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question number {i}?"}) + "\n"
                                   for i in range(n)))
    cfg_path = root / f"{name}.yaml"
    judge = {"backend": "openai", "model": "perf-judge", "base_url": base_url, "concurrency": concurrency,
             "max_retries": 10, "timeout": 60, "cache_path": str(cache)}
    cfg_path.write_text(json.dumps({
        "name": name, "output_dir": str(root / "results"), "benchmark": {"name": "file", "path": str(prompts)},
        "models": [{"name": m, "backend": "imported", "model": m} for m in ("mine", "base")],
        "baselines": ["base"], "judge": judge}))
    cfg = load_config(cfg_path)
    from lima_eval.benchmarks import load_prompts

    ps = load_prompts(cfg.benchmark)
    store = RunStore(cfg.run_dir)
    gens = []
    for spec in cfg.models:
        ident = spec.identity() | {"seed": cfg.seed}
        gens += [Generation(id=Generation.make_id(p, spec.name, ident), prompt_id=p.id, model=spec.name,
                            text=f"{spec.name} answers {p.id}", backend="imported") for p in ps]
    store.append_generations(gens)
    return cfg, ps, store


def serve(up, down, latency: float, storm: bool) -> None:  # type: ignore[no-untyped-def]
    """The test server in a child process: sends its base_url up, then its request count for every ask."""
    from lima_eval.testing.openai_server import OpenAITestServer

    server = OpenAITestServer(responder=judge_reply, latency=latency, fault=every_third if storm else None).start()
    up.put(server.base_url)
    while down.get() is not None:
        up.put(server.requests)


def every_third(k: int, body: dict):  # type: ignore[no-untyped-def]
    import random

    return ("429", 1) if random.Random(k).random() < 1 / 3 else None


class ServerProcess:
    def __init__(self, latency: float, storm: bool = False):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.up, self.down = ctx.Queue(), ctx.Queue()
        self.p = ctx.Process(target=serve, args=(self.up, self.down, latency, storm), daemon=True)

    def __enter__(self) -> Self:
        self.p.start()
        self.base_url = self.up.get(timeout=60)
        return self

    @property
    def requests(self) -> int:
        self.down.put("count")
        return int(self.up.get(timeout=30))

    def __exit__(self, *exc: object) -> None:
        self.p.kill()


def judge_once(cfg, prompts, store):  # type: ignore[no-untyped-def]
    from lima_eval.pipeline import judge_stage

    cpu, start = time.process_time(), time.perf_counter()
    counts, _ = judge_stage(cfg, cfg.judge, prompts, store, show=False)
    return time.perf_counter() - start, time.process_time() - cpu, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()

    n, lat, conc = args.items, args.latency, args.concurrency
    t0 = time.perf_counter()
    import openai  # noqa: F401

    import_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with ServerProcess(lat) as server:
            cfg, ps, store = setup(root, "first", n, server.base_url, conc, root / "cache.sqlite")
            wall, cpu, counts = judge_once(cfg, ps, store)
            first_requests = server.requests
            cfg2, ps2, store2 = setup(root, "second", n, server.base_url, conc, root / "cache.sqlite")
            rerun_wall, _, rerun = judge_once(cfg2, ps2, store2)
            rerun_requests = server.requests - first_requests
        with ServerProcess(lat, storm=True) as server:
            cfg3, ps3, store3 = setup(root, "storm", n, server.base_url, conc, root / "cache-storm.sqlite")
            storm_wall, _, storm = judge_once(cfg3, ps3, store3)
            storm_requests = server.requests
        completed = sum(1 for j in store3.judgments().values() if j.verdict is not None)

    limit = counts.new * lat / conc  # every judgment is one request (none fail in run 1)
    print(json.dumps({
        "items": n, "latency_s": lat, "concurrency": conc,
        "wall_s": round(wall, 3), "limit_s": round(limit, 3), "wall_over_limit": round(wall / limit, 4),
        "client_cpu_ms_per_request": round(1000 * cpu / counts.new, 4), "import_s": round(import_s, 3),
        "judged": counts.new, "requests": first_requests,
        "rerun_requests": rerun_requests, "rerun_cache_hits": rerun.cache_hits, "rerun_wall_s": round(rerun_wall, 3),
        "completed_under_429": completed, "storm_requests": storm_requests, "storm_wall_s": round(storm_wall, 3),
        "storm_failed_calls": storm.failed_calls,
    }))


if __name__ == "__main__":
    main()
