"""Judge card speed against the local OpenAI-compatible test server. Prints one JSON line.

    python perf/judge_card.py [--items 1000] [--repeats 4] [--latency 0.2] [--concurrency 64]

A gold set of N synthetic PandaLM-format items (three annotators) is judged in both orders, `repeats` times
(seeds 0..K-1), by a judge on the test server (its own process, as a real endpoint would be) that answers every
request after `latency` seconds. Timed: `make_card` as a user meets it (gold loading, the imports-run, judging,
bootstrap intervals, the card files). wall_over_limit = wall / (calls x latency / concurrency), the best any
client could do with that many requests in flight (target <= 1.2). Then the same card again: rerun_calls =
requests the server saw the second time (the judge cache answers: target 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from judge_throughput import ServerProcess  # the same server process as the throughput script


def gold(path: Path, n: int) -> None:
    labels = ["1", "2", "0"]
    path.write_text(json.dumps([{
        "idx": str(i), "cmp_key": f"model-{i % 5}_model-{5 + i % 3}", "instruction": f"Task number {i}.", "input": "",
        "response1": f"First answer to {i}." + " more" * (i % 7),
        "response2": f"Second answer to {i}." + " x" * (i % 4),
        "annotator1": labels[i % 3], "annotator2": labels[(i // 3) % 3], "annotator3": labels[i % 2]}
        for i in range(n)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    import openai  # noqa: F401 - imported before timing: paid once per process, not per card

    from lima_eval.config import JudgeSpec, build_section
    from lima_eval.judge_card import make_card

    with tempfile.TemporaryDirectory() as tmp, ServerProcess(args.latency) as server:
        root = Path(tmp)
        gold(root / "gold.json", args.items)
        spec = build_section(JudgeSpec, {"name": "lima-pairwise", "backend": "openai", "model": "perf-judge",
                                         "base_url": server.base_url, "concurrency": args.concurrency,
                                         "max_retries": 10, "timeout": 60, "cache_path": str(root / "cache.sqlite")},
                             "judge")
        start = time.perf_counter()
        folder = make_card(spec, str(root / "gold.json"), root / "results", repeats=args.repeats, show=False)
        wall = time.perf_counter() - start
        calls = server.requests
        start = time.perf_counter()
        make_card(spec, str(root / "gold.json"), root / "results", repeats=args.repeats, show=False)
        rerun = time.perf_counter() - start
        rerun_calls = server.requests - calls
        card = json.loads((folder / "judge_card.json").read_text())
    ideal = calls * args.latency / args.concurrency
    print(json.dumps({"items": args.items, "repeats": args.repeats, "calls": calls, "wall_s": round(wall, 2),
                      "ideal_s": round(ideal, 2), "wall_over_limit": round(wall / ideal, 3),
                      "rerun_calls": rerun_calls, "rerun_s": round(rerun, 2),
                      "judged": card["judged"], "records": card["records"]}))


if __name__ == "__main__":
    main()
