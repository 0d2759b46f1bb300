"""The labelling app under load over loopback. Prints one JSON line.

    python perf/annotate_load.py [--annotators 50] [--items 100]

A run of `items` prompts (two scripted models, made offline) is served by `lima-eval annotate` in its own process
with every item for every annotator (overlap = annotators), so annotators x items labels are there to give
(default 5,000). Each simulated annotator is a thread with one keep-alive connection that submits labels as fast as
the server answers them (a label's reply carries the next item). Figures: p50_ms / p99_ms of a submit (goal:
p99 < 50 ms on a 2-core machine), labels_per_s, and, read from disk after the server is stopped, labels_lost
(acknowledged but not in the run's human label store: goal 0) and duplicates (a label stored twice: goal 0).
baseline_p99_ms is a read of the next item on the same server in the same run (no write, no fsync), so
submit_over_read is what recording a label costs over serving one.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import yaml


def make_run(root: Path, items: int) -> Path:
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Prompt number {i}?"}) + "\n"
                               for i in range(items)))
    cfg = {"name": "load", "output_dir": str(root / "results"), "benchmark": {"name": "file", "path": str(prompts)},
           "models": [{"name": "m1", "backend": "scripted", "model": "echo"},
                      {"name": "m2", "backend": "scripted", "model": "fixed:A fixed answer."}],
           "baselines": ["m2"], "judge": {"backend": "scripted", "model": "fixed:Verdict: A"}}
    (root / "c.yaml").write_text(yaml.safe_dump(cfg))
    subprocess.run([sys.executable, "-m", "lima_eval.cli", "run", str(root / "c.yaml"), "--no-progress"],
                   check=True, capture_output=True)
    return root / "results" / "load"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--items", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp), args.items)
        proc = subprocess.Popen([sys.executable, "-m", "lima_eval.cli", "annotate", str(run_dir), "--port", "0",
                                 "--annotators", str(args.annotators), "--overlap", str(args.annotators)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        links = {}
        for line in proc.stdout:  # type: ignore[union-attr]
            m = re.match(r"annotator (\S+): (\S+)", line)
            if m:
                links[m.group(1)] = m.group(2)
            if line.startswith("admin:"):
                break
        submits: list[float] = []
        reads: list[float] = []
        acked: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(len(links) + 1)

        def annotator(link: str) -> None:
            url = urlparse(link)
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            conn.request("GET", url.path)
            page = conn.getresponse().read().decode()
            csrf = re.search(r'name="csrf" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            head = {"Content-Type": "application/json", "X-CSRF-Token": csrf}
            mine_s, mine_r, mine_a = [], [], []
            start.wait()
            t = time.perf_counter()
            conn.request("GET", url.path + "/next")
            view = json.loads(conn.getresponse().read())
            mine_r.append(time.perf_counter() - t)
            while view["item"] is not None:
                item = view["item"]
                t = time.perf_counter()
                conn.request("POST", url.path + "/label", json.dumps({"item": item, "choice": "1"}), head)
                resp = conn.getresponse()
                view = json.loads(resp.read())
                mine_s.append(time.perf_counter() - t)
                if resp.status == 200:
                    mine_a.append(item)
                if len(mine_s) % 10 == 0:  # now and then a plain read, the baseline
                    t = time.perf_counter()
                    conn.request("GET", url.path + "/next")
                    conn.getresponse().read()
                    mine_r.append(time.perf_counter() - t)
            with lock:
                submits.extend(mine_s)
                reads.extend(mine_r)
                acked.extend(f"{link}|{i}" for i in mine_a)

        threads = [threading.Thread(target=annotator, args=(link,)) for link in links.values()]
        for th in threads:
            th.start()
        start.wait()
        t0 = time.perf_counter()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        lines = [json.loads(x) for x in (run_dir / "human_judgments.jsonl").read_text().splitlines() if x.strip()]
        ids = {r["id"] for r in lines}
        s, r = np.array(submits) * 1000, np.array(reads) * 1000
        print(json.dumps({
            "annotators": len(links), "labels_acknowledged": len(acked), "labels_on_disk": len(ids),
            "labels_lost": len(acked) - len(ids), "duplicates": len(lines) - len(ids),
            "p50_ms": round(float(np.percentile(s, 50)), 2), "p99_ms": round(float(np.percentile(s, 99)), 2),
            "labels_per_s": round(len(acked) / wall, 1), "wall_s": round(wall, 2),
            "baseline_p99_ms": round(float(np.percentile(r, 99)), 2),
            "submit_over_read": round(float(np.percentile(s, 99) / np.percentile(r, 99)), 2)}))


if __name__ == "__main__":
    main()
