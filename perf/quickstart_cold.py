"""The quickstart from an empty cache: README command 1's `lima-eval run` as a new user meets it. One JSON line.

    python perf/quickstart_cold.py [--warm] [--keep]

Runs `lima-eval run` (no config: the built-in quickstart, lima_eval/quickstart.yaml) in a new temporary folder
with an empty HOME (so an empty ~/.cache/lima-eval: the embedded weights are converted on the way), and
reports each stage's wall and CPU (user + sys) seconds: the one-time conversion of each embedded model, SFT,
each model's answers, the judge, the report, and the total, with the peak memory and the disk used. With
--warm it then runs the quickstart again in a second new folder with the same (now converted) cache, its
judge replies removed: the "weights already converted" case. Run it on an idle machine for the README's
cost table; `load_before` and `load_after` (1-minute load average) say how idle it was.

The stages are read from the run's own stage header lines ("SFT: ...", "generate: ...", "judge: ...",
"report: ...") and the conversion's bar, timestamped as they are written (stderr is a pipe, so the progress
bars are plain text lines and nothing is drawn); CPU seconds are the process's (threads included) at the same
moments, from /proc. The run uses the lima_eval package this script's interpreter imports (PYTHONPATH decides).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CLI = [sys.executable, "-m", "lima_eval.cli", "run"]
TICK = os.sysconf("SC_CLK_TCK")
# Stage headers (lima_eval/pipeline.py, lima_eval/judging/asking.py) and the conversion bar (lima_eval/embedded.py).
HEADERS = [
    (re.compile(r"^SFT: "), lambda m: "sft"),
    (re.compile(r"^generate: model (\S+) "), lambda m: f"answers {m.group(1)}"),
    (re.compile(r"^(judge|jury): "), lambda m: "judge"),
    (re.compile(r"^report: "), lambda m: "report"),
]
CONVERT = re.compile(r"^convert (\S+) once into .*?: (\d+)/(\d+) ")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (all its threads, and its children that were waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return sum(int(x) for x in fields[11:15]) / TICK  # utime, stime, cutime, cstime


class Watcher:
    """Reads the run's stderr as it is written and notes (event, wall, cpu) the first time each event appears."""

    def __init__(self, proc: subprocess.Popen[bytes], start: float):
        self.proc, self.start = proc, start
        self.events: list[tuple[str, float, float]] = []
        self.seen: set[str] = set()
        self.tail = ""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _note(self, event: str) -> None:
        if event not in self.seen:
            self.seen.add(event)
            self.events.append((event, time.perf_counter() - self.start, cpu_seconds(self.proc.pid)))

    def _scan(self, line: str) -> None:
        line = line.strip()
        for pattern, name in HEADERS:
            m = pattern.match(line)
            if m:
                self._note(name(m))
        m = CONVERT.match(line)
        if m:
            self._note(f"convert {m.group(1)}")
            if m.group(2) == m.group(3):
                self._note(f"converted {m.group(1)}")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        buf = ""
        while True:
            chunk = os.read(self.proc.stderr.fileno(), 65536)
            if not chunk:
                break
            buf += chunk.decode("utf-8", "replace")
            parts = re.split(r"[\r\n]", buf)
            buf = parts.pop()
            for part in parts:
                self._scan(part)
            self._scan(buf)  # a header is written whole; a bar's line may not be terminated yet
            self.tail = (self.tail + chunk.decode("utf-8", "replace"))[-4000:]


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def stages(events: list[tuple[str, float, float]], end_wall: float, end_cpu: float) -> dict[str, dict[str, float]]:
    """Each stage from its header to the next one; a conversion is its own stage, taken out of the one it ran in."""
    marks = [e for e in events if not e[0].startswith(("convert ", "converted "))]
    out: dict[str, dict[str, float]] = {}
    first = marks[0] if marks else ("", end_wall, end_cpu)
    out["start-up"] = {"wall": first[1], "cpu": first[2]}
    for (name, w0, c0), (_, w1, c1) in zip(marks, marks[1:] + [("end", end_wall, end_cpu)]):
        out[name] = {"wall": w1 - w0, "cpu": c1 - c0}
        for ev, cw, cc in events:
            if ev.startswith("convert ") and w0 <= cw <= w1:
                model = ev[len("convert "):]
                done = next(((w, c) for e, w, c in events if e == f"converted {model}"), (w1, c1))
                conv = {"wall": done[0] - cw, "cpu": done[1] - cc}
                out[f"conversion {model}"] = conv
                out[name] = {"wall": out[name]["wall"] - conv["wall"], "cpu": out[name]["cpu"] - conv["cpu"]}
    return {k: {"wall": round(v["wall"], 1), "cpu": round(v["cpu"], 1)} for k, v in out.items()}


def quickstart(folder: Path, home: Path) -> dict:
    """README command 1 in `folder` with HOME=`home`; its stages, total, peak memory and disk."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LIMA_EVAL_CACHE", "LIMA_EVAL_JUDGE_CACHE", "XDG_CACHE_HOME", "HF_HOME")}
    env["HOME"] = str(home)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    proc = subprocess.Popen(CLI, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    watcher = Watcher(proc, start)
    try:
        _, status, usage = os.wait4(proc.pid, 0)  # its CPU seconds and peak memory come with it
    except BaseException:  # interrupted or stopped: the run does not outlive this script
        proc.kill()
        proc.wait()
        raise
    total = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    watcher.thread.join(timeout=10)
    if proc.returncode != 0:
        raise SystemExit(f"lima-eval run failed ({proc.returncode}) in {folder}:\n{watcher.tail}")
    cpu = usage.ru_utime + usage.ru_stime
    cache = home / ".cache" / "lima-eval"
    return {
        "total": {"wall": round(total, 1), "cpu": round(cpu, 1)},
        "stages": stages(watcher.events, total, cpu),
        "peak_rss_gb": round(usage.ru_maxrss / 1e6, 2),
        "results_mb": round(du(folder / "results" / "quickstart") / 1e6),
        "cache_mb": round(du(cache) / 1e6),
    }


def load() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warm", action="store_true", help="then run it again with the converted weights cached")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: clean up (the run, the folder) first
    import lima_eval

    root = Path(tempfile.mkdtemp(prefix="quickstart-cold-"))
    out: dict = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "load_before": load(),
                 "lima_eval": str(Path(lima_eval.__file__).parent)}
    try:
        home = root / "home"
        home.mkdir()
        out["cold"] = quickstart(root / "cold", home)
        if args.warm:  # the converted weights stay; the judge's cached replies go (a new run asks the judge)
            (home / ".cache" / "lima-eval" / "judge-cache.sqlite").unlink(missing_ok=True)
            out["warm"] = quickstart(root / "warm", home)
    finally:
        out["load_after"] = load()
        if args.keep:
            out["folder"] = str(root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
